"""A small pixel judge of shapes-world images (image -> (colour, shape)), the `Judge` interface of
`minigpt5_metrics`. It reads back the world's rendering rules (`datasets/shapes/scene.py`): one filled shape in one
of four colours on white; circle = ellipse in its box, square = the box, triangle = apex top middle, base at the
bottom. Nothing here comes from a generator. (The training branch has a fuller judge; either fits the interface.)"""

from __future__ import annotations

import numpy as np
from PIL import Image

from minigpt4.datasets.shapes.scene import COLORS, SHAPES
from minigpt4.evaluation.minigpt5_metrics import JudgeSpace

FOREGROUND_BELOW = 175  # a pixel is drawn when its darkest channel is below this (white background: 255)
MIN_PIXELS = 4
TRIANGLE_TOP_RATIO = 0.6  # foreground in the top half / bottom half of the box: triangle 1/3, others 1
SQUARE_FILL = 0.89  # foreground / box area: square 1.0, circle pi/4

SHAPES_SPACE = JudgeSpace(tuple(COLORS), tuple(SHAPES))


def judge_shape(image: Image.Image) -> tuple[str | None, str | None]:
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)  # (H, W, 3)
    drawn = pixels.min(axis=2) < FOREGROUND_BELOW
    if drawn.sum() < MIN_PIXELS:
        return None, None
    median = np.median(pixels[drawn], axis=0)
    names = list(COLORS)
    colour = names[int(np.argmin([np.linalg.norm(median - np.array(COLORS[n])) for n in names]))]
    rows, cols = np.nonzero(drawn)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    box = drawn[top:bottom, left:right]
    half = box.shape[0] // 2
    upper, lower = box[:half].sum(), box[half:].sum()
    if lower > 0 and upper / lower < TRIANGLE_TOP_RATIO:
        return colour, "triangle"
    return colour, "square" if box.mean() > SQUARE_FILL else "circle"
