"""LAION / CC3M+CC12M+SBU webdataset shards (stage 1): an infinite stream of {image, answer}.

`build_info.storage` is a brace pattern of tar shards, e.g. `/data/laion/{00000..10488}.tar`; each sample holds
`<key>.jpg` and `<key>.json` ({"caption": ...}). Pipeline as the official one: resampled shards (with
replacement, forever), tar -> samples, shuffle buffer (1000), decode to RGB PIL, (jpg, json), vis_processor,
{image, answer: text_processor(caption)}.

Corrupt data never crashes the run and is never silent: every skipped sample (unreadable tar member, undecodable
image, missing jpg/json, missing caption) goes through `SkipCounter`, which counts it by error type and logs a
warning (the first ten, then every power of two). In DataLoader workers each worker counts its own share.

Seeded streams (`build_info.seed`, ours) are resumable: `SeededCaptionStream` draws the shards, the shuffle
buffer and each sample's augmentation from generators seeded by (seed, rank, DataLoader worker), and tags every
sample with its worker and its index in that worker's shuffled stream (`_stream_worker`, `_stream_index`; the
loader strips them, see `mixing.IterLoader`). A checkpoint stores, per worker, how many shuffled samples were
consumed; on resume each worker replays its stream up to there *before* decoding (tar bytes are read, no image
is decoded or processed) and continues bit-identically. Prefetched batches that were never consumed are not
counted, so workers and prefetching do not move the position. Unseeded streams keep the official pipeline and
restart with a fresh shuffle on resume.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import braceexpand
import torch
import webdataset as wds
from torch.utils.data import IterableDataset

from minigpt4.common.errors import DataError
from minigpt4.processors.base_processor import BaseProcessor

logger = logging.getLogger(__name__)

DEFAULT_SHUFFLE_BUFFER = 1000
SHUFFLE_INITIAL = 100  # wds.shuffle's default: the official pipeline starts yielding at 100 buffered samples
STREAM_KEYS = ("_stream_worker", "_stream_index")
LAYOUT = "build_info.storage: a brace pattern of webdataset tar shards, each sample <key>.jpg + <key>.json {caption}"


class SkipCounter:
    """webdataset error handler that counts and logs what it skips, then lets the stream continue."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.skipped = 0
        self.by_error: Counter[str] = Counter()

    def __call__(self, exn: BaseException) -> bool:
        self.skipped += 1
        self.by_error[type(exn).__name__] += 1
        if self.skipped <= 10 or (self.skipped & (self.skipped - 1)) == 0:
            logger.warning(
                "%s: skipped a corrupt webdataset sample (%s: %s); %d skipped so far (%s)",
                self.name,
                type(exn).__name__,
                str(exn)[:200],
                self.skipped,
                dict(self.by_error),
            )
        return True


def expand_shards(location: str, name: str) -> list[str]:
    """The shard list of a brace pattern; local shards must all exist (a wrong folder fails here, not in a worker)."""
    urls = list(braceexpand.braceexpand(str(location)))
    local = [url for url in urls if "://" not in url and not url.startswith("pipe:")]
    missing = [url for url in local if not Path(url).is_file()]
    if missing:
        raise DataError(
            f"{name}: {len(missing)} of {len(urls)} shards of {location!r} are missing, e.g. {missing[0]}. "
            f"Expected layout: {LAYOUT}"
        )
    return urls


class WebdatasetCaptionStream:
    """Holds the pipeline as `inner_dataset` (an IterableDataset), like the official LaionDataset/CCSBUDataset."""

    def __init__(
        self,
        vis_processor: Any,
        text_processor: Any,
        location: str,
        name: str = "webdataset",
        shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
        seed: int | None = None,
    ) -> None:
        self.vis_processor = vis_processor if vis_processor is not None else BaseProcessor()
        self.text_processor = text_processor if text_processor is not None else BaseProcessor()
        self.name = name
        self.skips = SkipCounter(name)
        urls = expand_shards(location, name)
        if seed is not None:
            self.inner_dataset = SeededCaptionStream(
                urls, int(seed), shuffle_buffer, self.vis_processor, self.to_dict, self.skips
            )
            return
        self.inner_dataset = wds.DataPipeline(
            wds.ResampledShards(urls),
            wds.tarfile_to_samples(handler=self.skips),
            wds.shuffle(shuffle_buffer, handler=self.skips, seed=seed),
            wds.decode("pilrgb", handler=self.skips),
            wds.to_tuple("jpg", "json", handler=self.skips),
            wds.map_tuple(self.vis_processor, handler=self.skips),
            wds.map(self.to_dict, handler=self.skips),
        )
        # the runner reads this to report skips of in-process iteration
        self.inner_dataset.skip_counter = self.skips

    def to_dict(self, sample: tuple[Any, dict[str, Any]]) -> dict[str, Any]:
        image, meta = sample
        return {"image": image, "answer": self.text_processor(meta["caption"])}


