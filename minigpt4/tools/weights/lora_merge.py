"""Merge a MiniGPT-v2 LoRA into its LLM and save a plain Hugging Face directory, shard by shard.

MiniGPT-v2 checkpoints hold `llama_proj.*` and, per layer, `...self_attn.{q_proj,v_proj}.lora_{A,B}.weight`
(peft 0.2.0 spelling, no `.default.`; the current spelling is accepted too). peft computes
`y = W x + B(A(x)) * alpha / r`, so the merged weight is `W + (B @ A) * alpha / r`. The official
`lora_alpha` is 16 (official_anatomy §3.4); it is read from the checkpoint's run config when present.
The merged directory loads with `LlamaForCausalLM.from_pretrained` and no peft; `tests/tools/test_weights_lora.py`
checks its logits against the unmerged peft model.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from minigpt4.common.errors import CheckpointError
from minigpt4.common.logging import progress
from minigpt4.models.checkpoint_shards import (
    HF_INDEX_NAMES,
    WEIGHT_SUFFIXES,
    ShardWriter,
    TensorFile,
    WeightSource,
    load_pickle_checkpoint,
    parse_size,
    unwrap_state_dict,
)
from minigpt4.tools.weights.identify import LORA_KEY

logger = logging.getLogger(__name__)

OFFICIAL_LORA_ALPHA = 16


@dataclass
class LoraPair:
    down: torch.Tensor  # lora_A: (r, in_features)
    up: torch.Tensor  # lora_B: (out_features, r)


@dataclass
class MergeReport:
    out_dir: Path
    merged_keys: list[str]
    rank: int
    alpha: float
    shards: list[Path]
    projection_file: Path | None


def read_checkpoint_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """All tensors of a MiniGPT checkpoint (.pth or .safetensors) and its run config (may be empty)."""
    if path.suffix == ".safetensors":
        with TensorFile(path) as opened:
            return {k: opened.get(k) for k in opened.names()}, {}
    loaded = load_pickle_checkpoint(path)
    tensors, _ = unwrap_state_dict(loaded, path)
    config = loaded.get("config") if isinstance(loaded, dict) else None
    return tensors, config if isinstance(config, dict) else {}


def collect_lora(tensors: dict[str, torch.Tensor]) -> dict[str, LoraPair]:
    """{HF LLM weight key: LoraPair}, from either LoRA key spelling.

    `llama_model.base_model.model.model.layers.3.self_attn.q_proj.lora_A[.default].weight`
    -> `model.layers.3.self_attn.q_proj.weight`.
    """
    halves: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        match = LORA_KEY.match(key)
        if match:
            target = f"model.layers.{match['layer']}.{match['block']}.{match['module']}.weight"
            halves.setdefault(target, {})[match["which"]] = tensor
    pairs = {}
    for target, half in halves.items():
        if set(half) != {"A", "B"}:
            raise CheckpointError(
                f"LoRA for {target}: found only lora_{''.join(half)}; both lora_A and lora_B are needed"
            )
        if half["A"].shape[0] != half["B"].shape[1]:
            raise CheckpointError(
                f"LoRA for {target}: lora_A {tuple(half['A'].shape)} and lora_B {tuple(half['B'].shape)} disagree on r"
            )
        pairs[target] = LoraPair(half["A"], half["B"])
    return pairs


def merged_weight(weight: torch.Tensor, pair: LoraPair, scaling: float) -> torch.Tensor:
    """W (out, in) + (B (out, r) @ A (r, in)) * scaling, computed in fp32 and returned in W's dtype."""
    if weight.shape != (pair.up.shape[0], pair.down.shape[1]):
        raise CheckpointError(
            f"LoRA B@A has shape {(pair.up.shape[0], pair.down.shape[1])} but the LLM weight is {tuple(weight.shape)}; "
            "the checkpoint was trained on a different LLM"
        )
    update = pair.up.float() @ pair.down.float()
    return (weight.float() + update * scaling).to(weight.dtype)


