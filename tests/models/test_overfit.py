"""A tiny MiniGPT-4 and a tiny MiniGPT-v2 (random init, every part trainable) memorise a handful of samples."""

from __future__ import annotations

import pytest
import torch

from tests.models.conftest import build_tiny, tiny_samples


@pytest.mark.parametrize("name", ["vicuna0", "v2"])
def test_loss_falls_tenfold(name):
    model = build_tiny(name, seed=0).train()
    samples = tiny_samples(name, batch=4)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    first = last = None
    for _ in range(150):
        loss = model(samples)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        first = first if first is not None else loss.item()
        last = loss.item()
        if last < first / 10:
            break
    assert last < first / 10, f"{name}: loss {first:.3f} -> {last:.3f}"
