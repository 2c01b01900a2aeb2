"""Length bucketing (`run.length_bucket_batches`): one epoch of shuffled padded batches vs length-bucketed ones.

    python bench/bench_length_bucketing.py [--samples 64] [--batch-size 8] [--window 8] [--repeats 3]
                                           [--threads 1]

Tiny MiniGPT-4 (Vicuna v0 layout) as stage 2 trains it (ViT, Q-Former, LLM frozen; llama_proj and AdamW), over
a dataset whose answers range from 2 to 60 words (max_txt_len 160, so none is cut). Both sides draw one epoch
from `build_train_loader` with the same seed; "baseline" is the official shuffled sampler, "ours" the
`LengthBucketedSampler` with windows of `--window` batches. Padding = LLM positions holding no token. Repeats
alternate the two; ratio = ours / baseline of the median epoch seconds. One JSON line.
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
from torch.utils.data import Dataset

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from minigpt4.common.registry import registry  # noqa: E402
from minigpt4.datasets.mixing import build_train_loader  # noqa: E402

WORDS = [
    "a",
    "red",
    "circle",
    "two",
    "blue",
    "squares",
    "small",
    "green",
    "triangle",
    "large",
    "yellow",
    "star",
    "near",
    "the",
    "window",
    "on",
    "table",
]


class VariedCaptions(Dataset):
    def __init__(self, samples: int, size: int) -> None:
        generator = torch.Generator().manual_seed(0)
        self.images = torch.randn(samples, 3, size, size, generator=generator)
        words = torch.randint(2, 61, (samples,), generator=generator).tolist()
        self.answers = [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(n)) for i, n in enumerate(words)]

    def __len__(self) -> int:
        return len(self.answers)

    def __getitem__(self, index: int) -> dict:
        return {
            "image": self.images[index],
            "instruction_input": "<Img><ImageHere></Img> Describe the image.",
            "answer": self.answers[index],
        }

    def text_length(self, index: int) -> int:
        return len(self.answers[index])


def build():
    cls = registry.get_model_class("minigpt4")
    cfg = OmegaConf.load(cls.default_config_path("tiny_vicuna0")).model
    cfg.update(freeze_vit=True, freeze_qformer=True, freeze_llm=True, prompt_path="", max_txt_len=160)
    return cls.from_config(cfg).train()


def epoch(model, optimizer, dataset, batch: int, window: int) -> tuple[float, int]:
    loader = build_train_loader({"caps": dataset}, {"caps": batch}, seed=3, length_bucket_batches=window)
    padding = 0
    start = time.perf_counter()
    for _ in range(len(dataset) // batch):
        samples = next(loader)
        optimizer.zero_grad(set_to_none=True)
        model(samples)["loss"].backward()
        optimizer.step()
        lengths = model.llama_tokenizer(
            samples["answer"], add_special_tokens=False, return_length=True
        ).length
        padding += len(lengths) * max(lengths) - sum(lengths)
    return time.perf_counter() - start, padding


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("minigpt4").setLevel(logging.ERROR)
    torch.manual_seed(0)
    model = build()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    dataset = VariedCaptions(args.samples, model.visual_encoder.cfg.image_size)
    epoch(model, optimizer, dataset, args.batch_size, 0)  # warm-up
    plain, bucketed = [], []
    for _ in range(args.repeats):
        plain.append(epoch(model, optimizer, dataset, args.batch_size, 0))
        bucketed.append(epoch(model, optimizer, dataset, args.batch_size, args.window))
    ours = statistics.median(seconds for seconds, _ in bucketed)
    baseline = statistics.median(seconds for seconds, _ in plain)
    print(
        json.dumps(
            {
                "name": "length_bucketing_stage2_epoch",
                "ours": round(ours, 3),
                "baseline": round(baseline, 3),
                "unit": "s/epoch",
                "ratio": round(ours / baseline, 3),
                "answer_padding_tokens": {"ours": bucketed[0][1], "baseline": plain[0][1]},
                "device": "cpu",
                "threads": args.threads,
            }
        )
    )


if __name__ == "__main__":
    main()
