"""Convert official `.pth` checkpoints to safetensors (tensors only; the run config kept as metadata).

Official runner checkpoints are `{"model": ..., "optimizer": ..., "config": ..., "scaler": ..., "epoch": ...}`;
eva_vit_g.pth is a flat dict. The output holds the model tensors only (the optimizer state is dropped, it
is useless for inference and doubles the size). The run config, when present, is stored as JSON in the
safetensors metadata under `minigpt4_config`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from minigpt4.common.errors import CheckpointError
from minigpt4.models.checkpoint_shards import load_pickle_checkpoint, unwrap_state_dict

logger = logging.getLogger(__name__)

CONFIG_METADATA_KEY = "minigpt4_config"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _dedupe_storage(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses tensors that share memory (tied weights, views): give each its own copy."""
    seen: set[tuple[int, int]] = set()
    result = {}
    for key, tensor in tensors.items():
        ident = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
        shares = ident in seen or tensor.untyped_storage().nbytes() != tensor.numel() * tensor.element_size()
        result[key] = tensor.contiguous().clone() if shares or not tensor.is_contiguous() else tensor
        seen.add(ident)
    return result


def convert_to_safetensors(src: str | Path, dst: str | Path | None = None) -> Path:
    """Write the model tensors of `src` (.pth/.bin/.pt) to `dst` (default: same name, .safetensors)."""
    src = Path(src).expanduser()
    if not src.is_file():
        raise CheckpointError(f"{src}: no such checkpoint file")
    dst = Path(dst).expanduser() if dst is not None else src.with_suffix(".safetensors")
    if dst.suffix != ".safetensors":
        raise CheckpointError(f"{dst}: the output name must end in .safetensors")
    loaded = load_pickle_checkpoint(src)
    tensors, other = unwrap_state_dict(loaded, src)
    metadata = {"format": "pt", "source": src.name}
    if isinstance(loaded, Mapping) and "config" in loaded and loaded["config"] is not None:
        metadata[CONFIG_METADATA_KEY] = json.dumps(_jsonable(loaded["config"]))
    if other:
        logger.info("%s: dropped non-model entries %s", src.name, other)
    dst.parent.mkdir(parents=True, exist_ok=True)
    save_file(_dedupe_storage(tensors), str(dst), metadata=metadata)
    logger.info("wrote %s (%d tensors)", dst, len(tensors))
    return dst
