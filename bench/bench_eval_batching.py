"""Evaluation throughput: samples/s with batched generation against batch size 1 (one JSON line).

    python bench/bench_eval_batching.py [--samples 24] [--batch-size 8] [--max-new-tokens 12] [--device cpu]

Runs the real evaluation loop (image loading, prompt template, model.generate, scoring records) of the tiny
MiniGPT-v2 (`minigpt_v2`/`tiny`, random weights: throughput only) on a generated GQA-format split.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from minigpt4.cli.evaluate import build_model_and_processor  # noqa: E402
from minigpt4.common.config import Config  # noqa: E402
from minigpt4.evaluation.sharded_runs import evaluate_jobs, prepare_jobs  # noqa: E402
from tests.evaluation.eval_world import eval_config, write_eval_world  # noqa: E402


def samples_per_second(model, processor, world: Path, batch_size: int, max_new_tokens: int, device) -> float:
    config = eval_config(world, batch_size=batch_size, names=("gqa",))
    config["gqa"]["max_new_tokens"] = max_new_tokens
    jobs = prepare_jobs(config, ["gqa"])
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        evaluate_jobs(jobs, model, processor, out, device)
        elapsed = time.perf_counter() - start
    return len(jobs[0].samples) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=12)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    device = torch.device(args.device)
    cfg = Config.from_path(
        REPO / "eval_configs" / "shapes_benchmark_evaluation.yaml", options=["model.ckpt="], purpose="eval"
    )
    model, processor = build_model_and_processor(cfg, device)
    with tempfile.TemporaryDirectory() as root:
        world = write_eval_world(Path(root), count=args.samples)
        samples_per_second(model, processor, world, args.batch_size, 2, device)  # warm-up
        batched = samples_per_second(model, processor, world, args.batch_size, args.max_new_tokens, device)
        single = samples_per_second(model, processor, world, 1, args.max_new_tokens, device)
    print(
        json.dumps(
            {
                "name": "eval_batching",
                "ours": round(batched, 3),
                "baseline": round(single, 3),
                "ratio": round(batched / single, 3),
                "unit": f"samples/s, batch {args.batch_size} vs 1, {args.samples} samples, "
                f"{args.max_new_tokens} new tokens, tiny minigpt_v2",
                "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            }
        )
    )


if __name__ == "__main__":
    main()