class SeededCaptionStream(IterableDataset):
    """The stage-1 pipeline with every random choice seeded and a savable position (see the module docstring).

    Same steps as the official pipeline: shards drawn with replacement, tar -> samples, a shuffle buffer
    (`shuffle_buffer`, starting at 100), decode to RGB, (jpg, json), vis_processor, to_dict. Rank and worker come
    from `wds.utils.pytorch_worker_info`, so each rank and worker reads its own sequence.
    """

    def __init__(
        self,
        urls: list[str],
        seed: int,
        shuffle_buffer: int,
        vis_processor: Callable[[Any], Any],
        to_dict: Callable[[tuple[Any, dict[str, Any]]], dict[str, Any]],
        skips: SkipCounter,
    ) -> None:
        super().__init__()
        self.urls = urls
        self.seed = seed
        self.shuffle_buffer = shuffle_buffer
        self.vis_processor = vis_processor
        self.to_dict = to_dict
        self.skip_counter = skips
        self.decoder = wds.autodecode.Decoder([wds.autodecode.imagehandler("pilrgb")])
        self.resume_positions: dict[int, int] = {}  # worker -> shuffled samples already consumed
        self.first_worker = 0

    def resume_from(self, positions: Mapping[int, int], batches_drawn: int) -> None:
        """Start each worker's stream after `positions[worker]` shuffled samples (0 when absent).

        A DataLoader takes batch k from worker k % num_workers; a restarted one begins at worker 0, so worker 0
        plays the stream of worker `batches_drawn % num_workers` (the one whose batch came next), and so on."""
        self.resume_positions = {int(worker): int(count) for worker, count in positions.items()}
        self.first_worker = int(batches_drawn)

    def _generator(self, rank: int, worker: int, purpose: str) -> random.Random:
        return random.Random(f"{self.seed}/{rank}/{worker}/{purpose}")  # str seeds hash stably (sha512)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rank, _, loader_worker, num_workers = wds.utils.pytorch_worker_info()
        worker = (loader_worker + self.first_worker) % num_workers  # the stream this worker continues
        shard_rng = self._generator(rank, worker, "shards")

        def shards() -> Iterator[dict[str, str]]:
            while True:
                yield {"url": shard_rng.choice(self.urls)}

        raw = wds.tarfile_to_samples(handler=self.skip_counter)(shards())
        shuffled = wds.filters._shuffle(
            raw, self.shuffle_buffer, SHUFFLE_INITIAL, rng=self._generator(rank, worker, "shuffle")
        )
        start = self.resume_positions.get(worker, 0)
        for index, raw_sample in enumerate(shuffled):
            if index < start:
                continue  # replay: the buffer and generators advance, nothing is decoded
            try:
                sample = self._process(raw_sample, rank, worker, index)
            except Exception as exn:
                self.skip_counter(exn)
                continue
            sample["_stream_worker"] = worker
            sample["_stream_index"] = index
            yield sample

    def _process(self, raw_sample: dict[str, Any], rank: int, worker: int, index: int) -> dict[str, Any]:
        decoded = self.decoder(raw_sample)
        image, meta = decoded["jpg"], decoded["json"]
        # augmentation draws from a per-sample seed, not the process RNG: the same sample gets the same crop
        # however many workers ran before, and the model's own RNG (dropout) is untouched by data loading
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(hash((self.seed, rank, worker, index)) & 0x7FFF_FFFF_FFFF_FFFF)
            image = self.vis_processor(image)
        return self.to_dict((image, meta))
