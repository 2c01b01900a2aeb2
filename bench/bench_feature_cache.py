"""Feature caching (`run.cache_image_features`): a tiny stage-2 epoch served from the cache vs computed fresh.

    python bench/bench_feature_cache.py [--images 32] [--batch-size 4] [--repeats 5] [--threads 1] [--device cpu]

Tiny MiniGPT-4 (Vicuna v0 layout) as stage 2 trains it: ViT, Q-Former and LLM frozen, llama_proj trained with
AdamW. One "epoch" is every image once, in batches. "baseline" is the official path (ViT + Q-Former every step);
"ours" is a second epoch with the cache filled by the first (llama_proj and the LLM still run forward and
backward). Repeats alternate the two; ratio = ours / baseline of the median epoch seconds. One JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from minigpt4.common.registry import registry  # noqa: E402

ANSWERS = ["a red circle on the left", "two blue squares", "a small green triangle", "a large yellow star"]


def build(device: torch.device):
    cls = registry.get_model_class("minigpt4")
    cfg = OmegaConf.load(cls.default_config_path("tiny_vicuna0")).model
    cfg.update(freeze_vit=True, freeze_qformer=True, freeze_llm=True, prompt_path="")
    return cls.from_config(cfg).to(device).train()


def batches(images: int, batch: int, size: int, device: torch.device) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randn(images, 3, size, size, generator=generator).to(device)
    return [
        {
            "image": pixels[start : start + batch],
            "instruction_input": ["<Img><ImageHere></Img> Describe the image."] * batch,
            "answer": [ANSWERS[(start + i) % len(ANSWERS)] for i in range(batch)],
        }
        for start in range(0, images - batch + 1, batch)
    ]


def epoch_seconds(model, optimizer, epoch: list[dict], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for samples in epoch:
        optimizer.zero_grad(set_to_none=True)
        model(samples)["loss"].backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("minigpt4").setLevel(logging.ERROR)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = build(device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    epoch = batches(args.images, args.batch_size, model.visual_encoder.cfg.image_size, device)
    cache = model.enable_image_feature_cache()
    model.image_feature_cache = None
    epoch_seconds(model, optimizer, epoch, device)  # warm-up
    fresh, cached = [], []
    for _ in range(args.repeats):
        model.image_feature_cache = None
        fresh.append(epoch_seconds(model, optimizer, epoch, device))
        cache.clear()
        model.image_feature_cache = cache
        epoch_seconds(model, optimizer, epoch, device)  # epoch 1 fills the cache
        cached.append(epoch_seconds(model, optimizer, epoch, device))  # epoch 2: every image a hit
    ours, baseline = statistics.median(cached), statistics.median(fresh)
    print(
        json.dumps(
            {
                "name": "feature_cache_stage2_epoch2",
                "ours": round(ours / len(epoch) * 1000, 2),
                "baseline": round(baseline / len(epoch) * 1000, 2),
                "unit": "ms/step",
                "ratio": round(ours / baseline, 3),
                "speedup": round(baseline / ours, 2),
                "cache_hits": cache.hits,
                "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                "threads": args.threads,
            }
        )
    )


if __name__ == "__main__":
    main()
