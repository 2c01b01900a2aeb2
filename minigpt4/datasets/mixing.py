"""Training data loading: one DataLoader per dataset, mixed one dataset per step (official MultiIterLoader).

Official behaviour reproduced:
* each dataset has its own DataLoader and `batch_size`; map-style datasets use a DistributedSampler (shuffled,
  `drop_last=True`) under torchrun, webdataset streams are iterated as they are;
* `IterLoader` makes a loader infinite: at the end of an epoch it bumps the sampler epoch (new shuffle) and
  starts again (the official 2-second sleep at that point is left out);
* `MultiIterLoader` draws, at every step and independently on every rank, one dataset with probability
  sample_ratio / sum(sample_ratios), and returns that dataset's next batch.

Added for exact resume: `MultiIterLoader.state_dict()` records the mixing RNG state and, per loader, the epoch
and the number of batches drawn in it; `load_state_dict` restores them, and the sampler skips the batches
already drawn without loading them. Seeded webdataset streams (`SeededCaptionStream`) also resume exactly: the
loader records, per DataLoader worker, how many shuffled samples its consumed batches came from, and the stream
replays up to there (prefetched, unconsumed batches do not count). Unseeded streams resume with a fresh
shuffle, as in the official code; random instruction-pool choices made inside DataLoader workers are not
replayed.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, IterableDataset

from minigpt4.common.errors import ConfigError
from minigpt4.datasets.collate import collate_samples
from minigpt4.datasets.formats.webdataset_stream import STREAM_KEYS

logger = logging.getLogger(__name__)


class ResumableDistributedSampler(DistributedSampler):
    """DistributedSampler whose current epoch can start after `skip` indices (for exact resume)."""

    def __init__(
        self, dataset: Dataset, num_replicas: int, rank: int, shuffle: bool, seed: int, drop_last: bool
    ):
        super().__init__(
            dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
        self.skip = 0

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.skip = 0

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.skip :])

    def __len__(self) -> int:
        return max(0, super().__len__() - self.skip)


# record keys that name an image or a sample rather than hold text the model reads
IDENTITY_KEYS = frozenset({"id", "image", "image_id", "img_id", "image_path", "file_name", "path", "url"})


def record_text_length(record: Any) -> int:
    """Characters of text in an annotation record (nested dicts and lists), identity fields left out: the
    length proxy `run.length_bucket_batches` sorts by, cheap because no image is opened."""
    if isinstance(record, str):
        return len(record)
    if isinstance(record, Mapping):
        return sum(record_text_length(v) for k, v in record.items() if str(k) not in IDENTITY_KEYS)
    if isinstance(record, (list, tuple)):
        return sum(record_text_length(v) for v in record)
    return 0


def text_lengths(dataset: Any, name: str) -> list[int]:
    """One length per sample: `dataset.text_length(i)` where defined, else from `dataset.annotation` records."""
    if hasattr(dataset, "text_length"):
        return [int(dataset.text_length(index)) for index in range(len(dataset))]
    records = getattr(dataset, "annotation", None)
    if records is None or len(records) != len(dataset):
        raise ConfigError(
            f"run.length_bucket_batches: dataset {name!r} ({type(dataset).__name__}) has no annotation records "
            "to measure text length from; give it a text_length(index) method or set run.length_bucket_batches=0"
        )
    return [record_text_length(record) for record in records]


class LengthBucketedSampler(ResumableDistributedSampler):
    """This rank's shuffled indices of the epoch, regrouped so that each batch holds samples of similar text
    length (less padding), in an order fixed by (seed, epoch).

    The shuffled order is cut into windows of `window_batches * batch_size` indices; each window is sorted by
    length (stable) and cut into batches; the full batches of the epoch are then shuffled, so long batches do not
    all come last, and the leftover indices (fewer than a batch, dropped by the loader's drop_last) go at the
    end. Every batch is `batch_size` consecutive indices, so `skip` (batches drawn x batch_size) resumes
    mid-epoch exactly as for the plain sampler."""

    def __init__(
        self,
        dataset: Dataset,
        num_replicas: int,
        rank: int,
        seed: int,
        lengths: list[int],
        batch_size: int,
        window_batches: int,
    ) -> None:
        super().__init__(
            dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=False
        )
        self.lengths = lengths
        self.batch_size = int(batch_size)
        self.window_batches = int(window_batches)

    def epoch_indices(self) -> list[int]:
        """All of this rank's indices for the current epoch, before `skip`."""
        indices = list(DistributedSampler.__iter__(self))
        window = self.batch_size * self.window_batches
        ordered: list[int] = []
        for start in range(0, len(indices), window):
            ordered += sorted(indices[start : start + window], key=self.lengths.__getitem__)
        full = len(ordered) // self.batch_size * self.batch_size
        batches = [ordered[start : start + self.batch_size] for start in range(0, full, self.batch_size)]
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(batches), generator=generator).tolist()
        return [index for batch in order for index in batches[batch]] + ordered[full:]

    def __iter__(self) -> Iterator[int]:
        return iter(self.epoch_indices()[self.skip :])


