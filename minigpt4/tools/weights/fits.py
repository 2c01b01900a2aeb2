"""Which model types of `configs/models/<arch>/<type>.yaml` a projection (+ LoRA) checkpoint fits.

The expected trainable shapes follow from the YAML alone (no model is built):
  llama_proj: (LLM hidden, Q-Former width) with a Q-Former, else (LLM hidden, 4 x ViT width);
  LoRA rank: `lora_r` (MiniGPT-v2 default 64, MiniGPT-4 0).
Only model types whose `llama_model` folder exists (e.g. the tiny types' `assets/tiny_llama`) can be checked
for the LLM hidden size; the official types are recognised from their fixed sizes in `identify.py`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from minigpt4.common.paths import LIBRARY_ROOT, MODEL_CONFIG_ROOT

logger = logging.getLogger(__name__)

DEFAULT_LORA_R = {"minigpt_v2": 64}


def _llm_hidden(llama_model: Any) -> int | None:
    if not isinstance(llama_model, str) or not llama_model:
        return None
    path = Path(llama_model).expanduser()
    for candidate in [path] if path.is_absolute() else [LIBRARY_ROOT / path]:
        config = candidate / "config.json"
        if config.is_file():
            return int(json.loads(config.read_text()).get("hidden_size", 0)) or None
    return None


def expected_trainable(model_cfg: Any) -> tuple[tuple[int, int], int] | None:
    """((llama_proj out, in), lora rank) implied by a `model:` node, or None when the LLM size is unknown."""
    hidden = _llm_hidden(model_cfg.get("llama_model"))
    if hidden is None:
        return None
    arch = str(model_cfg.get("arch", ""))
    if arch == "minigpt5":
        return None  # llama_proj is frozen in MiniGPT-5: its (Lightning .ckpt) checkpoints never hold it
    has_qformer = arch == "minigpt4" and bool(model_cfg.get("has_qformer", True))
    if has_qformer:
        in_features = int(model_cfg.get("qformer_hidden_size", 768))
    else:
        in_features = 4 * int(model_cfg.get("vit_width", 1408))
    lora_r = int(model_cfg.get("lora_r", DEFAULT_LORA_R.get(arch, 0)) or 0)
    return (hidden, in_features), lora_r


def fitting_model_types(proj_shape: tuple[int, int], lora_rank: int) -> list[str]:
    """`arch/model_type` names whose default YAML implies exactly this projection shape and LoRA rank."""
    fits = []
    for path in sorted(MODEL_CONFIG_ROOT.glob("*/*.yaml")):
        try:
            model_cfg = OmegaConf.load(path).get("model")
        except Exception as exc:  # a broken YAML elsewhere must not break inspection
            logger.debug("skipping %s: %s", path, exc)
            continue
        if model_cfg is None:
            continue
        expected = expected_trainable(model_cfg)
        if expected == (tuple(proj_shape), lora_rank):
            fits.append(f"{path.parent.name}/{path.stem}")
    return fits
