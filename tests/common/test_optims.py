import math

import pytest
import torch
from omegaconf import OmegaConf

from minigpt4.common.errors import ConfigError
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


def _vit_and_proj():
    model = torch.nn.Module()
    model.visual_encoder = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    model.visual_encoder_extra = torch.nn.Linear(4, 4)  # shares the text prefix, not the module
    model.proj = torch.nn.Linear(4, 4)
    return model


def test_lr_scales_give_a_prefix_its_own_scaled_groups():
    model = _vit_and_proj()
    groups = param_groups(model.named_parameters(), 0.05, {"visual_encoder": 0.25})
    assert [(len(g["params"]), g["weight_decay"], g.get("lr_scale")) for g in groups] == [
        (2, 0.05, None),  # proj.weight, visual_encoder_extra.weight
        (2, 0.0, None),
        (1, 0.05, 0.25),  # visual_encoder.0.weight
        (3, 0.0, 0.25),  # its bias and the LayerNorm
    ]
    optimizer = torch.optim.AdamW(groups, lr=1.0)
    LinearWarmupCosineLRScheduler(optimizer, 1, 10, 0.0, 1e-3).step(0, 0)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([1e-3, 1e-3, 2.5e-4, 2.5e-4])


def test_lr_scales_match_through_the_ddp_wrapper_and_prefer_the_longest_prefix():
    wrapper = torch.nn.Module()
    wrapper.module = _vit_and_proj()
    scales = {"visual_encoder": 0.5, "visual_encoder.1": 0.1}
    groups = param_groups(wrapper.named_parameters(), 0.05, scales)
    by_scale = {}
    for group in groups:
        scale = group.get("lr_scale")
        by_scale[scale] = by_scale.get(scale, 0) + sum(p.numel() for p in group["params"])
    assert by_scale == {None: 40, 0.5: 20, 0.1: 8}


def test_lr_scales_with_an_unknown_prefix_is_a_config_error():
    with pytest.raises(ConfigError, match=r"run\.lr_scales.*'vision'"):
        param_groups(_vit_and_proj().named_parameters(), 0.05, {"vision": 0.5})
