"""Reading the merged `model:` config node (official keys plus a few of ours) into typed settings.

Official keys keep their official defaults. Keys we add (all optional):
  vit_ckpt                      path of eva_vit_g.pth ("" = random ViT, logged)
  vit_width, vit_depth, vit_num_heads, vit_mlp_ratio, vit_patch_size   ViT sizes (default EVA ViT-g)
  qformer_hidden_size, qformer_num_layers, qformer_num_heads, qformer_intermediate_size,
  qformer_cross_attention_freq, qformer_max_position_embeddings   Q-Former sizes (default bert-base)
  llama_dtype                   float16 (official) | bfloat16 | float32
  low_resource_quantization     8bit (official) | 4bit
  freeze_llm                    True (official); False trains the whole LLM (tiny models)
  llm_config                    {config.json field: value} for an LLM folder without weights (random init),
                                e.g. {hidden_size: 128, tie_word_embeddings: true}; an error when weights exist
  lora_dropout, lora_target_modules   official constructor defaults 0.05, [q_proj, v_proj]
  autocast_dtype                float16 (official maybe_autocast on CUDA) | bfloat16
  ckpt_allow_missing            False: a `ckpt` lacking a trainable tensor is an error
  random_init                   [] | [vit, qformer, llm]: parts no file fills on purpose (trained from scratch);
                                logged at INFO instead of the RANDOM-initialisation warning
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from minigpt4.common.errors import ConfigError
from minigpt4.common.paths import LIBRARY_ROOT


def cfg_get(cfg: Any, key: str, default: Any = None) -> Any:
    """`cfg.get(key, default)` for OmegaConf nodes and dicts; None values count as absent."""
    if cfg is None:
        return default
    value = cfg.get(key, default) if isinstance(cfg, Mapping) or hasattr(cfg, "get") else default
    return default if value is None else value


def resolve_path(value: str | Path | None) -> Path | None:
    """Absolute paths as they are; relative ones against the package dir (official "prompts/alignment.txt"),
    else against the working directory. "" / None -> None."""
    if value is None or str(value) == "":
        return None
    path = Path(str(value)).expanduser()
    if path.is_absolute():
        return path
    in_package = LIBRARY_ROOT / path
    if in_package.exists():
        return in_package
    return path.resolve()


def as_str_tuple(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    try:
        return tuple(str(v) for v in value)
    except TypeError as exc:
        raise ConfigError(f"model.{key} must be a list of module names, got {value!r}") from exc


def check_vit_model(name: str) -> None:
    if name != "eva_clip_g":
        raise ConfigError(f"model.vit_model={name!r}: only 'eva_clip_g' (EVA ViT-g/14) is supported")
