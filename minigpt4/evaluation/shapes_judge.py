"""An independent judge of generated shapes-world images: the world's own rendering rules read back from pixels.

The world draws ONE filled shape in one of four colours on white (`datasets/shapes/scene.py`: circle = ellipse in
its box, square = the box, triangle = apex at the top middle, base along the bottom). So, on any image:
* foreground = pixels clearly not white (their darkest channel below 255 - FOREGROUND_MARGIN);
* colour = the world colour nearest (RGB distance) to the median foreground pixel;
* shape, from the foreground's bounding box: a triangle fills its top half far less than its bottom half
  (area ratio 1/3); otherwise a square fills its box (ratio 1) and a circle does not (pi / 4).
Nothing here comes from a generator or its losses. `tests/evaluation/test_shapes_judge.py` checks it on real world images
(about 1.0 at 32 px) and on noise (about chance). The quickstart scores its MiniGPT-5 with `judge_targets`;
`judge_shape` is the `Judge` interface of `minigpt5_metrics` (eval_minigpt5.py's `judge: shapes` and
`inception: judge`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from minigpt4.datasets.shapes.scene import COLORS, SHAPES
from minigpt4.evaluation.minigpt5_metrics import JudgeSpace

FOREGROUND_MARGIN = 80  # a pixel is foreground when its darkest channel is below 175
MIN_FOREGROUND = 4  # fewer foreground pixels: nothing drawn
TRIANGLE_TOP_RATIO = 0.6  # top-half / bottom-half foreground area: triangle 1/3, circle and square 1
SQUARE_FILL = 0.89  # foreground / box area: square 1.0, circle 0.785

SHAPES_SPACE = JudgeSpace(tuple(COLORS), tuple(SHAPES))  # the classes judge_shape names


@dataclass(frozen=True)
class Verdict:
    color: str | None  # None: nothing drawn
    shape: str | None
    fill: float = 0.0
    top_ratio: float = 0.0


def judge(image: Image.Image) -> Verdict:
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)  # (H, W, 3)
    foreground = pixels.min(axis=2) < 255 - FOREGROUND_MARGIN
    if foreground.sum() < MIN_FOREGROUND:
        return Verdict(None, None)
    median = np.median(pixels[foreground], axis=0)
    names = list(COLORS)
    distances = [float(np.linalg.norm(median - np.asarray(COLORS[name], dtype=np.float32))) for name in names]
    color = names[int(np.argmin(distances))]
    rows = np.flatnonzero(foreground.any(axis=1))
    cols = np.flatnonzero(foreground.any(axis=0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    box = foreground[top:bottom, left:right]
    fill = float(box.mean())
    half = box.shape[0] // 2
    upper, lower = box[:half].sum(), box[box.shape[0] - half :].sum()
    top_ratio = float(upper / max(lower, 1))
    if top_ratio < TRIANGLE_TOP_RATIO:
        shape = "triangle"
    elif fill >= SQUARE_FILL:
        shape = "square"
    else:
        shape = "circle"
    return Verdict(color, shape, fill, top_ratio)


def judge_shape(image: Image.Image) -> tuple[str | None, str | None]:
    """(colour, shape) of the image, (None, None) when nothing is drawn: the `minigpt5_metrics.Judge` interface."""
    verdict = judge(image)
    return verdict.color, verdict.shape


def judge_targets(images: Sequence[Image.Image | None], targets: Sequence[dict]) -> dict[str, float]:
    """colour / shape / both accuracy of images against targets ({color, shape}); a missing image is wrong."""
    colour = shape = both = 0
    for image, target in zip(images, targets, strict=True):
        verdict = judge(image) if image is not None else Verdict(None, None)
        colour += verdict.color == target["color"]
        shape += verdict.shape == target["shape"]
        both += verdict.color == target["color"] and verdict.shape == target["shape"]
    count = max(len(targets), 1)
    return {"colour_acc": colour / count, "shape_acc": shape / count, "both_acc": both / count}


def chance_levels() -> dict[str, float]:
    """Uniform guessing: one colour in four, one shape in three, both in twelve."""
    return {
        "colour_acc": 1 / len(COLORS),
        "shape_acc": 1 / len(SHAPES),
        "both_acc": 1 / (len(COLORS) * len(SHAPES)),
    }
