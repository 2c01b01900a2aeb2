"""Training-loop overhead on the tiny shapes config (CPU): steps/s and the share of step time spent outside
forward/backward (data, lr, optimizer step, logging, checkpointing). One JSON line.

    python bench/bench_train_step.py [--steps 300] [--config train_configs/shapes/minigpt4_stage2.yaml]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--config", default="train_configs/shapes/minigpt4_stage2.yaml")
    args = parser.parse_args()

    from minigpt4.common.config import Config
    from minigpt4.common.registry import registry
    from minigpt4.datasets.shapes import generate_world
    from minigpt4.runners.optimization import Stepper
    from minigpt4.runners.runner import RunnerBase

    work = Path(tempfile.mkdtemp(prefix="bench_train_"))
    generate_world(work / "world", num_train=200, num_heldout=6)
    os.environ["SHAPES_WORLD"] = str(work / "world")
    iters = args.steps // 2
    cfg = Config.from_path(
        REPO / args.config,
        [
            f"run.output_dir={work}",
            "run.job_id=bench",
            "run.max_epoch=2",
            f"run.iters_per_epoch={iters}",
            f"run.save_every_steps={iters // 2}",
            "run.progress_bar=false",
            "run.log_freq=10",
            "model.vit_ckpt=",  # the quickstart's encoder file is not needed: a random frozen one costs the same
        ],
    )
    task = registry.get_task_class(cfg.run_cfg.task).setup_task(cfg=cfg)
    runner = RunnerBase(cfg, task, task.build_model(cfg), task.build_datasets(cfg))

    inside = {"seconds": 0.0}
    compute_loss, backward = runner.compute_loss, Stepper.backward

    def timed_loss(samples):
        start = time.perf_counter()
        loss = compute_loss(samples)
        inside["seconds"] += time.perf_counter() - start
        return loss

    def timed_backward(self, loss):
        start = time.perf_counter()
        backward(self, loss)
        inside["seconds"] += time.perf_counter() - start

    runner.compute_loss = timed_loss
    Stepper.backward = timed_backward
    start = time.perf_counter()
    runner.train()
    total = time.perf_counter() - start
    steps = runner.state.global_step
    print(
        json.dumps(
            {
                "name": "train_step_overhead",
                "config": args.config,
                "steps": steps,
                "ours": round(steps / total, 2),
                "unit": "steps/s (incl. 2 epoch + 2 step checkpoints, plots)",
                "baseline": round(steps / inside["seconds"], 2),
                "baseline_unit": "steps/s of forward+backward alone",
                "ratio": round(steps / total / (steps / inside["seconds"]), 3),
                "outside_fwd_bwd_share": round(1 - inside["seconds"] / total, 3),
                "device": f"cpu x{torch.get_num_threads()} threads",
            }
        )
    )


if __name__ == "__main__":
    main()
