"""Optimizer, gradient scaler, autocast and one optimisation step, with the official recipe as default.

Official: AdamW(betas=(0.9, beta2)) over two groups; fp16 autocast + GradScaler when `run.amp`;
gradients stepped every `accum_grad_iters` iterations with the loss *not* divided (set
`run.accum_grad_mean: true` to divide); no clipping (set `run.max_grad_norm` to clip).
Ours: `run.lr_scales: {visual_encoder: 0.3}` multiplies the scheduled lr of the parameters under a prefix.
Ours: `run.amp_dtype: bfloat16` uses bf16 autocast without a scaler.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from minigpt4.common.errors import ConfigError
from minigpt4.common.optims import param_groups

AMP_DTYPES = {
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def build_optimizer(model: torch.nn.Module, run_cfg: Any) -> torch.optim.Optimizer:
    groups = param_groups(
        model.named_parameters(), run_cfg.get("weight_decay", 0.05), run_cfg.get("lr_scales", None)
    )
    if not any(group["params"] for group in groups):
        raise ConfigError(
            "the model has no trainable parameters: check freeze_* switches and that the LLM/LoRA settings are right"
        )
    beta2 = run_cfg.get("beta2", 0.999)
    return torch.optim.AdamW(groups, lr=float(run_cfg.init_lr), betas=(0.9, beta2))


def amp_dtype(run_cfg: Any) -> torch.dtype | None:
    """The autocast dtype, or None when autocast is off (amp false, or CPU without an explicit bf16 request)."""
    name = str(run_cfg.get("amp_dtype", "float16"))
    if name not in AMP_DTYPES:
        raise ConfigError(f"run.amp_dtype {name!r} is not one of {sorted(AMP_DTYPES)}")
    if not run_cfg.get("amp", False):
        return None
    dtype = AMP_DTYPES[name]
    if not torch.cuda.is_available() and dtype is torch.float16:
        return None  # official autocast is CUDA-only: on CPU amp is a no-op
    return dtype


def build_scaler(dtype: torch.dtype | None) -> torch.amp.GradScaler | None:
    if dtype is torch.float16 and torch.cuda.is_available():
        return torch.amp.GradScaler("cuda")
    return None


def autocast(dtype: torch.dtype | None, device_type: str) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device_type, dtype=dtype)


class Stepper:
    """Backward + (every `accum` iterations) clip, step, zero_grad, through the scaler when there is one."""

    def __init__(self, optimizer: torch.optim.Optimizer, scaler: Any, run_cfg: Any) -> None:
        self.optimizer = optimizer
        self.scaler = scaler
        self.accum = int(run_cfg.get("accum_grad_iters", 1))
        self.divide = bool(run_cfg.get("accum_grad_mean", False))
        self.max_grad_norm = run_cfg.get("max_grad_norm", None)

    def backward(self, loss: torch.Tensor) -> None:
        if self.divide:
            loss = loss / self.accum
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()

    def maybe_step(self, iteration: int) -> bool:
        """Step after iterations accum-1, 2*accum-1, ... of the epoch (official: (i + 1) % accum == 0)."""
        if (iteration + 1) % self.accum != 0:
            return False
        if self.max_grad_norm:
            if self.scaler is not None:
                self.scaler.unscale_(self.optimizer)
            params = [p for group in self.optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, float(self.max_grad_norm))
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return True
