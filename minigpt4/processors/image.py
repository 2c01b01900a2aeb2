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

    @property
    def is_random(self) -> bool:
        return self.random_resized_crop

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


# -- MiniGPT-5 ------------------------------------------------------------------------------------
# Official MiniGPT-5 (`train_eval.py`) uses torchvision `Resize(S, bilinear) -> CenterCrop(S) [-> RandomHorizontalFlip]
# -> ToTensor -> Normalize` for input (CLIP mean/std, S=224) and output images (0.5/0.5, S=512; eval: not
# normalised). Below are the same operations on PIL, in the arithmetic torchvision's PIL path uses.

MINIGPT5_OUTPUT_MEAN = (0.5, 0.5, 0.5)
MINIGPT5_OUTPUT_STD = (0.5, 0.5, 0.5)
WHITE = (255, 255, 255)


def expand2square(image: Image.Image, background: tuple[int, int, int] = WHITE) -> Image.Image:
    """Pad the shorter side to a square, the image centred (offset (long - short) // 2), as official MiniGPT-5
    does to every output image before its transform."""
    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    square = Image.new(image.mode, (side, side), background)
    square.paste(image, ((side - width) // 2, (side - height) // 2))
    return square


def resize_shorter_side(image: Image.Image, size: int) -> Image.Image:
    """torchvision `Resize(size)` (an int) on a PIL image: the shorter side becomes `size`, the longer
    `int(size * long / short)`, bilinear; returned unchanged when already that size."""
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
    if (new_w, new_h) == (width, height):
        return image
    return image.resize((new_w, new_h), Image.BILINEAR)


def center_crop(image: Image.Image, size: int) -> Image.Image:
    """torchvision `CenterCrop(size)` for an image at least `size` on both sides (after `resize_shorter_side`)."""
    width, height = image.size
    top = round((height - size) / 2.0)
    left = round((width - size) / 2.0)
    return image.crop((left, top, left + size, top + size))


class Minigpt5ImageProcessor(BaseProcessor):
    """Resize(S) -> CenterCrop(S) -> [flip with p=0.5] -> ToTensor -> [Normalize(mean, std)]: (3, S, S) float32.

    `random_flip` draws `torch.rand(1) < 0.5` from the torch RNG (or `generator`), as torchvision does, so
    DataLoader worker seeding makes it reproducible. `normalize=False` keeps [0, 1] (official eval outputs)."""

    default_size = 224
    default_mean: tuple[float, ...] = CLIP_MEAN
    default_std: tuple[float, ...] = CLIP_STD

    def __init__(
        self,
        image_size: int | None = None,
        random_flip: bool = False,
        normalize: bool = True,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        self.image_size = int(image_size if image_size is not None else self.default_size)
        self.random_flip = bool(random_flip)
        self.normalize = bool(normalize)
        self.mean = tuple(mean) if mean is not None else self.default_mean
        self.std = tuple(std) if std is not None else self.default_std

    @property
    def is_random(self) -> bool:
        return self.random_flip

    def __call__(self, image: Image.Image, generator: torch.Generator | None = None) -> torch.Tensor:
        if image.mode != "RGB":
            image = image.convert("RGB")
        image = center_crop(resize_shorter_side(image, self.image_size), self.image_size)
        if self.random_flip and torch.rand(1, generator=generator).item() < 0.5:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        pixels = to_tensor(image)
        return normalize(pixels, self.mean, self.std) if self.normalize else pixels

    def blank(self) -> torch.Tensor:
        """The processed black image official MiniGPT-5 feeds when a sample has no input image: (3, S, S)."""
        pixels = torch.zeros(3, self.image_size, self.image_size)
        return normalize(pixels, self.mean, self.std) if self.normalize else pixels

    def without_flip(self) -> Minigpt5ImageProcessor:
        return type(self)(self.image_size, False, self.normalize, self.mean, self.std)

    @classmethod
    def from_config(cls, cfg: Any = None) -> Minigpt5ImageProcessor:
        cfg = config_node(cfg)
        return cls(
            image_size=cfg.get("image_size", None),
            random_flip=cfg.get("random_flip", False),
            normalize=cfg.get("normalize", True),
            mean=cfg.get("mean", None),
            std=cfg.get("std", None),
        )


@registry.register_processor("minigpt5_input_image")
class Minigpt5InputImageProcessor(Minigpt5ImageProcessor):
    """Input images (to the ViT): official S=224, CLIP mean/std; train adds `random_flip: true`."""


@registry.register_processor("minigpt5_output_image")
class Minigpt5OutputImageProcessor(Minigpt5ImageProcessor):
    """Output images (to the VAE), after `expand2square` with white: official S=512, normalised to [-1, 1] in
    train (`random_flip: true`), kept in [0, 1] in eval (`normalize: false`)."""

    default_size = 512
    default_mean = MINIGPT5_OUTPUT_MEAN
    default_std = MINIGPT5_OUTPUT_STD
