"""The body of train.py: parse arguments, validate the config, then build task, data, model and runner."""

from __future__ import annotations

import argparse
import logging
import sys

from minigpt4.common.errors import MiniGPTError
from minigpt4.common.warnings_filter import quiet_known_warnings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train a MiniGPT model.")
    parser.add_argument("--cfg-path", required=True, help="path to a train config YAML")
    parser.add_argument(
        "--options",
        nargs="+",
        help="override config keys: key=value ... (e.g. run.init_lr=1e-4 model.ckpt=/path/ckpt.pth)",
    )
    return parser.parse_args(argv)


def run_training(args: argparse.Namespace) -> dict:
    """Validate first (no model or data work before that), then train. Returns the runner's summary."""
    from minigpt4.common.config import Config
    from minigpt4.common.dist import init_distributed_mode, seed_everything
    from minigpt4.common.logging import setup_logger
    from minigpt4.common.registry import registry

    cfg = Config(args, purpose="train")
    init_distributed_mode(cfg.run_cfg)
    seed_everything(cfg.run_cfg.get("seed", 42))
    setup_logger()
    task = registry.get_task_class(cfg.run_cfg.task).setup_task(cfg=cfg)
    datasets = task.build_datasets(cfg)
    model = task.build_model(cfg)
    runner_cls = registry.get_runner_class(cfg.run_cfg.get("runner", "runner_base"))
    runner = runner_cls(cfg=cfg, task=task, model=model, datasets=datasets)
    return runner.train()


def train_main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_known_warnings()
    try:
        run_training(args)
    except MiniGPTError as exc:
        # our errors already say what to fix: one line per problem, no traceback
        logging.getLogger(__name__).debug("details", exc_info=True)
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 0
