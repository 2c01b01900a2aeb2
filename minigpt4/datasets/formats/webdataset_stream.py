"""LAION / CC3M+CC12M+SBU webdataset shards (stage 1): an infinite stream of {image, answer}.

`build_info.storage` is a brace pattern of tar shards, e.g. `/data/laion/{00000..10488}.tar`; each sample holds
`<key>.jpg` and `<key>.json` ({"caption": ...}). Pipeline as the official one: resampled shards (with
replacement, forever), tar -> samples, shuffle buffer (1000), decode to RGB PIL, (jpg, json), vis_processor,
{image, answer: text_processor(caption)}.

Corrupt data never crashes the run and is never silent: every skipped sample (unreadable tar member, undecodable
image, missing jpg/json, missing caption) goes through `SkipCounter`, which counts it by error type and logs a
warning (the first ten, then every power of two). In DataLoader workers each worker counts its own share.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import braceexpand
import webdataset as wds

from minigpt4.common.errors import DataError
from minigpt4.processors.base_processor import BaseProcessor

logger = logging.getLogger(__name__)

DEFAULT_SHUFFLE_BUFFER = 1000
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
        deterministic = seed is not None
        self.inner_dataset = wds.DataPipeline(
            wds.ResampledShards(urls, seed=seed or 0, deterministic=deterministic),
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
