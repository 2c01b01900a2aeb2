"""Tasks: build model and datasets from a config, define the training step."""

from __future__ import annotations


def setup_task(cfg):
    from minigpt4.common.registry import registry

    return registry.get_task_class(cfg.run_cfg.task).setup_task(cfg=cfg)
