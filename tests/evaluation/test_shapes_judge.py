"""The pixel-rule judge of generated shapes-world images: right on the world's own renderings (full size and at the
32 px the tiny SD stand-in draws, JPEG round trip included), wrong when the image shows another colour or shape,
and no verdict on an empty canvas."""

import io

import numpy as np
import pytest
from PIL import Image

from minigpt4.datasets.shapes.minigpt5_files import ALL_PAIRS
from minigpt4.datasets.shapes.scene import Scene, ShapeObject, _place, draw
from minigpt4.evaluation.shapes_judge import SHAPES_SPACE, chance_levels, judge, judge_shape, judge_targets


def rendered(color: str, shape: str, rng: np.random.Generator, size: int = 112) -> Image.Image:
    box = _place(rng, 1, size)[0]
    return draw(Scene(1, "heldout", size, size, [ShapeObject(1, color, shape, box)]))


def small_jpeg(image: Image.Image, size: int = 32) -> Image.Image:
    buffer = io.BytesIO()
    image.resize((size, size), Image.BICUBIC).save(buffer, "JPEG", quality=90)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


@pytest.mark.parametrize("size", [112, 32])
def test_judge_reads_every_pair_of_the_world(size):
    rng = np.random.default_rng(0)
    images, targets = [], []
    for color, shape in ALL_PAIRS:
        for _ in range(5):
            image = rendered(color, shape, rng)
            images.append(image if size == 112 else small_jpeg(image, size))
            targets.append({"color": color, "shape": shape})
    scores = judge_targets(images, targets)
    assert scores["colour_acc"] == 1.0
    assert scores["shape_acc"] >= 0.95  # a 32 px JPEG blurs the smallest shapes' corners
    assert scores["both_acc"] >= 0.95


def test_judge_marks_other_colours_and_shapes_wrong():
    rng = np.random.default_rng(1)
    images = [
        rendered("red", "circle", rng),
        rendered("blue", "square", rng),
        rendered("green", "triangle", rng),
    ]
    asked = [
        {"color": "blue", "shape": "circle"},  # colour wrong
        {"color": "blue", "shape": "triangle"},  # shape wrong
        {"color": "red", "shape": "square"},  # both wrong
    ]
    assert judge_targets(images, asked) == {"colour_acc": 1 / 3, "shape_acc": 1 / 3, "both_acc": 0.0}


def test_empty_canvas_and_missing_image_are_wrong():
    white = Image.new("RGB", (32, 32), (255, 255, 255))
    assert judge(white).color is None and judge(white).shape is None
    scores = judge_targets([white, None], [{"color": "red", "shape": "circle"}] * 2)
    assert scores == {"colour_acc": 0.0, "shape_acc": 0.0, "both_acc": 0.0}


def test_judge_is_near_chance_on_noise():
    rng = np.random.default_rng(2)
    noise = [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(120)]
    targets = [{"color": c, "shape": s} for c, s in ALL_PAIRS] * 10
    scores = judge_targets(noise, targets)
    assert scores["both_acc"] <= 0.25
    assert chance_levels() == {"colour_acc": 0.25, "shape_acc": 1 / 3, "both_acc": 1 / 12}


def test_judge_shape_is_the_verdict_as_a_metrics_judge():
    rng = np.random.default_rng(3)
    white = Image.new("RGB", (32, 32), (255, 255, 255))
    for image in [white, *(rendered(color, shape, rng) for color, shape in ALL_PAIRS)]:
        verdict = judge(image)
        assert judge_shape(image) == (verdict.color, verdict.shape)
        assert judge_shape(image) in SHAPES_SPACE.classes


def test_lengths_must_match():
    with pytest.raises(ValueError):
        judge_targets([None], [])
