"""Test helpers: builder configs for the test world, and answers computed from the generator's truth.json
independently of the dataset code under test."""

from __future__ import annotations

import re
from typing import Any

import torch
from omegaconf import OmegaConf

from minigpt4.datasets.box_text import box_string
from minigpt4.processors.image import CLIP_MEAN, CLIP_STD
from minigpt4.processors.text import pre_caption

IMAGE_SIZE = 32  # processor size in tests: small tensors, fast


def builder_cfg(world_cfg, name: str, image_size: int = IMAGE_SIZE):
    """The `datasets.<name>` node of the world's datasets.yaml plus processors, as the merged config has it."""
    processors = {
        "vis_processor": {"train": {"name": "blip2_image_eval", "image_size": image_size}},
        "text_processor": {"train": {"name": "blip_caption"}},
    }
    return OmegaConf.merge(world_cfg.datasets[name], processors)


PALETTE = {
    "red": (230, 25, 25),
    "green": (30, 170, 40),
    "blue": (30, 70, 230),
    "yellow": (240, 200, 0),
    "white": (255, 255, 255),
}


class Truth:
    def __init__(self, truth: dict[str, Any]) -> None:
        self.images = {image["image_id"]: image for image in truth["images"]}
        self.pair_images = {image["image_id"]: image for image in truth["pair_images"]}  # the VSR scenes

    def image(self, image_id: int) -> dict[str, Any]:
        """A main or a two-object scene (cc_sbu_align and gqa hold both)."""
        return self.images.get(image_id) or self.pair_images[image_id]

    def train_captions(self) -> set[str]:
        return {image["caption"] for image in self.images.values() if image["split"] == "train"}


def box(image: dict[str, Any], obj: dict[str, Any]) -> str:
    return box_string(obj["bbox"], image["width"], image["height"])


def vqa_answer(question: str, image: dict[str, Any]) -> str:
    """The answer to a (text-processed) shapes-world question, from the truth."""
    objects = image["objects"]
    by_shape = {obj["shape"]: obj for obj in objects}
    by_color = {obj["color"]: obj for obj in objects}
    if match := re.fullmatch(
        r"(?:what color is|which color does) the (\w+)(?: on this cover| have)?\?", question
    ):
        return by_shape[match.group(1)]["color"]
    if match := re.fullmatch(r"what shape is the (\w+) object\?", question):
        return by_color[match.group(1)]["shape"]
    if question == "how many objects are there?":
        return str(len(objects))
    if match := re.fullmatch(r"is there a (\w+) (\w+)\?", question):
        return "yes" if by_shape.get(match.group(2), {}).get("color") == match.group(1) else "no"
    if match := re.fullmatch(r"what is the object on the (left|right)\?", question):
        left, right = objects  # a two-object scene, left to right
        return (left if match.group(1) == "left" else right)["phrase"]
    if match := re.fullmatch(r"is the (\w+ \w+) on the left or on the right\?", question):
        phrases = [obj["phrase"] for obj in objects]  # left to right
        assert match.group(1) in phrases, f"{question!r} names no object of the scene"
        return "left" if match.group(1) == phrases[0] else "right"
    if question == "what is the title of this book?":
        return image["caption"]
    raise AssertionError(f"question outside the shapes grammar: {question!r}")


def colours_at_centres(pixels: torch.Tensor, image: dict[str, Any]) -> list[str]:
    """Nearest palette colour at each object's box centre of a normalised (3, S, S) tensor."""
    mean = torch.tensor(CLIP_MEAN).view(3, 1, 1)
    std = torch.tensor(CLIP_STD).view(3, 1, 1)
    rgb = ((pixels * std + mean) * 255).clamp(0, 255)
    size = pixels.shape[-1]
    names = []
    for obj in image["objects"]:
        x, y, w, h = obj["bbox"]
        cx = int((x + w / 2) / image["width"] * size)
        cy = int((y + h * 0.6) / image["height"] * size)  # a bit low: inside triangles too
        value = rgb[:, cy, cx]
        names.append(
            min(PALETTE, key=lambda n: sum((float(value[i]) - PALETTE[n][i]) ** 2 for i in range(3)))
        )
    return names


def processed(text: str) -> str:
    return pre_caption(text)