class IterLoader:
    """An endless iterator over `dataloader` that counts epochs and the batches drawn in the current epoch."""

    def __init__(self, dataloader: DataLoader, use_distributed: bool = False, name: str = "") -> None:
        self._dataloader = dataloader
        self._use_distributed = use_distributed
        self.name = name
        self._epoch = 0
        self.batches_in_epoch = 0
        self.stream_positions: dict[int, int] = {}  # seeded streams: worker -> shuffled samples consumed
        self.iter_loader = iter(dataloader)

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def sampler(self) -> Any:
        return getattr(self._dataloader, "sampler", None)

    def __iter__(self) -> IterLoader:
        return self

    def __next__(self) -> Any:
        try:
            batch = next(self.iter_loader)
        except StopIteration:
            self._epoch += 1
            self.batches_in_epoch = 0
            if hasattr(self.sampler, "set_epoch"):
                # official: only when distributed; our sampler is also used on one process, so always reshuffle
                self.sampler.set_epoch(self._epoch)
            self.iter_loader = iter(self._dataloader)
            try:
                batch = next(self.iter_loader)
            except StopIteration:
                raise ConfigError(
                    f"dataset {self.name!r} yields no batch: it has fewer samples per rank than its batch_size "
                    f"(drop_last=True)"
                ) from None
        self.batches_in_epoch += 1
        if isinstance(batch, dict) and STREAM_KEYS[0] in batch:
            workers, indices = batch.pop(STREAM_KEYS[0]), batch.pop(STREAM_KEYS[1])
            # a batch is built inside one worker, from that worker's stream, in order
            self.stream_positions[int(workers[0])] = int(indices.max()) + 1
        return batch

    def __len__(self) -> int:
        return len(self._dataloader)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"epoch": self._epoch, "batches_in_epoch": self.batches_in_epoch}
        if hasattr(self._dataloader.dataset, "resume_from"):
            state["stream_positions"] = {str(w): n for w, n in self.stream_positions.items()}
            state["num_workers"] = int(self._dataloader.num_workers)
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._epoch = int(state["epoch"])
        self.batches_in_epoch = int(state["batches_in_epoch"])
        sampler = self.sampler
        dataset = self._dataloader.dataset
        if isinstance(sampler, ResumableDistributedSampler):
            sampler.set_epoch(self._epoch)
            sampler.skip = self.batches_in_epoch * int(self._dataloader.batch_size or 1)
        elif hasattr(dataset, "resume_from") and "stream_positions" in state:
            saved_workers, workers = int(state["num_workers"]), int(self._dataloader.num_workers)
            if saved_workers != workers:
                raise ConfigError(
                    f"dataset {self.name!r}: the checkpoint's stream position was saved with run.num_workers="
                    f"{saved_workers}, this run has {workers}; each worker reads its own seeded stream, so set "
                    f"run.num_workers={saved_workers} to resume exactly"
                )
            self.stream_positions = {int(w): int(n) for w, n in state["stream_positions"].items()}
            dataset.resume_from(self.stream_positions, self.batches_in_epoch)
        elif self.batches_in_epoch:
            logger.warning(
                "%s: a stream cannot skip to its saved position; it restarts with a fresh shuffle", self.name
            )
        self.iter_loader = iter(self._dataloader)


