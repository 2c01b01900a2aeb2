"""Parity family `image_processor`: `blip2_image_eval` / `blip2_image_train` against the official torchvision path.

Tolerances reached: the uint8 resize is compared exactly (0 levels) because torchvision's PIL path of `Resize` is
`PIL.Image.resize(BICUBIC)`, which we call directly; the final float32 tensors use the fixture's 1e-6 bound (we
reach 0: same float32 `(u8/255 - mean)/std` order), the stats rel 1e-6.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

from minigpt4.processors.image import Blip2ImageEvalProcessor, Blip2ImageTrainProcessor
from minigpt4.tools.parity.report import FamilyReport

TENSOR_ATOL = 1e-6
STATS_REL = 1e-6
_SIZED_KEY = re.compile(r"^(resized_u8|pixel_values)_(\d+)$")
_STATS_KEY = re.compile(r"^stats_(\d+)$")


def _stats(pixels: torch.Tensor) -> dict:
    values = pixels.to(torch.float64)
    return {
        "mean": values.mean().item(),
        "sum": values.sum().item(),
        "min": values.min().item(),
        "max": values.max().item(),
        "shape": list(pixels.shape),
    }


def check(path: Path) -> FamilyReport:
    report = FamilyReport("image_processor")
    path = Path(path)
    cases = json.loads((path / "cases.json").read_text())
    expected = load_file(str(path / "expected.safetensors"))
    train_equals_eval = cases.get("train_equals_eval", True)
    processors: dict[int, tuple[Blip2ImageEvalProcessor, Blip2ImageTrainProcessor]] = {}
    worst_u8 = 0

    def pair(size: int) -> tuple[Blip2ImageEvalProcessor, Blip2ImageTrainProcessor]:
        if size not in processors:
            processors[size] = (
                Blip2ImageEvalProcessor.from_config({"image_size": size}),
                Blip2ImageTrainProcessor.from_config({"image_size": size}),
            )
        return processors[size]

    for record in cases["images"]:
        name = record["file"]
        try:
            image = Image.open(path / name).convert("RGB")
        except Exception as exc:
            report.error(f"{name}: open", exc)
            continue
        for kind_size, key in record.get("keys", {}).items():
            match = _SIZED_KEY.match(kind_size)
            if not match:
                continue
            kind, size = match.group(1), int(match.group(2))
            eval_proc, _ = pair(size)
            if kind == "resized_u8":
                got = torch.from_numpy(np.asarray(eval_proc.resize(image)).copy()).permute(2, 0, 1)
                if got.shape == expected[key].shape:
                    worst_u8 = max(worst_u8, int((got.int() - expected[key].int()).abs().max()))
                report.tensor(f"{name}: {kind_size}", expected[key], got, atol=0.0, rtol=0.0)
            else:
                report.tensor(f"{name}: {kind_size}", expected[key], eval_proc(image), TENSOR_ATOL, 0.0)
        for stats_key, stats in record.items():
            match = _STATS_KEY.match(stats_key)
            if not match:
                continue
            eval_proc, train_proc = pair(int(match.group(1)))
            pixels = eval_proc(image)
            report.close(f"{name}: {stats_key}", stats, _stats(pixels), STATS_REL)
            if train_equals_eval:
                same = torch.equal(train_proc(image), pixels)
                report.record(same, f"{name}: train == eval at {match.group(1)}", True, same)
    report.notes.append(f"max |delta u8| vs official resize: {worst_u8}")
    return report
