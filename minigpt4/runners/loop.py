"""The inner training loop of one epoch: data -> lr -> forward -> backward -> step -> log -> checkpoint."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from minigpt4.common.errors import TrainingError
from minigpt4.common.logging import MetricLogger, max_memory_mb, progress


@dataclass
class LoopState:
    """Where training stands; checkpointed and restored for exact resume."""

    epoch: int = 0
    iter_in_epoch: int = 0  # iterations of `epoch` already done
    global_step: int = 0
    last_checkpoint: str | None = None


def move_to_device(samples: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {
        k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in samples.items()
    }


def batch_size_of(samples: dict[str, Any]) -> int:
    if isinstance(samples.get("image"), torch.Tensor):
        return int(samples["image"].shape[0])
    for key in ("answer", "conv_q", "instruction_input"):
        if isinstance(samples.get(key), (list, tuple)):
            return len(samples[key])
    return 1


def train_epoch(
    *,
    state: LoopState,
    iters_per_epoch: int,
    max_steps: int,
    next_batch: Callable[[], dict[str, Any]],
    compute_loss: Callable[[dict[str, Any]], torch.Tensor],
    scheduler: Any,
    stepper: Any,
    device: torch.device,
    log_freq: int,
    log_step: Callable[[dict[str, Any]], None],
    save_step_checkpoint: Callable[[], None] | None,
    save_every_steps: int,
    show_progress: bool = True,
) -> dict[str, float]:
    """Run iterations state.iter_in_epoch .. iters_per_epoch-1 of state.epoch (or until max_steps)."""
    meters = MetricLogger()
    iterations = range(state.iter_in_epoch, iters_per_epoch)
    bar = progress(
        iterations, desc=f"epoch {state.epoch}", total=len(iterations), disable_bar=not show_progress
    )
    window_start, window_samples = time.perf_counter(), 0
    for iteration in bar:
        if state.global_step >= max_steps:
            break
        samples = move_to_device(next_batch(), device)
        samples.update(epoch=state.epoch, num_iters_per_epoch=iters_per_epoch, iters=iteration)
        lr = scheduler.step(cur_epoch=state.epoch, cur_step=iteration)
        loss = compute_loss(samples)
        if not torch.isfinite(loss.detach()).all():
            raise TrainingError(
                f"loss is {loss.item()} at epoch {state.epoch}, iteration {iteration} (global step "
                f"{state.global_step + 1}); stopped without saving. Last good checkpoint: "
                f"{state.last_checkpoint or 'none yet'}. Try a lower run.init_lr, run.amp_dtype=bfloat16 or "
                "run.max_grad_norm."
            )
        stepper.backward(loss)
        stepped = stepper.maybe_step(iteration)
        state.iter_in_epoch = iteration + 1
        state.global_step += 1
        loss_value = float(loss.detach().item())
        meters.update(loss=loss_value, lr=lr)
        window_samples += batch_size_of(samples)
        if state.global_step % log_freq == 0 or iteration == iters_per_epoch - 1:
            elapsed = max(time.perf_counter() - window_start, 1e-9)
            record = {
                "step": state.global_step,
                "epoch": state.epoch,
                "iter": iteration,
                "loss": loss_value,
                "lr": lr,
                "samples_per_s": window_samples / elapsed,
                "memory_mb": max_memory_mb(),
            }
            log_step(record)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.2e}")
            window_start, window_samples = time.perf_counter(), 0
        if (
            save_step_checkpoint
            and save_every_steps
            and stepped
            and state.global_step % save_every_steps == 0
        ):
            save_step_checkpoint()
    averages = meters.global_avg()
    return {k: v for k, v in averages.items() if not math.isnan(v)}
