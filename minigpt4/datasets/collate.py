"""Batch collation: the batch dict the models consume.

`image` becomes a (B, 3, H, W) float tensor; strings stay lists of str (`instruction_input`, `answer`, `conv_q`,
`conv_a`, `connect_sym`, ...); ints, floats and bools become tensors, as torch's `default_collate` (which the
official DataLoaders use) does. Keys missing from some samples are dropped, as LAVIS `ConcatDataset` does.
"""

from __future__ import annotations

from typing import Any

import torch

from minigpt4.common.errors import DataError


def collate_samples(samples: list[dict[str, Any]]) -> dict[str, Any]:
    if not samples:
        raise DataError("cannot collate an empty batch")
    shared = [key for key in samples[0] if all(key in sample for sample in samples)]
    batch: dict[str, Any] = {}
    for key in shared:
        values = [sample[key] for sample in samples]
        first = values[0]
        if isinstance(first, torch.Tensor):
            shapes = {tuple(value.shape) for value in values}
            if len(shapes) != 1:
                raise DataError(f"cannot batch {key!r}: samples have shapes {sorted(shapes)}")
            batch[key] = torch.stack(values)
        elif isinstance(first, bool):
            batch[key] = torch.tensor(values, dtype=torch.bool)
        elif isinstance(first, int) and all(type(value) is int for value in values):
            batch[key] = torch.tensor(values, dtype=torch.int64)
        elif isinstance(first, float) and all(isinstance(value, (int, float)) for value in values):
            batch[key] = torch.tensor(values, dtype=torch.float64)
        else:
            batch[key] = values
    return batch
