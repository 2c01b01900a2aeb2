"""Learning-rate schedules and AdamW parameter groups, with the official behaviour.

Both schedulers are stateless: `step(cur_epoch, cur_step)` sets the lr of every param group from the
epoch and the step *within* the epoch, and is called before each forward. Quirks kept on purpose
(pinned by the `lr_schedule` parity family and tests/common/test_optims.py):
* cosine warmup uses the within-epoch `cur_step`, not the global step, so with warmup_steps >
  iters_per_epoch the lr falls back to `warmup_lr` at the start of epoch 1;
* the cosine is measured from global step 0, not from the end of warmup;
* `warmup_lr` absent (-1) means warmup starts at `init_lr`.
Difference from the official code: `LinearWarmupStepLRScheduler` has `iters_per_epoch`, so it can run
in the training loop (officially it raises AttributeError there).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch

from minigpt4.common.errors import ConfigError
from minigpt4.common.registry import registry


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


def warmup_lr(step: int, max_step: int, init_lr: float, max_lr: float) -> float:
    """Linear ramp from init_lr to max_lr over max_step steps, capped at max_lr."""
    return min(max_lr, init_lr + (max_lr - init_lr) * step / max(max_step, 1))


def cosine_lr(step: int, max_step: int, init_lr: float, min_lr: float) -> float:
    return (init_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * step / max_step)) + min_lr


def step_lr(epoch: int, init_lr: float, min_lr: float, decay_rate: float) -> float:
    return max(min_lr, init_lr * (decay_rate**epoch))


@registry.register_lr_scheduler("linear_warmup_cosine_lr")
class LinearWarmupCosineLRScheduler:
    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        max_epoch: int,
        iters_per_epoch: int,
        min_lr: float,
        init_lr: float,
        warmup_steps: int = 0,
        warmup_start_lr: float = -1,
        **kwargs,
    ) -> None:
        self.optimizer = optimizer
        self.max_epoch = max_epoch
        self.iters_per_epoch = iters_per_epoch
        self.min_lr = min_lr
        self.init_lr = init_lr
        self.warmup_steps = warmup_steps
        self.warmup_start_lr = warmup_start_lr if warmup_start_lr >= 0 else init_lr

    def lr_at(self, cur_epoch: int, cur_step: int) -> float:
        total_step = cur_epoch * self.iters_per_epoch + cur_step
        if total_step < self.warmup_steps:
            # official quirk: the within-epoch step drives the warmup
            return warmup_lr(cur_step, self.warmup_steps, self.warmup_start_lr, self.init_lr)
        return cosine_lr(total_step, self.max_epoch * self.iters_per_epoch, self.init_lr, self.min_lr)

    def step(self, cur_epoch: int, cur_step: int) -> float:
        lr = self.lr_at(cur_epoch, cur_step)
        set_lr(self.optimizer, lr)
        return lr


@registry.register_lr_scheduler("linear_warmup_step_lr")
class LinearWarmupStepLRScheduler:
    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        max_epoch: int,
        min_lr: float,
        init_lr: float,
        decay_rate: float | None = 1,
        warmup_start_lr: float = -1,
        warmup_steps: int = 0,
        iters_per_epoch: int | None = None,
        **kwargs,
    ) -> None:
        self.optimizer = optimizer
        self.max_epoch = max_epoch
        self.iters_per_epoch = iters_per_epoch
        self.min_lr = min_lr
        self.init_lr = init_lr
        self.decay_rate = decay_rate
        self.warmup_steps = warmup_steps
        self.warmup_start_lr = warmup_start_lr if warmup_start_lr >= 0 else init_lr

    def lr_at(self, cur_epoch: int, cur_step: int) -> float:
        if cur_epoch == 0:
            return warmup_lr(cur_step, self.warmup_steps, self.warmup_start_lr, self.init_lr)
        # decay_rate None raises TypeError here, as officially; schema validation catches it earlier
        return step_lr(cur_epoch, self.init_lr, self.min_lr, self.decay_rate)

    def step(self, cur_epoch: int, cur_step: int) -> float:
        lr = self.lr_at(cur_epoch, cur_step)
        set_lr(self.optimizer, lr)
        return lr


@registry.register_lr_scheduler("linear_warmup_linear_decay_lr")
class LinearWarmupLinearDecayLRScheduler:
    """MiniGPT-5's schedule (transformers `get_linear_schedule_with_warmup`, stepped once per optimizer step): lr
    rises linearly from 0 to init_lr over `warmup_steps` optimizer steps, then falls linearly to 0 at the last one.

    Called every iteration like the others; with `accum_grad_iters` = a, the optimizer-step count is
    epoch * (iters_per_epoch // a) + cur_step // a, so warmup_steps counts optimizer steps as officially (1000).
    Total optimizer steps: from `max_iters` when set, else max_epoch * (iters_per_epoch // a)."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        max_epoch: int,
        iters_per_epoch: int,
        init_lr: float,
        warmup_steps: int = 0,
        accum_grad_iters: int = 1,
        max_iters: int | None = None,
        **kwargs,
    ) -> None:
        self.optimizer = optimizer
        self.init_lr = float(init_lr)
        self.accum = max(1, int(accum_grad_iters))
        self.steps_per_epoch = max(1, int(iters_per_epoch) // self.accum)
        total_iters = int(max_iters) if max_iters else int(max_epoch) * int(iters_per_epoch)
        self.total_steps = max(1, min(total_iters // self.accum, int(max_epoch) * self.steps_per_epoch))
        self.warmup_steps = int(warmup_steps or 0)

    def lr_at(self, cur_epoch: int, cur_step: int) -> float:
        done = cur_epoch * self.steps_per_epoch + cur_step // self.accum  # optimizer steps already taken
        if done < self.warmup_steps:
            return self.init_lr * done / max(1, self.warmup_steps)
        return self.init_lr * max(
            0.0, (self.total_steps - done) / max(1, self.total_steps - self.warmup_steps)
        )

    def step(self, cur_epoch: int, cur_step: int) -> float:
        lr = self.lr_at(cur_epoch, cur_step)
        set_lr(self.optimizer, lr)
        return lr


def build_lr_scheduler(optimizer: torch.optim.Optimizer, run_cfg, iters_per_epoch: int):
    """The scheduler of `run.lr_sched`, with the arguments the official runner passes."""
    scheduler_cls = registry.get_lr_scheduler_class(run_cfg.lr_sched)
    return scheduler_cls(
        optimizer=optimizer,
        max_epoch=run_cfg.max_epoch,
        iters_per_epoch=iters_per_epoch,
        min_lr=run_cfg.min_lr,
        init_lr=run_cfg.init_lr,
        decay_rate=run_cfg.get("lr_decay_rate", None),
        warmup_start_lr=run_cfg.get("warmup_lr", -1),
        warmup_steps=run_cfg.get("warmup_steps", 0),
        accum_grad_iters=run_cfg.get("accum_grad_iters", 1),
        max_iters=run_cfg.get("max_iters", None),
    )


def is_no_decay(name: str, param: torch.Tensor) -> bool:
    """Official rule: 1-D tensors and names containing bias/ln/bn get no weight decay."""
    return param.ndim < 2 or "bias" in name or "ln" in name or "bn" in name


def param_groups(
    named_parameters: Iterable[tuple[str, torch.nn.Parameter]],
    weight_decay: float,
    lr_scales: Mapping[str, float] | None = None,
) -> list[dict]:
    """The official two AdamW groups over trainable parameters: decayed, then not decayed.

    `lr_scales` (ours, `run.lr_scales`) maps parameter-name prefixes to lr multipliers; the parameters
    under each prefix get their own decayed/not-decayed pair with an `lr_scale` the schedulers apply.
    Without it the groups are exactly the official two.
    """
    scales = {str(prefix): float(scale) for prefix, scale in (lr_scales or {}).items()}
    buckets: dict[str | None, tuple[list, list]] = {None: ([], [])}
    buckets.update({prefix: ([], []) for prefix in scales})
    for name, param in named_parameters:
        if not param.requires_grad:
            continue
        prefix = _longest_prefix(name, scales)
        decay, no_decay = buckets[prefix]
        (no_decay if is_no_decay(name, param) else decay).append(param)
    unused = [prefix for prefix in scales if not any(buckets[prefix])]
    if unused:
        raise ConfigError(
            f"run.lr_scales: no trainable parameter name starts with {', '.join(map(repr, unused))}"
        )
    groups = []
    for prefix, (decay, no_decay) in buckets.items():
        extra = {} if prefix is None else {"lr_scale": scales[prefix]}
        if prefix is None or decay:
            groups.append({"params": decay, "weight_decay": float(weight_decay), **extra})
        if prefix is None or no_decay:
            groups.append({"params": no_decay, "weight_decay": 0.0, **extra})
    return groups


def _longest_prefix(name: str, prefixes: Iterable[str]) -> str | None:
    name = name.removeprefix("module.")  # DDP's wrapper; the prefixes name the model's own modules
    matches = [p for p in prefixes if name == p or name.startswith(p.rstrip(".") + ".")]
    return max(matches, key=len) if matches else None
