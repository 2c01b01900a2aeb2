"""Map-style dataset over a list of annotation records, the shared part of every image format family."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from minigpt4.datasets.collate import collate_samples
from minigpt4.datasets.files import open_rgb
from minigpt4.processors.base_processor import BaseProcessor

logger = logging.getLogger(__name__)

Processor = Callable[[Any], Any]


class RecordDataset(Dataset):
    """`records[i]` -> `self.sample(records[i])` (an official sample dict).

    Subclasses set `LAYOUT` (the expected files, quoted in every error) and implement `sample`.
    `name` is the builder name, used in messages.
    """

    LAYOUT = ""

    def __init__(
        self,
        vis_processor: Processor | None,
        text_processor: Processor | None,
        vis_root: str | Path | None,
        records: list[Any],
        name: str = "",
    ) -> None:
        self.vis_processor = vis_processor if vis_processor is not None else BaseProcessor()
        self.text_processor = text_processor if text_processor is not None else BaseProcessor()
        self.vis_root = Path(vis_root) if vis_root is not None else None
        self.records = records
        self.name = name or type(self).__name__
        # run.cache_processed_images: relative path -> (processed image, original size); None = off
        self.processed_images: dict[str, tuple[torch.Tensor, tuple[int, int]]] | None = None

    # LAVIS code and the official datasets call the list `annotation`
    @property
    def annotation(self) -> list[Any]:
        return self.records

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.sample(self.records[index])

    def sample(self, record: Any) -> dict[str, Any]:
        raise NotImplementedError

    def open_image(self, relative: str | Path) -> Any:
        """PIL RGB image `vis_root / relative` (error names the path and this family's layout)."""
        assert self.vis_root is not None
        return open_rgb(self.vis_root / relative, self.name, self.LAYOUT)

    def load_image(self, relative: str | Path) -> tuple[torch.Tensor, tuple[int, int]]:
        """Processed image (3, S, S) and the original (width, height); from `processed_images` when it is on."""
        if self.processed_images is not None:
            cached = self.processed_images.get(str(relative))
            if cached is not None:
                return cached
        image = self.open_image(relative)
        loaded = self.vis_processor(image), image.size
        if self.processed_images is not None:
            self.processed_images[str(relative)] = loaded
        return loaded

    def enable_processed_image_cache(self) -> None:
        """Keep every processed image in memory from its first load on (deterministic processors only: the
        caller checks). Each entry is a float32 (3, S, S) tensor: 150 kB at 112 px, 600 kB at 224 px."""
        if self.processed_images is None:
            self.processed_images = {}

    def collater(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        return collate_samples(samples)
