"""Weight preparation tools: Vicuna v0 delta, inspect, .pth -> safetensors, LoRA merge.

Command line: `python -m minigpt4.tools.weights {apply-delta,inspect,convert,merge-lora} ...`.
Everything works offline on local paths and streams tensors shard by shard.
"""

from minigpt4.tools.weights.convert import convert_to_safetensors
from minigpt4.tools.weights.delta import apply_delta
from minigpt4.tools.weights.identify import Identification, identify
from minigpt4.tools.weights.inspection import CheckpointSummary, inspect_checkpoint, inspect_path
from minigpt4.tools.weights.lora_merge import merge_lora

__all__ = [
    "CheckpointSummary",
    "Identification",
    "apply_delta",
    "convert_to_safetensors",
    "identify",
    "inspect_checkpoint",
    "inspect_path",
    "merge_lora",
]
