"""Caption accuracy on held-out shapes: does a caption name exactly the image's coloured shapes?"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence


def mentioned_objects(caption: str, colors: Sequence[str], shapes: Sequence[str]) -> set[tuple[str, str]]:
    """{(colour, shape)} named as "<colour> <shape>" in a caption (plurals and case ignored)."""
    pattern = rf"\b({'|'.join(map(re.escape, colors))})\s+({'|'.join(map(re.escape, shapes))})s?\b"
    return {(c, s) for c, s in re.findall(pattern, caption.lower())}


def caption_correct(
    caption: str, objects: Sequence[dict], colors: Sequence[str], shapes: Sequence[str]
) -> bool:
    """Correct when the caption names every object's colour and shape, and nothing else."""
    truth = {(o["color"], o["shape"]) for o in objects}
    return mentioned_objects(caption, colors, shapes) == truth


def caption_accuracy(captions: Sequence[str], images: Sequence[dict], colors, shapes) -> float:
    correct = sum(caption_correct(c, img["objects"], colors, shapes) for c, img in zip(captions, images))
    return correct / max(len(images), 1)


def caption_chance(
    images: Sequence[dict], train_images: Sequence[dict], colors, shapes, seed: int = 0
) -> float:
    """Accuracy of a model that ignores the image: the caption of a random training image."""
    rng = random.Random(seed)
    guesses = [rng.choice(train_images)["caption"] for _ in images]
    return caption_accuracy(guesses, images, colors, shapes)
