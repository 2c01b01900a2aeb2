"""Atomic training checkpoints in the official `.pth` layout, plus everything exact resume needs.

File layout (official keys first, so official tools read ours):
    model      trainable parameters (+ buffers), as `RunnerBase._save_checkpoint` keeps them
    optimizer  optimizer.state_dict()
    config     the resolved config as plain containers
    scaler     GradScaler state or None
    epoch      the epoch this checkpoint belongs to
ours:
    global_step, iter_in_epoch (iterations of `epoch` already done), epoch_complete,
    rng (python/numpy/torch/cuda states), data (the mixed loader's position), format.
Everything is plain tensors and containers, so `torch.load(weights_only=True)` reads it.
A safetensors copy of the trainable weights is written beside each file.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from minigpt4.common.errors import CheckpointError

logger = logging.getLogger(__name__)
FORMAT = "minigpt4-runner-v1"


def trainable_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The official selection: drop every parameter with requires_grad False; keep the rest (and buffers)."""
    requires_grad = {name: param.requires_grad for name, param in model.named_parameters()}
    return {
        name: tensor.detach().cpu()
        for name, tensor in model.state_dict().items()
        if requires_grad.get(name, True)
    }


def rng_state() -> dict[str, Any]:
    version, keys, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {
        "python": [version, torch.tensor(keys, dtype=torch.int64), gauss],
        "numpy": [np_name, torch.from_numpy(np_keys.astype(np.int64)), np_pos, np_has_gauss, np_gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, keys, gauss = state["python"]
    random.setstate((version, tuple(int(k) for k in keys.tolist()), gauss))
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = state["numpy"]
    np.random.set_state((np_name, np_keys.numpy().astype(np.uint32), np_pos, np_has_gauss, np_gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_torch_save(obj: Any, path: Path) -> None:
    """Write to a temporary file in the same folder, fsync, then rename: a kill never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with temporary.open("wb") as handle:
        torch.save(obj, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def atomic_safetensors_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    # safetensors refuses shared or non-contiguous storage; trainable tensors are small, so copy
    save_file({k: v.contiguous().clone() for k, v in tensors.items()}, str(temporary), metadata=metadata)
    os.replace(temporary, path)


def save_training_checkpoint(
    path: Path,
    weights: dict[str, torch.Tensor],
    optimizer_state: dict,
    scaler: Any,
    config: dict,
    epoch: int,
    global_step: int,
    iter_in_epoch: int,
    epoch_complete: bool,
    data_state: dict | None,
) -> Path:
    payload = {
        "model": weights,
        "optimizer": optimizer_state,
        "config": config,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "epoch": epoch,
        "global_step": global_step,
        "iter_in_epoch": iter_in_epoch,
        "epoch_complete": epoch_complete,
        "rng": rng_state(),
        "data": data_state,
        "format": FORMAT,
    }
    atomic_torch_save(payload, path)
    atomic_safetensors_save(
        weights,
        path.with_suffix(".safetensors"),
        {"epoch": str(epoch), "global_step": str(global_step), "format": FORMAT},
    )
    logger.info("saved checkpoint %s (%d tensors, epoch %d, step %d)", path, len(weights), epoch, global_step)
    return path


def load_training_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"run.resume_ckpt_path: {path} does not exist (expected a checkpoint_*.pth of a run)"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"{path}: cannot be read as a checkpoint ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        raise CheckpointError(f"{path}: expected a dict with a 'model' entry (the official runner layout)")
    return checkpoint


def restore_model_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], source: str) -> None:
    """Load trainable weights; every checkpoint key must exist, every missing key must be frozen."""
    own = model.state_dict()
    unexpected = sorted(set(weights) - set(own))
    if unexpected:
        raise CheckpointError(
            f"{source}: {len(unexpected)} keys the model does not have, e.g. {unexpected[0]}"
        )
    for name, tensor in weights.items():
        if own[name].shape != tensor.shape:
            raise CheckpointError(
                f"{source}: {name} has shape {tuple(tensor.shape)}, the model expects {tuple(own[name].shape)}"
            )
    trainable = {name for name, param in model.named_parameters() if param.requires_grad}
    missing = sorted(trainable - set(weights))
    if missing:
        raise CheckpointError(f"{source}: {len(missing)} trainable tensors are missing, e.g. {missing[0]}")
    model.load_state_dict(weights, strict=False)  # frozen tensors are absent by design; checked above
    logger.info("restored %d tensors from %s", len(weights), source)
