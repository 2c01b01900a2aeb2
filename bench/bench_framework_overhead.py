"""Framework overhead of a tiny training step (CPU): the runner's loop against bare forward+backward+AdamW.

    python bench/bench_framework_overhead.py [--config train_configs/shapes/minigpt4_stage1.yaml]
        [--steps 40] [--repeats 5] [--threads 1] [--num-workers 0]

"ours" is `loop.train_epoch` as `RunnerBase.train` calls it: the mixed loader (DataLoader, image decode and
processors, collate), the lr schedule, autocast, the finite-loss check, backward and the optimizer step through
`Stepper`, metrics and logging every `run.log_freq` steps. "baseline" is the same model modules on batches drawn
beforehand and kept in memory: `model(samples)["loss"].backward(); AdamW.step(); zero_grad()`. The two run in
alternating blocks of `--steps` steps, `--repeats` times; ratio = median ours / median baseline (seconds/step).
Checkpoints are not in either side (they are written every `save_every_steps`, not every step; the JSON
reports one checkpoint's seconds separately). `loop_on_memory_batches` is ours with the baseline's in-memory
batches instead of the loader: the loop's own cost without the data path. One JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="train_configs/shapes/minigpt4_stage1.yaml")
    parser.add_argument("--steps", type=int, default=40, help="steps per block")
    parser.add_argument("--repeats", type=int, default=5, help="blocks per side, alternating")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--options", nargs="*", default=[], help="extra config overrides")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    torch.set_num_threads(args.threads)

    from minigpt4.common.config import Config
    from minigpt4.common.registry import registry
    from minigpt4.datasets.shapes import generate_world
    from minigpt4.runners.loop import LoopState, move_to_device, train_epoch
    from minigpt4.runners.runner import RunnerBase

    work = Path(tempfile.mkdtemp(prefix="bench_overhead_"))
    generate_world(work / "world", num_train=200, num_heldout=6)
    os.environ["SHAPES_WORLD"] = str(work / "world")
    cfg = Config.from_path(
        REPO / args.config,
        [
            f"run.output_dir={work}",
            "run.job_id=bench",
            f"run.num_workers={args.num_workers}",
            "run.progress_bar=false",
            "model.vit_ckpt=",  # a random frozen encoder costs the same as the quickstart's
            *args.options,
        ],
    )
    task = registry.get_task_class(cfg.run_cfg.task).setup_task(cfg=cfg)
    torch.manual_seed(0)
    runner = RunnerBase(cfg, task, task.build_model(cfg), task.build_datasets(cfg))
    runner.model.train()
    model = runner.model
    iters = runner.iters_per_epoch

    batches = [move_to_device(next(runner.loader), runner.device) for _ in range(args.steps)]
    for index, samples in enumerate(batches):
        samples.update(epoch=0, num_iters_per_epoch=iters, iters=index)
    trainable = [p for p in model.parameters() if p.requires_grad]
    bare_optimizer = torch.optim.AdamW(trainable, lr=1e-5)

    def bare_block() -> float:
        start = time.perf_counter()
        for samples in batches:
            model(samples)["loss"].backward()
            bare_optimizer.step()
            bare_optimizer.zero_grad(set_to_none=True)
        return (time.perf_counter() - start) / len(batches)

    state = LoopState()
    replay = {"index": 0}

    def memory_batch() -> dict:
        replay["index"] += 1
        return dict(batches[replay["index"] % len(batches)])

    def ours_block(next_batch=lambda: next(runner.loader)) -> float:
        state.iter_in_epoch = 0
        start = time.perf_counter()
        train_epoch(
            state=state,
            iters_per_epoch=args.steps,
            max_steps=10**12,
            next_batch=next_batch,
            compute_loss=runner.compute_loss,
            scheduler=runner.scheduler,
            stepper=runner.stepper,
            device=runner.device,
            log_freq=int(runner.run_cfg.get("log_freq", 50)),
            log_step=runner.metrics.log_step,
            save_step_checkpoint=None,
            save_every_steps=0,
            show_progress=False,
        )
        return (time.perf_counter() - start) / args.steps

    bare_block(), ours_block()  # warm-up
    ours, bare, loop_only = [], [], []
    for _ in range(args.repeats):
        ours.append(ours_block())
        bare.append(bare_block())
        loop_only.append(ours_block(memory_batch))
    start = time.perf_counter()
    runner._save("checkpoint_bench.pth", False)
    checkpoint_s = time.perf_counter() - start
    ours_s, bare_s = statistics.median(ours), statistics.median(bare)
    print(
        json.dumps(
            {
                "name": "framework_overhead",
                "config": args.config,
                "ours": round(ours_s * 1000, 3),
                "baseline": round(bare_s * 1000, 3),
                "unit": "ms per training step (median of blocks)",
                "ratio": round(ours_s / bare_s, 3),
                "loop_on_memory_batches": round(statistics.median(loop_only) * 1000, 3),
                "ours_blocks_ms": [round(s * 1000, 2) for s in ours],
                "baseline_blocks_ms": [round(s * 1000, 2) for s in bare],
                "checkpoint_s": round(checkpoint_s, 3),
                "steps_per_block": args.steps,
                "num_workers": args.num_workers,
                "device": f"cpu x{torch.get_num_threads()} threads",
                "load_avg_1m": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
