"""`blip2_image_train` and `blip2_image_eval` without torchvision: PIL bicubic resize, ToTensor, CLIP normalise.

The official processors (Vision-CAIR HEAD) are `Resize((S, S), BICUBIC) -> ToTensor -> Normalize(CLIP mean/std)` for
both train and eval. torchvision's PIL path of `Resize` *is* `PIL.Image.resize(..., BICUBIC)`, so calling PIL
directly reproduces the official uint8 image bit for bit, and the float maths below is the same float32
`(u8 / 255 - mean) / std` in the same order: parity family `image_processor` passes with zero difference.

`blip2_image_train` also offers the original MiniGPT-4 (April 2023) augmentation,
`RandomResizedCrop(S, scale=(min_scale, max_scale), ratio=(3/4, 4/3), bicubic)`, behind the config key
`random_resized_crop: true` (default false = current official behaviour, which keeps v2 boxes valid).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from minigpt4.common.registry import registry
from minigpt4.processors.base_processor import BaseProcessor, config_node

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)


def to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image (W x H) -> float32 (3, H, W) in [0, 1], as torchvision ToTensor (u8 / 255)."""
    array = np.asarray(image.convert("RGB") if image.mode != "RGB" else image, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).to(torch.float32).div(255)


def normalize(pixels: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(3, H, W) float32 -> (pixels - mean) / std per channel, in float32 as torchvision Normalize."""
    mean_t = torch.as_tensor(mean, dtype=pixels.dtype).view(-1, 1, 1)
    std_t = torch.as_tensor(std, dtype=pixels.dtype).view(-1, 1, 1)
    return pixels.sub(mean_t).div(std_t)


def resize_square(image: Image.Image, size: int) -> Image.Image:
    """Bicubic resize to (size, size), aspect ratio not kept (the official Resize((S, S)))."""
    return image.resize((size, size), Image.BICUBIC)


def random_resized_crop_box(
    width: int,
    height: int,
    scale: tuple[float, float],
    ratio: tuple[float, float] = CROP_RATIO,
    generator: torch.Generator | None = None,
) -> tuple[int, int, int, int]:
    """(top, left, crop_height, crop_width) drawn as torchvision RandomResizedCrop.get_params does.

    Ten tries of an area fraction in `scale` and a log-uniform aspect ratio in `ratio`; if none fits, a
    centre crop with the ratio clamped into `ratio`. Draws from the torch RNG (or `generator`), so
    `torch.manual_seed` makes it reproducible like the original.
    """
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1], generator=generator).item()
        aspect = math.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=generator).item())
        crop_w = round(math.sqrt(target_area * aspect))
        crop_h = round(math.sqrt(target_area / aspect))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            top = int(torch.randint(0, height - crop_h + 1, (1,), generator=generator).item())
            left = int(torch.randint(0, width - crop_w + 1, (1,), generator=generator).item())
            return top, left, crop_h, crop_w
    in_ratio = width / height
    if in_ratio < min(ratio):
        crop_w, crop_h = width, round(width / min(ratio))
    elif in_ratio > max(ratio):
        crop_w, crop_h = round(height * max(ratio)), height
    else:
        crop_w, crop_h = width, height
    return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w


class BlipImageBaseProcessor(BaseProcessor):
    def __init__(
        self, image_size: int = 224, mean: Sequence[float] | None = None, std: Sequence[float] | None = None
    ) -> None:
        self.image_size = int(image_size)
        self.mean = tuple(mean) if mean is not None else CLIP_MEAN
        self.std = tuple(std) if std is not None else CLIP_STD

    def resize(self, image: Image.Image) -> Image.Image:
        return resize_square(image, self.image_size)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        """PIL image (any size) -> normalised float32 (3, image_size, image_size)."""
        if image.mode != "RGB":  # the official datasets convert first; doing it here changes nothing for RGB
            image = image.convert("RGB")
        return normalize(to_tensor(self.resize(image)), self.mean, self.std)


@registry.register_processor("blip2_image_eval")
class Blip2ImageEvalProcessor(BlipImageBaseProcessor):
    @classmethod
    def from_config(cls, cfg: Any = None) -> Blip2ImageEvalProcessor:
        cfg = config_node(cfg)
        return cls(
            image_size=cfg.get("image_size", 224), mean=cfg.get("mean", None), std=cfg.get("std", None)
        )


@registry.register_processor("blip2_image_train")
class Blip2ImageTrainProcessor(BlipImageBaseProcessor):
    """Official: the same square resize as eval (min_scale/max_scale ignored). `random_resized_crop=True`:
    the original MiniGPT-4 RandomResizedCrop(scale=(min_scale, max_scale)), bicubic."""

    def __init__(
        self,
        image_size: int = 224,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        min_scale: float = 0.5,
        max_scale: float = 1.0,
        random_resized_crop: bool = False,
    ) -> None:
        super().__init__(image_size, mean, std)
        self.min_scale = float(min_scale)
        self.max_scale = float(max_scale)
        self.random_resized_crop = bool(random_resized_crop)

    def resize(self, image: Image.Image) -> Image.Image:
        if not self.random_resized_crop:
            return resize_square(image, self.image_size)
        top, left, crop_h, crop_w = random_resized_crop_box(
            image.width, image.height, (self.min_scale, self.max_scale)
        )
        return resize_square(image.crop((left, top, left + crop_w, top + crop_h)), self.image_size)

    @classmethod
    def from_config(cls, cfg: Any = None) -> Blip2ImageTrainProcessor:
        cfg = config_node(cfg)
        return cls(
            image_size=cfg.get("image_size", 224),
            mean=cfg.get("mean", None),
            std=cfg.get("std", None),
            min_scale=cfg.get("min_scale", 0.5),
            max_scale=cfg.get("max_scale", 1.0),
            random_resized_crop=cfg.get("random_resized_crop", False),
        )