def _resolve_alpha(lora_alpha: float | None, config: dict[str, Any]) -> float:
    if lora_alpha is not None:
        return float(lora_alpha)
    from_config = (
        (config.get("model") or {}).get("lora_alpha") if isinstance(config.get("model"), dict) else None
    )
    if from_config is not None:
        return float(from_config)
    logger.info(
        "lora_alpha not given and not in the checkpoint config: using the official %d", OFFICIAL_LORA_ALPHA
    )
    return float(OFFICIAL_LORA_ALPHA)


def merge_lora(
    checkpoint: str | Path,
    llm_path: str | Path,
    out_dir: str | Path,
    lora_alpha: float | None = None,
    max_shard_size: int | str | None = None,
    projection_out: str | Path | None = None,
) -> MergeReport:
    """Write `llm + LoRA(checkpoint)` to `out_dir` as a plain HF LLaMA directory.

    checkpoint: a MiniGPT-v2 checkpoint (.pth with "model", or .safetensors) or a peft adapter file.
    llm_path: the LLM directory the checkpoint was trained on (Llama-2-7b-chat-hf for the release).
    projection_out: optionally also save the checkpoint's non-LoRA tensors (`llama_proj.*`) to this
        safetensors file, so the merged LLM can be used with `lora_r: 0`.
    """
    checkpoint, llm_path, out_dir = Path(checkpoint), Path(llm_path), Path(out_dir)
    if not checkpoint.is_file():
        raise CheckpointError(
            f"{checkpoint}: checkpoint not found; MiniGPT-v2 checkpoints are linked in the MiniGPT-v2 README "
            "(stage-2, stage-3 and online-demo checkpoints on Google Drive)"
        )
    tensors, config = read_checkpoint_tensors(checkpoint)
    pairs = collect_lora(tensors)
    if not pairs:
        raise CheckpointError(
            f"{checkpoint}: no LoRA tensors (…lora_A.weight / …lora_B.weight); nothing to merge"
        )
    ranks = {pair.down.shape[0] for pair in pairs.values()}
    if len(ranks) != 1:
        raise CheckpointError(f"{checkpoint}: LoRA tensors have several ranks {sorted(ranks)}")
    rank = ranks.pop()
    alpha = _resolve_alpha(lora_alpha, config)
    scaling = alpha / rank

    llm = WeightSource.open(llm_path)
    layout = llm.keys_by_file()
    llm_keys = {key for keys in layout.values() for key in keys}
    unknown = sorted(set(pairs) - llm_keys)
    if unknown:
        raise CheckpointError(
            f"{llm_path}: has no weight {unknown[0]} for the LoRA in {checkpoint}; wrong LLM?"
        )
    shard_bytes = parse_size(max_shard_size) if max_shard_size is not None else llm.largest_file_bytes()
    writer = ShardWriter(out_dir, shard_bytes)
    for file, keys in progress(list(layout.items()), desc="merge LoRA (shards)"):
        with TensorFile(file) as opened:
            for key in keys:
                weight = opened.get(key)
                writer.add(key, merged_weight(weight, pairs[key], scaling) if key in pairs else weight)
    shards = writer.close()
    for path in llm_path.iterdir() if llm_path.is_dir() else []:
        if path.is_file() and path.suffix not in WEIGHT_SUFFIXES and path.name not in HF_INDEX_NAMES:
            shutil.copy2(path, out_dir / path.name)

    projection_file = None
    if projection_out is not None:
        rest = {k: v.contiguous() for k, v in tensors.items() if not LORA_KEY.match(k)}
        projection_file = Path(projection_out)
        save_file(rest, str(projection_file), metadata={"format": "pt", "source": checkpoint.name})
    logger.info("merged %d LoRA pairs (r=%d, alpha=%g) into %s", len(pairs), rank, alpha, out_dir)
    return MergeReport(out_dir, sorted(pairs), rank, alpha, shards, projection_file)
