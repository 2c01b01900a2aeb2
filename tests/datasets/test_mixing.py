"""Mixing as the official MultiIterLoader (one dataset per step, by sample_ratio), infinite epochs with
reshuffling, DistributedSampler partitions, DataLoader workers, and exact resume."""

from __future__ import annotations

import math

import pytest
import torch
from omegaconf import OmegaConf
from torch.utils.data import Dataset

from minigpt4.common.errors import ConfigError
from minigpt4.datasets.mixing import MultiIterLoader, build_train_loader, loader_settings


class Tagged(Dataset):
    def __init__(self, name: str, size: int) -> None:
        self.name, self.size = name, size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict:
        return {"image": torch.full((3, 2, 2), float(index)), "answer": self.name, "index": index}


def test_every_batch_comes_from_one_dataset_and_ratios_hold():
    datasets = {"a": Tagged("a", 50), "b": Tagged("b", 30), "c": Tagged("c", 20)}
    ratios = {"a": 1, "b": 3, "c": 6}
    loader = build_train_loader(datasets, {"a": 2, "b": 3, "c": 4}, ratios, seed=7)
    draws = 4000
    counts = dict.fromkeys(datasets, 0)
    for _ in range(draws):
        batch = next(loader)
        name = batch["answer"][0]
        assert batch["answer"] == [name] * {"a": 2, "b": 3, "c": 4}[name]  # one dataset, its own batch size
        assert name == loader.last_dataset
        counts[name] += 1
    for name, ratio in ratios.items():
        p = ratio / 10
        assert abs(counts[name] / draws - p) < 4 * math.sqrt(p * (1 - p) / draws), counts


def test_infinite_iteration_reshuffles_each_epoch():
    loader = build_train_loader({"a": Tagged("a", 6)}, {"a": 2}, seed=0)
    inner = loader.loaders[0]
    epochs = []
    for _ in range(4):
        epochs.append(sorted(int(i) for _ in range(3) for i in next(loader)["index"]))
    assert all(epoch == list(range(6)) for epoch in epochs)  # each epoch sees every sample once
    assert inner.epoch == 3
    orders = []
    for _ in range(3):
        orders.append([int(i) for _ in range(3) for i in next(loader)["index"]])
    assert len({tuple(order) for order in orders}) > 1  # set_epoch changes the shuffle


def test_distributed_ranks_partition_each_epoch():
    seen = []
    for rank in range(2):
        loader = build_train_loader({"a": Tagged("a", 8)}, {"a": 2}, seed=3, rank=rank, world_size=2)
        seen.append({int(i) for _ in range(2) for i in next(loader)["index"]})
    assert seen[0].isdisjoint(seen[1]) and seen[0] | seen[1] == set(range(8))


def test_workers_load_batches():
    loader = build_train_loader({"a": Tagged("a", 12), "b": Tagged("b", 12)}, {"a": 3, "b": 3}, num_workers=2)
    batches = [next(loader) for _ in range(6)]
    assert all(batch["image"].shape == (3, 3, 2, 2) for batch in batches)


def test_resume_reproduces_the_exact_batches():
    def make():
        return build_train_loader(
            {"a": Tagged("a", 7), "b": Tagged("b", 9)}, {"a": 2, "b": 3}, {"a": 1, "b": 2}, seed=11
        )

    first = make()
    for _ in range(13):  # crosses epoch boundaries of both loaders
        next(first)
    state = first.state_dict()
    expected = [(b["answer"][0], b["index"].tolist()) for b in (next(first) for _ in range(12))]
    resumed = make()
    resumed.load_state_dict(state)
    got = [(b["answer"][0], b["index"].tolist()) for b in (next(resumed) for _ in range(12))]
    assert got == expected
    assert state["steps"] == 13 and set(state["loaders"]) == {"a", "b"}


def test_loader_settings_and_bad_ratios():
    cfg = OmegaConf.create({"a": {"batch_size": 4, "sample_ratio": 10}, "b": {"batch_size": 2}})
    assert loader_settings(cfg) == ({"a": 4, "b": 2}, {"a": 10.0, "b": 1.0})
    with pytest.raises(ConfigError, match="batch_size is missing"):
        loader_settings(OmegaConf.create({"a": {"sample_ratio": 1}}))
    with pytest.raises(ConfigError, match="non-negative with a positive sum"):
        MultiIterLoader([iter([1])], [0])
    with pytest.raises(ConfigError, match="fewer samples per rank than its batch_size"):
        next(build_train_loader({"a": Tagged("a", 1)}, {"a": 2}))
