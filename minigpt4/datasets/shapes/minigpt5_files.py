"""The shapes world in the three MiniGPT-5 formats (builders `cc3m`, `vist`, `mmdialog`), with a judge's truth.

Every image here shows ONE shape in one colour (large, anywhere in the image), so "draw a red circle" has one
right answer a pixel rule can check. Each format has a training split and a held-out split, drawn from their own
random streams (the other files of the world do not move):

* `cc3m/cc3m_train.tsv`, `cc3m/cc3m_val.tsv` (`caption<TAB>image_path`, "A red circle.", images
  `cc3m/images/<9 digits>.jpg`). Two colour-shape pairs (`UNSEEN_PAIRS`) never appear in training; held-out rows
  use all twelve pairs, so a judge can score seen pairs and report unseen ones apart.
* `vist/{train,val}_cleaned.json` + `_image_mapping.json` (images `vist/images/<9 digits>.jpg`): stories that
  introduce two or three objects of distinct colours and shapes ("there is a red circle.", "then a blue square
  appears.") and end with a scene that names one of them by shape or by colour only ("the circle comes back.",
  "the red one comes back."): its image (that object) follows from the story, not from the last sentence alone.
* `mmdialog/{train,test}/{train,test}_conversations.txt` (JSON lines; images beside them, `<media id>.jpg`):
  human shows an object, assistant answers with another, human asks for one of them again by shape or colour,
  assistant answers "Here it is." with its image.

Beside each data file, `<data file stem>_truth.json`: {format, split, data_file, colors, shapes, unseen_pairs,
targets: [{task_name, image, color, shape, seen_pair, recall, asks_by}]}, one entry per sample with an output
image, keyed by the task name the builder gives that sample (cc3m_{row}, {story}_{step}-gen / -multimodal,
mmdialog{conversation}_{turn}; a CC3M instruction sample `cc3m_{row}_instruction` shares its row's entry); `recall` marks the story / dialogue scenes that must be inferred from earlier
turns, `asks_by` says whether the request named the shape or the colour.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from minigpt4.datasets.shapes.scene import (
    COLORS,
    SHAPES,
    Scene,
    ShapeObject,
    WorldConfig,
    _place,
    draw,
    encode,
)

UNSEEN_PAIRS = (("green", "triangle"), ("yellow", "circle"))
SEEN_PAIRS = tuple((c, s) for c in COLORS for s in SHAPES if (c, s) not in UNSEEN_PAIRS)
ALL_PAIRS = tuple((c, s) for c in COLORS for s in SHAPES)
POOL_FIRST_ID = 5_000_001  # image ids of the pool scenes (clear of the world's other ids)
FILE_FIRST_ID = 6_000_001  # story images take fresh ids (one file per step)
STREAMS = {
    "pool": 4,
    "vist": 5,
    "mmdialog": 6,
}  # seed offsets: own random streams, the other files do not move
INTRO_FIRST = "there is a {color} {shape}."
INTRO_NEXT = ("then a {color} {shape} appears.", "next comes a {color} {shape}.")
RECALL = {"shape": "the {shape} comes back.", "color": "the {color} one comes back."}
DIALOG_ASK = {
    "shape": "Can you show me the {shape} again?",
    "color": "Can you show me the {color} one again?",
}


class ImagePool:
    """Single-object scenes per split, each JPEG-encoded once (encoding is most of the world's time): the CC3M
    rows use them in order; stories and dialogues pick one of the wanted colour-shape pair and write its bytes
    under their own file name. Training scenes show seen pairs only, held-out scenes any pair."""

    def __init__(self, config: WorldConfig) -> None:
        self.config = config
        self.rng = np.random.default_rng(config.seed + STREAMS["pool"])
        self.next_id = POOL_FIRST_ID
        self.scenes: dict[str, list[Scene]] = {"train": [], "heldout": []}
        self.jpegs: dict[int, bytes] = {}
        self.by_pair: dict[tuple[str, str, str], list[Scene]] = {}
        for split, count in (("train", config.num_train), ("heldout", config.num_heldout)):
            pairs = SEEN_PAIRS if split == "train" else ALL_PAIRS
            for _ in range(count):
                self._add(*pairs[int(self.rng.integers(len(pairs)))], split)

    def _add(self, color: str, shape: str, split: str) -> Scene:
        size = self.config.image_size
        box = _place(self.rng, 1, size)[0]
        scene = Scene(self.next_id, split, size, size, [ShapeObject(self.next_id, color, shape, box)])
        self.next_id += 1
        self.jpegs[scene.image_id] = encode(draw(scene), "JPEG")
        self.scenes[split].append(scene)
        self.by_pair.setdefault((color, shape, split), []).append(scene)
        return scene

    def pick(self, rng: np.random.Generator, color: str, shape: str, split: str) -> Scene:
        """A scene of that pair and split (drawn now when the pool has none: tiny worlds)."""
        options = self.by_pair.get((color, shape, split)) or [self._add(color, shape, split)]
        return options[int(rng.integers(len(options)))]


def _target(
    task_name: str, image: str, scene: Scene, recall: bool = False, asks_by: str | None = None
) -> dict:
    obj = scene.objects[0]
    return {
        "task_name": task_name,
        "image": image,
        "color": obj.color,
        "shape": obj.shape,
        "seen_pair": (obj.color, obj.shape) not in UNSEEN_PAIRS,
        "recall": recall,
        "asks_by": asks_by,
    }


def _write_truth(data_file: Path, fmt: str, split: str, targets: list[dict]) -> None:
    truth = {
        "format": fmt,
        "split": split,
        "data_file": data_file.name,
        "colors": list(COLORS),
        "shapes": list(SHAPES),
        "unseen_pairs": [list(pair) for pair in UNSEEN_PAIRS],
        "targets": targets,
    }
    data_file.with_name(f"{data_file.stem}_truth.json").write_text(json.dumps(truth))


def _story_counts(config: WorldConfig) -> tuple[tuple[str, int], ...]:
    """Stories / dialogues per split: half as many training ones as training images, all held-out ones."""
    return (("train", max(1, config.num_train // 2)), ("heldout", config.num_heldout))


def write_minigpt5(root: Path, config: WorldConfig) -> dict[str, dict[str, Any]]:
    """The three formats under `root`; returns their build_infos (paths relative to `root`)."""
    pool = ImagePool(config)
    return {
        "cc3m": write_cc3m(root, pool),
        "vist": write_vist(root, pool),
        "mmdialog": write_mmdialog(root, pool),
    }


def write_cc3m(root: Path, pool: ImagePool) -> dict[str, Any]:
    """cc3m/cc3m_train.tsv (seen pairs only), cc3m/cc3m_val.tsv (all pairs), images, truth."""
    folder = root / "cc3m"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for split, name in (("train", "cc3m_train.tsv"), ("heldout", "cc3m_val.tsv")):
        lines, targets = ["caption\timage_path"], []
        for row, scene in enumerate(pool.scenes[split]):
            image = f"images/{scene.image_id:09d}.jpg"
            (folder / image).write_bytes(pool.jpegs[scene.image_id])
            lines.append(f"{scene.sentence()}\t{image}")
            targets.append(_target(f"cc3m_{row}", image, scene) | {"caption": scene.caption()})
        (folder / name).write_text("\n".join(lines) + "\n")
        _write_truth(folder / name, "cc3m", "train" if split == "train" else "val", targets)
    return {
        "storage": "cc3m",
        "train_data_path": "cc3m_train.tsv",
        "val_data_path": "cc3m_val.tsv",
        "test_data_path": "cc3m_val.tsv",
    }


def _distinct_objects(rng: np.random.Generator, count: int) -> list[tuple[str, str]]:
    """`count` seen pairs with all colours and all shapes distinct (so a shape or a colour names one object)."""
    while True:
        picks = [SEEN_PAIRS[int(i)] for i in rng.choice(len(SEEN_PAIRS), size=count, replace=False)]
        if len({c for c, _ in picks}) == count and len({s for _, s in picks}) == count:
            return picks


def _story(rng: np.random.Generator, max_intro: int) -> tuple[list[tuple[str, str, str]], str]:
    """[(caption, color, shape)] of the intro steps then the recall step, and what the recall names."""
    objects = _distinct_objects(rng, int(rng.integers(2, max_intro + 1)))
    steps = []
    for index, (color, shape) in enumerate(objects):
        template = INTRO_FIRST if index == 0 else INTRO_NEXT[int(rng.integers(len(INTRO_NEXT)))]
        steps.append((template.format(color=color, shape=shape), color, shape))
    color, shape = objects[int(rng.integers(len(objects)))]
    asks_by = "shape" if rng.random() < 0.5 else "color"
    steps.append((RECALL[asks_by].format(color=color, shape=shape), color, shape))
    return steps, asks_by


def write_vist(root: Path, pool: ImagePool) -> dict[str, Any]:
    """vist/{train,val}_cleaned.json + _image_mapping.json, images, truth (see the module docstring)."""
    rng = np.random.default_rng(pool.config.seed + STREAMS["vist"])
    folder = root / "vist"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    max_intro = max(2, min(3, pool.config.max_objects))
    story_id, image_id = 1, FILE_FIRST_ID
    for split, count in _story_counts(pool.config):
        prefix = "train" if split == "train" else "val"
        stories, mapping, targets = {}, {}, []
        for _ in range(count):
            steps, asks_by = _story(rng, max_intro)
            story = []
            for index, (caption, color, shape) in enumerate(steps):
                scene = pool.pick(rng, color, shape, split)
                image = f"images/{image_id:09d}.jpg"
                (folder / image).write_bytes(pool.jpegs[scene.image_id])
                mapping[str(image_id)] = image
                story.append({"caption": caption, "image_id": str(image_id), "sequence_index": index})
                image_id += 1
                recall = index == len(steps) - 1
                for kind in ("gen", "multimodal") if index else ("gen",):
                    name = f"{story_id}_{index}-{kind}"
                    targets.append(_target(name, image, scene, recall, asks_by if recall else None))
            stories[str(story_id)] = story
            story_id += 1
        data_file = folder / f"{prefix}_cleaned.json"
        data_file.write_text(json.dumps(stories))
        (folder / f"{prefix}_image_mapping.json").write_text(json.dumps(mapping))
        _write_truth(data_file, "vist", prefix, targets)
    return {
        "storage": "vist",
        "train_data_path": "train_cleaned.json",
        "val_data_path": "val_cleaned.json",
        "test_data_path": "val_cleaned.json",
    }


def write_mmdialog(root: Path, pool: ImagePool) -> dict[str, Any]:
    """mmdialog/{train,test}/{split}_conversations.txt with images beside them, truth (module docstring)."""
    rng = np.random.default_rng(pool.config.seed + STREAMS["mmdialog"])
    conversation_id = 0
    used_media: set[str] = set()
    for split, count in _story_counts(pool.config):
        prefix = "train" if split == "train" else "test"
        folder = root / "mmdialog" / prefix
        folder.mkdir(parents=True, exist_ok=True)
        lines, targets = [], []
        for _ in range(count):
            (c0, s0), (c1, s1) = _distinct_objects(rng, 2)
            color, shape = ((c0, s0), (c1, s1))[int(rng.integers(2))]
            asks_by = "shape" if rng.random() < 0.5 else "color"
            turns = [
                (f"I drew a {c0} {s0}.", c0, s0),
                (f"Nice! Here is a {c1} {s1}.", c1, s1),
                (DIALOG_ASK[asks_by].format(color=color, shape=shape), None, None),
                ("Here it is.", color, shape),
            ]
            conversation = []
            for index, (text, turn_color, turn_shape) in enumerate(turns):
                if turn_color is None:
                    conversation.append({"turn": [{"__TEXT__": text}]})
                    continue
                scene = pool.pick(rng, turn_color, turn_shape, split)
                media = str(int(rng.integers(-(2**62), 2**62)))  # MMDialog media ids: signed 64-bit numbers
                while media in used_media:
                    media = str(int(rng.integers(-(2**62), 2**62)))
                used_media.add(media)
                (folder / f"{media}.jpg").write_bytes(pool.jpegs[scene.image_id])
                conversation.append({"turn": [{"__TEXT__": text}, {"__MEDIA__": media}]})
                if index:
                    recall = index == len(turns) - 1
                    name = f"mmdialog{conversation_id}_{index}"
                    targets.append(_target(name, f"{media}.jpg", scene, recall, asks_by if recall else None))
            lines.append(json.dumps({"conversation_id": conversation_id, "conversation": conversation}))
            conversation_id += 1
        data_file = folder / f"{prefix}_conversations.txt"
        data_file.write_text("\n".join(lines) + "\n")
        _write_truth(data_file, "mmdialog", prefix, targets)
    return {
        "storage": "mmdialog",
        "train_data_path": "train/train_conversations.txt",
        "val_data_path": "test/test_conversations.txt",
        "test_data_path": "test/test_conversations.txt",
    }
