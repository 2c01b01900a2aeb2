"""Per-step metrics of a run: the JSON-lines log, the official log.txt, optional wandb/TensorBoard, the plot."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from minigpt4.common.dist import is_main_process
from minigpt4.common.logging import JsonLinesLog

logger = logging.getLogger(__name__)


class RunMetrics:
    def __init__(self, run_dir: Path, run_cfg: Any, config: dict) -> None:
        self.run_dir = run_dir
        self.steps = JsonLinesLog(run_dir / "log.jsonl")
        self.text_log = run_dir / "log.txt"
        self.backends: list[Any] = []
        if not is_main_process():
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        if not self.text_log.exists():
            self.text_log.write_text(json.dumps(config, indent=4, default=str) + "\n")
        if run_cfg.get("wandb_log", False):
            self.backends.append(_wandb(run_cfg, config))
        if run_cfg.get("tensorboard_log", False):
            self.backends.append(_tensorboard(run_dir))
        self.backends = [b for b in self.backends if b is not None]

    def log_step(self, record: dict[str, Any]) -> None:
        self.steps.write(record)
        for backend in self.backends:
            backend(record)

    def log_epoch(self, record: dict[str, Any]) -> None:
        if is_main_process():
            with self.text_log.open("a") as handle:
                handle.write(json.dumps(record, default=str) + "\n")

    def plot(self) -> Path | None:
        """loss and lr against the global step, as PNG, from the JSON-lines log."""
        if not is_main_process():
            return None
        records = [r for r in self.steps.read() if "loss" in r]
        if not records:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        steps = [r["step"] for r in records]
        figure, (loss_axis, lr_axis) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
        loss_axis.plot(steps, [r["loss"] for r in records], lw=1)
        loss_axis.set_ylabel("loss")
        loss_axis.set_yscale("log" if min(r["loss"] for r in records) > 0 else "linear")
        lr_axis.plot(steps, [r["lr"] for r in records], lw=1, color="tab:orange")
        lr_axis.set_ylabel("learning rate")
        lr_axis.set_xlabel("global step")
        figure.suptitle(self.run_dir.name)
        figure.tight_layout()
        path = self.run_dir / "loss_lr.png"
        figure.savefig(path, dpi=100)
        plt.close(figure)
        return path


def _wandb(run_cfg: Any, config: dict):
    try:
        import wandb
    except ImportError:
        logger.warning("run.wandb_log is true but wandb is not installed; logging to log.jsonl only")
        return None
    wandb.init(project="minigptv", name=run_cfg.get("job_name"), config=config)
    return lambda record: wandb.log(record)


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        logger.warning(
            "run.tensorboard_log is true but tensorboard is not installed; logging to log.jsonl only"
        )
        return None
    writer = SummaryWriter(str(run_dir / "tensorboard"))

    def write(record: dict[str, Any]) -> None:
        for key in ("loss", "lr", "samples_per_s"):
            if key in record:
                writer.add_scalar(f"train/{key}", record[key], record["step"])

    return write
