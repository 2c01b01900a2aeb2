"""Parity family `lr_schedule`: the lr of both schedulers at every recorded (epoch, step)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from omegaconf import OmegaConf

from minigpt4.common.optims import build_lr_scheduler, param_groups
from minigpt4.tools.parity.report import FamilyReport

REL_TOL = 1e-12


def _official_optimizer(init_lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """Two param groups, as the official runner builds them."""
    model = torch.nn.Linear(2, 2)
    return torch.optim.AdamW(param_groups(model.named_parameters(), weight_decay), lr=init_lr)


def check(path: Path) -> FamilyReport:
    report = FamilyReport("lr_schedule")
    for case in json.loads(Path(path).read_text())["cases"]:
        run_cfg = OmegaConf.create(case["run_cfg"])
        optimizer = _official_optimizer(run_cfg.init_lr, run_cfg.get("weight_decay", 0.0))
        name = case["name"]
        scheduler = build_lr_scheduler(optimizer, run_cfg, iters_per_epoch=run_cfg.iters_per_epoch)
        report.close(
            f"{name}: initial lr", case["initial_lr"], [g["lr"] for g in optimizer.param_groups], REL_TOL
        )
        if "error" in case:
            expected_type = case["error"].split(":", 1)[0]
            try:
                for epoch in range(run_cfg.max_epoch):
                    for step in range(run_cfg.iters_per_epoch):
                        scheduler.step(cur_epoch=epoch, cur_step=step)
            except Exception as exc:  # the official error type is the expected value
                report.exact(f"{name}: error", expected_type, type(exc).__name__)
            else:
                report.exact(f"{name}: error", expected_type, "no error")
            continue
        for epoch, step, expected_lr in case["steps"]:
            scheduler.step(cur_epoch=epoch, cur_step=step)
            got = [group["lr"] for group in optimizer.param_groups]
            report.close(f"{name}: lr at epoch {epoch} step {step}", [expected_lr] * len(got), got, REL_TOL)
    return report
