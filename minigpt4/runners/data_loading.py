"""The training data stream: one infinite loader per dataset, mixed by `sample_ratio`, resumable exactly.

As the official `MultiIterLoader`, each step draws a whole batch from one dataset chosen with probability
proportional to its `sample_ratio` (uniform when absent), with that dataset's own `batch_size`.
Map-style datasets are read in a deterministic shuffled order per pass, split across ranks like
`DistributedSampler` (drop_last), and restarted for the next pass when exhausted (infinite iteration).

Exact resume: the state is, per dataset, (pass index, batches drawn in this pass), plus the state of
the mixing RNG. A restored loader skips the drawn batches through its sampler, without reading them.
Streaming (webdataset) datasets are infinite and random by design; they resume with a fresh stream.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, IterableDataset, Sampler
from torch.utils.data.dataloader import default_collate

from minigpt4.common.errors import ConfigError

logger = logging.getLogger(__name__)


class ShardedPassSampler(Sampler[int]):
    """Indices of one pass: a seeded permutation, this rank's share, starting after `skip` indices."""

    def __init__(self, length: int, seed: int, pass_index: int, rank: int, world_size: int, skip: int = 0):
        generator = torch.Generator().manual_seed(seed + pass_index)
        order = torch.randperm(length, generator=generator)
        usable = length - length % world_size  # drop_last across ranks, as DistributedSampler(drop_last=True)
        # interleaved like DistributedSampler: a step's batches over all ranks are one contiguous global batch
        self.indices = order[rank:usable:world_size][skip:].tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class DatasetStream:
    """An endless stream of batches from one dataset."""

    def __init__(
        self,
        name: str,
        dataset: Any,
        batch_size: int,
        num_workers: int,
        seed: int,
        rank: int,
        world_size: int,
    ) -> None:
        self.name = name
        self.dataset = dataset
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.streaming = isinstance(dataset, IterableDataset) or not hasattr(dataset, "__len__")
        self.collate = getattr(dataset, "collater", None) or default_collate
        self.pass_index = 0
        self.batches_in_pass = 0
        self._iterator: Iterator | None = None
        if not self.streaming and len(dataset) // world_size < batch_size:
            raise ConfigError(
                f"datasets.{name}: {len(dataset)} samples over {world_size} process(es) is fewer than one batch of "
                f"{batch_size}; lower datasets.{name}.batch_size"
            )

    def _loader(self) -> DataLoader:
        # worker seeds: fixed per (seed, rank, pass) so resumed augmentations match
        generator = torch.Generator().manual_seed((self.seed * 1000 + self.pass_index) * 64 + self.rank)
        if self.streaming:
            return DataLoader(
                self.dataset,
                batch_size=self.batch_size,
                num_workers=self.num_workers,
                collate_fn=self.collate,
                generator=generator,
            )
        sampler = ShardedPassSampler(
            len(self.dataset),
            self.seed,
            self.pass_index,
            self.rank,
            self.world_size,
            skip=self.batches_in_pass * self.batch_size,
        )
        return DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=self.collate,
            drop_last=True,
            generator=generator,
            pin_memory=torch.cuda.is_available(),
        )

    def next(self) -> dict[str, Any]:
        for _ in range(2):
            if self._iterator is None:
                self._iterator = iter(self._loader())
            try:
                batch = next(self._iterator)
            except StopIteration:
                self.pass_index += 1
                self.batches_in_pass = 0
                self._iterator = None
                continue
            self.batches_in_pass += 1
            return batch
        raise ConfigError(f"datasets.{self.name}: the dataset yields no batch (is it empty?)")

    def state_dict(self) -> dict[str, int]:
        return {"pass_index": self.pass_index, "batches_in_pass": self.batches_in_pass}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.pass_index = int(state["pass_index"])
        self.batches_in_pass = int(state["batches_in_pass"])
        self._iterator = None
        if self.streaming:
            logger.warning(
                "datasets.%s streams (webdataset): it resumes with a fresh random stream", self.name
            )


class MixedLoader:
    """Each `next()` picks a dataset by ratio and returns one batch of it."""

    def __init__(self, streams: list[DatasetStream], ratios: list[float], seed: int) -> None:
        self.streams = streams
        self.ratios = ratios
        self.rng = random.Random(seed)

    def next(self) -> dict[str, Any]:
        index = (
            self.rng.choices(range(len(self.streams)), weights=self.ratios, k=1)[0]
            if len(self.streams) > 1
            else 0
        )
        return self.streams[index].next()

    def state_dict(self) -> dict[str, Any]:
        version, keys, gauss = self.rng.getstate()
        return {
            "rng": [version, torch.tensor(keys, dtype=torch.int64), gauss],
            "streams": {stream.name: stream.state_dict() for stream in self.streams},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        version, keys, gauss = state["rng"]
        self.rng.setstate((version, tuple(int(k) for k in keys.tolist()), gauss))
        for stream in self.streams:
            if stream.name in state["streams"]:
                stream.load_state_dict(state["streams"][stream.name])


def build_train_loader(
    datasets: dict[str, dict[str, Any]],
    datasets_cfg: Any,
    num_workers: int,
    seed: int,
    rank: int,
    world_size: int,
    split: str = "train",
) -> MixedLoader:
    streams, ratios = [], []
    for name, splits in datasets.items():
        if split not in splits:
            raise ConfigError(f"datasets.{name}: has no {split!r} split (has {sorted(splits)})")
        dataset_cfg = datasets_cfg[name]
        batch_size = dataset_cfg.get("batch_size")
        if batch_size is None:
            raise ConfigError(
                f"datasets.{name}.batch_size is missing (the per-process batch size of this dataset)"
            )
        # the shuffle seed is shared by all ranks (they split one permutation); mixing uses seed + rank
        streams.append(
            DatasetStream(name, splits[split], int(batch_size), num_workers, seed, rank, world_size)
        )
        ratios.append(float(dataset_cfg.get("sample_ratio", 1)))
    if not streams:
        raise ConfigError("no training datasets: add at least one under `datasets:`")
    return MixedLoader(streams, ratios, seed + rank)
