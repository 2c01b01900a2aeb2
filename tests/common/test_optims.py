import math

import pytest
import torch
from omegaconf import OmegaConf

from minigpt4.common.optims import (
    LinearWarmupCosineLRScheduler,
    LinearWarmupStepLRScheduler,
    build_lr_scheduler,
    param_groups,
)


def _optimizer():
    return torch.optim.AdamW(torch.nn.Linear(2, 2).parameters(), lr=1.0)


def test_cosine_warmup_uses_within_epoch_step():
    sched = LinearWarmupCosineLRScheduler(
        _optimizer(),
        max_epoch=4,
        iters_per_epoch=10,
        min_lr=1e-5,
        init_lr=1e-4,
        warmup_steps=25,
        warmup_start_lr=1e-6,
    )
    assert sched.step(1, 0) == pytest.approx(1e-6)  # back at warmup_lr at the start of epoch 1
    assert sched.step(0, 5) == pytest.approx(1e-6 + (1e-4 - 1e-6) * 5 / 25)


def test_cosine_is_measured_from_step_zero():
    sched = LinearWarmupCosineLRScheduler(
        _optimizer(),
        max_epoch=5,
        iters_per_epoch=200,
        min_lr=1e-5,
        init_lr=3e-5,
        warmup_steps=200,
        warmup_start_lr=1e-6,
    )
    expected = 1e-5 + (3e-5 - 1e-5) * 0.5 * (1 + math.cos(math.pi * 200 / 1000))
    assert sched.step(1, 0) == pytest.approx(expected, rel=1e-12)
    assert sched.step(1, 0) < 3e-5  # the drop at the warmup boundary the official code has


def test_missing_warmup_lr_starts_at_init_lr():
    sched = build_lr_scheduler(
        _optimizer(),
        OmegaConf.create(
            {
                "lr_sched": "linear_warmup_cosine_lr",
                "init_lr": 3e-4,
                "min_lr": 0.0,
                "max_epoch": 3,
                "warmup_steps": 5,
            }
        ),
        iters_per_epoch=7,
    )
    assert sched.step(0, 0) == 3e-4


def test_step_scheduler_has_iters_per_epoch_and_decays():
    sched = build_lr_scheduler(
        _optimizer(),
        OmegaConf.create(
            {
                "lr_sched": "linear_warmup_step_lr",
                "init_lr": 1e-4,
                "min_lr": 2e-5,
                "lr_decay_rate": 0.5,
                "max_epoch": 4,
                "warmup_steps": 2,
            }
        ),
        iters_per_epoch=8,
    )
    assert isinstance(sched, LinearWarmupStepLRScheduler)
    assert sched.iters_per_epoch == 8
    assert sched.step(1, 3) == pytest.approx(5e-5)
    assert sched.step(3, 0) == pytest.approx(2e-5)  # floor at min_lr


def test_scheduler_sets_every_group():
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.LayerNorm(3))
    optimizer = torch.optim.AdamW(param_groups(model.named_parameters(), 0.05), lr=1.0)
    LinearWarmupCosineLRScheduler(optimizer, 1, 10, 0.0, 1e-3).step(0, 3)
    expected = 1e-3 * 0.5 * (1 + math.cos(math.pi * 0.3))
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([expected, expected])


def test_param_groups_follow_official_no_decay_rule():
    model = torch.nn.Module()
    model.proj = torch.nn.Linear(4, 4)
    model.ln_vision = torch.nn.LayerNorm(4)
    model.frozen = torch.nn.Linear(4, 4)
    model.frozen.requires_grad_(False)
    decay, no_decay = param_groups(model.named_parameters(), 0.05)
    assert [p.shape for p in decay["params"]] == [torch.Size([4, 4])]
    assert len(no_decay["params"]) == 3  # proj.bias, ln_vision.weight, ln_vision.bias
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
