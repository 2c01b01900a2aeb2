"""Scenes of the shapes world: a few large coloured shapes on a plain background, every fact known.

Everything here is pure and seeded: `make_scenes(config)` gives the same list for the same config on every
machine. Colours and shapes within one image are all different, so "the red circle", "the red object" and
"the circle" each name exactly one object (referring expressions are unambiguous by construction).
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (230, 25, 25),
    "green": (30, 170, 40),
    "blue": (30, 70, 230),
    "yellow": (240, 200, 0),
}
SHAPES = ("circle", "square", "triangle")
BACKGROUND = (255, 255, 255)
NUMBER_WORDS = {1: "one", 2: "two", 3: "three"}

SIZES: dict[str, dict[str, int]] = {
    "small": {"num_train": 500, "num_heldout": 100, "image_size": 112, "num_shards": 2},
    "medium": {"num_train": 2000, "num_heldout": 300, "image_size": 112, "num_shards": 4},
    "large": {"num_train": 20000, "num_heldout": 1000, "image_size": 224, "num_shards": 16},
}

# object side as a fraction of the image side, by number of objects: large, so a tiny model can learn shapes
SIDE_FRACTION = {1: (0.45, 0.7), 2: (0.32, 0.44), 3: (0.26, 0.34)}
# object ids of the two-object (VSR) scenes start here, clear of the main scenes' ids
PAIR_OBJECT_IDS = 10_000_001


@dataclass(frozen=True)
class WorldConfig:
    size: str = "small"
    seed: int = 0
    num_train: int = 500
    num_heldout: int = 100
    image_size: int = 112
    min_objects: int = 1
    max_objects: int = 3
    num_shards: int = 2
    first_image_id: int = 100001

    @classmethod
    def from_size(cls, size: str = "small", **overrides: Any) -> WorldConfig:
        if size not in SIZES:
            raise ValueError(f"unknown shapes-world size {size!r}; choose one of {', '.join(SIZES)}")
        values = {**SIZES[size], **{k: v for k, v in overrides.items() if v is not None}}
        config = cls(size=size, **values)
        if not 1 <= config.min_objects <= config.max_objects <= len(SHAPES):
            raise ValueError(f"objects per image must satisfy 1 <= min <= max <= {len(SHAPES)}")
        if config.image_size < 32:
            raise ValueError("image_size must be at least 32 pixels")
        if config.num_train < 1 or config.num_heldout < 6:
            raise ValueError("need at least 1 training image and 6 held-out images")
        return config


@dataclass
class ShapeObject:
    object_id: int
    color: str
    shape: str
    bbox: list[int]  # [x, y, w, h] pixels

    @property
    def phrase(self) -> str:
        return f"{self.color} {self.shape}"

    @property
    def center(self) -> tuple[float, float]:
        x, y, w, h = self.bbox
        return x + w / 2, y + h / 2


@dataclass
class Scene:
    image_id: int
    split: str  # "train" or "heldout"
    width: int
    height: int
    objects: list[ShapeObject] = field(default_factory=list)

    @property
    def coco_file(self) -> str:
        return f"COCO_train2014_{self.image_id:012d}.jpg"

    def caption(self) -> str:
        """'a red circle and a blue square' (objects left to right)."""
        parts = [f"a {obj.phrase}" for obj in self.objects]
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]

    def sentence(self) -> str:
        """The caption as written in raw annotation files: capitalised, with a full stop."""
        text = self.caption()
        return text[0].upper() + text[1:] + "."

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["file"] = self.coco_file
        data["caption"] = self.caption()
        for obj, raw in zip(self.objects, data["objects"]):
            raw["phrase"] = obj.phrase
        return data


def _place(rng: np.random.Generator, count: int, size: int) -> list[list[int]]:
    """`count` non-overlapping square boxes inside a size x size image (rejection sampling, shrinking on failure)."""
    low, high = SIDE_FRACTION[count]
    scale = 1.0
    while True:
        boxes: list[list[int]] = []
        for _ in range(200):
            side = int(rng.uniform(low, high) * size * scale)
            x, y = (int(v) for v in rng.integers(0, size - side + 1, size=2))
            box = [x, y, side, side]
            if all(_apart(box, other, margin=2) for other in boxes):
                boxes.append(box)
                if len(boxes) == count:
                    return boxes
        scale *= 0.9


def _apart(a: list[int], b: list[int], margin: int) -> bool:
    return (
        a[0] + a[2] + margin <= b[0]
        or b[0] + b[2] + margin <= a[0]
        or a[1] + a[3] + margin <= b[1]
        or b[1] + b[3] + margin <= a[1]
    )


def make_scenes(config: WorldConfig) -> list[Scene]:
    """`num_train` training scenes then `num_heldout` held-out scenes, objects sorted left to right."""
    rng = np.random.default_rng(config.seed)
    scenes = []
    next_object_id = 1
    for index in range(config.num_train + config.num_heldout):
        count = int(rng.integers(config.min_objects, config.max_objects + 1))
        objects = _objects(rng, count, config.image_size, next_object_id)
        next_object_id += count
        split = "train" if index < config.num_train else "heldout"
        scenes.append(
            Scene(config.first_image_id + index, split, config.image_size, config.image_size, objects)
        )
    return scenes


def make_pair_scenes(config: WorldConfig) -> list[Scene]:
    """Two objects side by side (apart horizontally, so "left of" is unambiguous) for the spatial-relation
    (VSR) files, whatever the world's objects per image: `num_train // 2` training then `num_heldout`
    held-out scenes, image ids after the main scenes', from their own random stream (the main scenes do not
    depend on them)."""
    rng = np.random.default_rng(config.seed + 2)
    first_id = config.first_image_id + config.num_train + config.num_heldout
    num_train = max(1, config.num_train // 2)
    scenes = []
    for index in range(num_train + config.num_heldout):
        objects: list[ShapeObject] = []
        while not horizontal_pairs(objects):  # redraw until one is wholly left of the other
            objects = _objects(rng, 2, config.image_size, PAIR_OBJECT_IDS + 2 * index)
        split = "train" if index < num_train else "heldout"
        scenes.append(Scene(first_id + index, split, config.image_size, config.image_size, objects))
    return scenes


def _objects(rng: np.random.Generator, count: int, size: int, first_object_id: int) -> list[ShapeObject]:
    """`count` objects of distinct colours and shapes, sorted left to right."""
    color_names = list(COLORS)
    colors = rng.choice(len(color_names), size=count, replace=False)
    shapes = rng.choice(len(SHAPES), size=count, replace=False)
    boxes = _place(rng, count, size)
    objects = [
        ShapeObject(first_object_id + i, color_names[int(color)], SHAPES[int(shape)], box)
        for i, (color, shape, box) in enumerate(zip(colors, shapes, boxes))
    ]
    objects.sort(key=lambda obj: (obj.center[0], obj.center[1]))
    return objects


def draw(scene: Scene) -> Image.Image:
    image = Image.new("RGB", (scene.width, scene.height), BACKGROUND)
    pen = ImageDraw.Draw(image)
    for obj in scene.objects:
        x, y, w, h = obj.bbox
        fill = COLORS[obj.color]
        if obj.shape == "circle":
            pen.ellipse([x, y, x + w - 1, y + h - 1], fill=fill)
        elif obj.shape == "square":
            pen.rectangle([x, y, x + w - 1, y + h - 1], fill=fill)
        else:
            pen.polygon([(x + (w - 1) / 2, y), (x, y + h - 1), (x + w - 1, y + h - 1)], fill=fill)
    return image


def encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.save(buffer, format="JPEG", quality=95, subsampling=0)
    else:
        image.save(buffer, format=fmt)
    return buffer.getvalue()


# -- questions with answers true by construction --------------------------------------------------


def vqa_items(scene: Scene, rng: np.random.Generator) -> list[dict[str, str]]:
    """Short-answer questions of one scene: {question, answer, kind}."""
    items = []
    for obj in scene.objects:
        items.append({"question": f"What color is the {obj.shape}?", "answer": obj.color, "kind": "color"})
        items.append(
            {"question": f"What shape is the {obj.color} object?", "answer": obj.shape, "kind": "shape"}
        )
    items.append(
        {"question": "How many objects are there?", "answer": str(len(scene.objects)), "kind": "count"}
    )
    items.append(yesno_item(scene, rng))
    return items


def side_items(scene: Scene) -> list[dict[str, str]]:
    """Where things are, about a scene's first (left, right) pair: what is on each side, and which side each
    object is on (GQA asks both kinds). The stepping stones of the VSR statements."""
    left, right = horizontal_pairs(scene.objects)[0]
    items = [
        {"question": "What is the object on the left?", "answer": left.phrase, "kind": "side"},
        {"question": "What is the object on the right?", "answer": right.phrase, "kind": "side"},
    ]
    for obj, side in ((left, "left"), (right, "right")):
        question = f"Is the {obj.phrase} on the left or on the right?"
        items.append({"question": question, "answer": side, "kind": "side"})
    return items


def yesno_item(scene: Scene, rng: np.random.Generator) -> dict[str, str]:
    """'Is there a <colour> <shape>?': half the time about an object of the scene, else a random pair."""
    present = {(obj.color, obj.shape) for obj in scene.objects}
    color, shape = rng.choice(list(COLORS)), rng.choice(SHAPES)
    if rng.random() < 0.5:
        obj = scene.objects[int(rng.integers(len(scene.objects)))]
        color, shape = obj.color, obj.shape
    answer = "yes" if (color, shape) in present else "no"
    return {"question": f"Is there a {color} {shape}?", "answer": answer, "kind": "yesno"}


def absent_shape(scene: Scene) -> str | None:
    shapes = {obj.shape for obj in scene.objects}
    missing = [shape for shape in SHAPES if shape not in shapes]
    return missing[0] if missing else None


def horizontal_pairs(objects: list[ShapeObject]) -> list[tuple[ShapeObject, ShapeObject]]:
    """(left, right) pairs whose boxes do not overlap horizontally, so 'left of' is unambiguous."""
    return [(a, b) for a in objects for b in objects if a is not b and a.bbox[0] + a.bbox[2] <= b.bbox[0]]