class MultiIterLoader:
    """At every step pick one loader with probability ratio / sum(ratios) and return its next batch."""

    def __init__(
        self,
        loaders: list[Any],
        ratios: list[float] | None = None,
        seed: int | None = None,
        names: list[str] | None = None,
    ) -> None:
        for loader in loaders:
            if not hasattr(loader, "__next__"):
                raise ConfigError(f"MultiIterLoader needs iterators, got {type(loader).__name__}")
        if ratios is None:
            ratios = [1.0] * len(loaders)
        if len(ratios) != len(loaders):
            raise ConfigError(f"{len(ratios)} sample ratios for {len(loaders)} datasets")
        if any(float(ratio) < 0 for ratio in ratios) or sum(float(r) for r in ratios) <= 0:
            raise ConfigError(f"sample ratios must be non-negative with a positive sum, got {ratios}")
        total = sum(float(ratio) for ratio in ratios)
        self.loaders = loaders
        self.ratios = [float(ratio) / total for ratio in ratios]
        self.names = names or [getattr(loader, "name", str(i)) for i, loader in enumerate(loaders)]
        # official: the global `random`; a private generator makes the choice sequence resumable
        self.rng = random.Random(seed) if seed is not None else random.Random()
        self.steps = 0
        self.last_dataset: str | None = None

    def __iter__(self) -> MultiIterLoader:
        return self

    def __next__(self) -> Any:
        index = self.rng.choices(range(len(self.loaders)), self.ratios, k=1)[0]
        self.steps += 1
        self.last_dataset = self.names[index]
        return next(self.loaders[index])

    def __len__(self) -> int:
        """Batches per pass over every map-style loader; TypeError when a stream is mixed in (no length)."""
        return sum(len(loader) for loader in self.loaders)

    def state_dict(self) -> dict[str, Any]:
        version, internal, gauss = self.rng.getstate()
        return {
            "steps": self.steps,
            "rng_state": [version, list(internal), gauss],
            "loaders": {
                name: loader.state_dict()
                for name, loader in zip(self.names, self.loaders)
                if hasattr(loader, "state_dict")
            },
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        version, internal, gauss = state["rng_state"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.steps = int(state["steps"])
        for name, loader in zip(self.names, self.loaders):
            if name in state["loaders"] and hasattr(loader, "load_state_dict"):
                loader.load_state_dict(state["loaders"][name])


def map_style_sampler(
    dataset: Dataset,
    name: str,
    batch_size: int,
    seed: int,
    rank: int,
    world_size: int,
    length_bucket_batches: int = 0,
) -> ResumableDistributedSampler:
    """The official shuffled sampler, or with `length_bucket_batches` > 0 the length-bucketed one."""
    if length_bucket_batches > 0:
        return LengthBucketedSampler(
            dataset,
            num_replicas=world_size,
            rank=rank,
            seed=seed,
            lengths=text_lengths(dataset, name),
            batch_size=batch_size,
            window_batches=length_bucket_batches,
        )
    return ResumableDistributedSampler(
        dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=False
    )


def build_train_loader(
    datasets: Mapping[str, Any],
    batch_sizes: Mapping[str, int],
    sample_ratios: Mapping[str, float] | None = None,
    num_workers: int = 0,
    seed: int = 42,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
    length_bucket_batches: int = 0,
) -> MultiIterLoader:
    """One infinite loader per dataset, mixed by `sample_ratios` (all 1 when None), seeded per rank.

    `length_bucket_batches` > 0 (`run.length_bucket_batches`): map-style datasets batch samples of similar text
    length (`LengthBucketedSampler`); 0 keeps the official shuffled batches. Streams are not bucketed.

    `datasets`: name -> map-style dataset or IterableDataset (webdataset pipeline). Batches are dicts (see
    `collate.py`): `image` (B, 3, H, W) where the dataset has images, lists of str for the text fields.
    """
    if not datasets:
        raise ConfigError("no training datasets: the config's `datasets:` section is empty")
    loaders, ratios, names = [], [], []
    for name, dataset in datasets.items():
        if name not in batch_sizes:
            raise ConfigError(f"datasets.{name}.batch_size is missing")
        batch_size = int(batch_sizes[name])
        collate = getattr(dataset, "collater", collate_samples)
        generator = torch.Generator().manual_seed(seed + rank)  # seeds the workers' python/torch RNGs
        if isinstance(dataset, IterableDataset):
            if length_bucket_batches > 0:
                logger.info("run.length_bucket_batches: %s is a stream, its batches are not bucketed", name)
            loader = DataLoader(
                dataset,
                batch_size=batch_size,
                num_workers=num_workers,
                pin_memory=pin_memory,
                collate_fn=collate,
                generator=generator,
            )
        else:
            sampler = map_style_sampler(
                dataset, name, batch_size, seed, rank, world_size, length_bucket_batches
            )
            loader = DataLoader(
                dataset,
                batch_size=batch_size,
                num_workers=num_workers,
                pin_memory=pin_memory,
                sampler=sampler,
                collate_fn=collate,
                drop_last=True,
                generator=generator,
            )
        loaders.append(IterLoader(loader, use_distributed=world_size > 1, name=name))
        ratios.append(1.0 if sample_ratios is None else float(sample_ratios.get(name, 1.0)))
        names.append(name)
    return MultiIterLoader(loaders, ratios, seed=seed + rank, names=names)


def loader_settings(datasets_cfg: Mapping[str, Any]) -> tuple[dict[str, int], dict[str, float]]:
    """batch_size and sample_ratio per dataset from a merged `datasets:` config (ratio 1 when absent)."""
    batch_sizes, ratios = {}, {}
    for name, node in datasets_cfg.items():
        if node.get("batch_size") is None:
            raise ConfigError(f"datasets.{name}.batch_size is missing")
        batch_sizes[name] = int(node["batch_size"])
        ratios[name] = float(node.get("sample_ratio", 1.0))
    return batch_sizes, ratios
