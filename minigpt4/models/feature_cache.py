"""A cache of the frozen image side's output per processed image (`run.cache_image_features`).

Where a dataset is read more than once (stage 2, v2 multi-task epochs) and the image side up to the first
trainable module is frozen and in eval mode (no dropout, no drop-path), each image's features are a pure
function of its processed pixels. The cache keys them by a digest of those pixels (shape, dtype and every
byte), so two samples share an entry only when their inputs are identical, and a later epoch reuses the
features instead of running the ViT (and a frozen Q-Former) again. The model refuses to cache when a part of
the image side trains; the runner refuses when an image processor is random (`processors`' `is_random`).

Entries are kept on `storage_device` (CPU by default: a v2 epoch holds many more images than GPU memory);
the cache is not saved with checkpoints, a resumed run refills it with the same values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import torch
from torch import Tensor


def image_digest(image: Tensor) -> bytes:
    """A key for one processed image (3, H, W): blake2b over its shape, dtype and raw bytes."""
    pixels = image.detach().to("cpu").contiguous()
    digest = hashlib.blake2b(digest_size=20)
    digest.update(f"{tuple(pixels.shape)}|{pixels.dtype}".encode())
    digest.update(pixels.view(torch.uint8).numpy().tobytes() if pixels.numel() else b"")
    return digest.digest()


class ImageFeatureCache:
    """digest of a processed image -> its frozen features (one sample's slice, e.g. (T, D))."""

    def __init__(self, storage_device: str | torch.device = "cpu") -> None:
        self.storage_device = torch.device(storage_device)
        self.features: dict[bytes, Tensor] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self.features)

    def clear(self) -> None:
        self.features.clear()
        self.hits = self.misses = 0

    def features_for(self, images: Tensor, compute: Callable[[Tensor], Tensor]) -> Tensor:
        """images: (B, 3, H, W) -> compute(images)-shaped (B, ...), computing only the images not yet cached.

        The missing images run through `compute` together, in batch order (a batch seen before costs no
        forward at all). The per-image loop below is dictionary work on B digests, not tensor maths: the
        bench (`bench/bench_feature_cache.py`) measures it with the rest of the cached step."""
        pixels = images.detach().to("cpu")  # one device-to-host copy per batch, not one per image
        keys = [image_digest(image) for image in pixels]
        first_index: dict[bytes, int] = {}
        for index, key in enumerate(keys):
            first_index.setdefault(key, index)  # an image twice in one batch is computed once
        missing = [index for key, index in first_index.items() if key not in self.features]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            computed = compute(images[missing])  # (M, ...)
            for row, index in enumerate(missing):
                self.features[keys[index]] = computed[row].detach().to(self.storage_device)
        return torch.stack([self.features[key] for key in keys]).to(images.device)  # (B, ...)
