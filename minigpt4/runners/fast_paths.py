"""Run options that make training faster without changing what it computes; each is off by default.

* `run.cache_image_features`: the frozen image side's output is cached per processed image and reused in later
  epochs (models/feature_cache.py); refused when a part of it trains or an image processor is random.
* `run.length_bucket_batches`: batches of similar text length (datasets/mixing.py `LengthBucketedSampler`);
  applied where the train loader is built.
* `run.compile_image_encoder`: `torch.compile` of the EVA ViT, in place (state-dict keys unchanged).
* `run.cache_processed_images`: map-style datasets keep each processed image in memory after its first load
  (no decode, resize or normalisation in later epochs); refused when an image processor is random. It pays where
  few images are read many times; in the quickstart's v2 mix (most images read a few times) it cost memory and time.

Tests: tests/runners/test_fast_paths.py (same losses and outputs as the default path).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from torch import nn

from minigpt4.common.errors import ConfigError

logger = logging.getLogger(__name__)


def random_image_processors(train_datasets: Mapping[str, Any]) -> list[str]:
    """`name (Processor)` for every training dataset whose image processor is random."""
    found = []
    for name, dataset in train_datasets.items():
        for part in _leaf_datasets(dataset):
            for attribute in ("vis_processor", "output_vis_processor"):
                processor = getattr(part, attribute, None)
                if processor is not None and getattr(processor, "is_random", False):
                    found.append(f"{name} ({attribute} {type(processor).__name__})")
    return found


def _leaf_datasets(dataset: Any) -> list[Any]:
    """The datasets a (possibly nested) ConcatDataset joins, or the dataset itself."""
    inner = getattr(dataset, "datasets", None)
    if inner is None:
        return [dataset]
    return [leaf for part in inner for leaf in _leaf_datasets(part)]


def apply_fast_paths(model: nn.Module, run_cfg: Any, train_datasets: Mapping[str, Any]) -> None:
    """Switch on the model-side options of `run_cfg` (the loader reads `length_bucket_batches` itself)."""
    if run_cfg.get("cache_image_features", False):
        if not hasattr(model, "enable_image_feature_cache"):
            raise ConfigError(
                f"run.cache_image_features: {type(model).__name__} has no image feature cache; "
                "set run.cache_image_features=False"
            )
        random_ones = random_image_processors(train_datasets)
        if random_ones:
            raise ConfigError(
                "run.cache_image_features: the image processor of "
                f"{', '.join(random_ones)} is random (augmentation), so an image's features differ every "
                "epoch and cannot be reused; turn the augmentation off (random_resized_crop / random_flip: "
                "false) or set run.cache_image_features=False"
            )
        model.enable_image_feature_cache()
        logger.info("caching the frozen image features per processed image (run.cache_image_features)")
    if run_cfg.get("cache_processed_images", False):
        random_ones = random_image_processors(train_datasets)
        if random_ones:
            raise ConfigError(
                "run.cache_processed_images: the image processor of "
                f"{', '.join(random_ones)} is random (augmentation), so an image differs every epoch and cannot "
                "be kept; turn the augmentation off (random_resized_crop / random_flip: false) or set "
                "run.cache_processed_images=False"
            )
        cached = []
        for name, dataset in train_datasets.items():
            parts = [
                part for part in _leaf_datasets(dataset) if hasattr(part, "enable_processed_image_cache")
            ]
            for part in parts:
                part.enable_processed_image_cache()
            if parts:
                cached.append(name)
        logger.info(
            "keeping processed images in memory for %s (run.cache_processed_images)", ", ".join(cached)
        )
    if run_cfg.get("compile_image_encoder", False):
        if not hasattr(model, "compile_image_encoder"):
            raise ConfigError(
                f"run.compile_image_encoder: {type(model).__name__} has no image encoder to compile; "
                "set run.compile_image_encoder=False"
            )
        model.compile_image_encoder()
        logger.info("torch.compile on the image encoder (run.compile_image_encoder)")
