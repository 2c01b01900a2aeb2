"""The shapes world speaks MiniGPT-5: its CC3M, VIST and MMDialog files parse through the builders, every sample
with an output image has a truth entry, and the truth agrees with the pixels and with the story."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from datasets_helpers import PALETTE
from minigpt5_helpers import fixture_tokenizer
from omegaconf import OmegaConf
from PIL import Image

from minigpt4.common.registry import registry
from minigpt4.datasets.shapes import minigpt5_files
from minigpt4.datasets.shapes.scene import COLORS, SHAPES

SIZES = {
    "vis_processor": {
        "train": {"name": "minigpt5_input_image", "image_size": 16},
        "eval": {"name": "minigpt5_input_image", "image_size": 16},
    },
    "output_vis_processor": {
        "train": {"name": "minigpt5_output_image", "image_size": 32},
        "eval": {"name": "minigpt5_output_image", "image_size": 32, "normalize": False},
    },
}
TRUTH_FILES = {
    "cc3m": {"train": "cc3m/cc3m_train_truth.json", "val": "cc3m/cc3m_val_truth.json"},
    "vist": {"train": "vist/train_cleaned_truth.json", "val": "vist/val_cleaned_truth.json"},
    "mmdialog": {"train": "mmdialog/train/train_conversations_truth.json", "val": "mmdialog/test/test_conversations_truth.json"},
}  # fmt: skip


@pytest.fixture(scope="module")
def built(world_cfg):
    tokenizer = fixture_tokenizer("stage1")
    return {
        name: registry.get_builder_class(name)(
            OmegaConf.merge(world_cfg.datasets[name], SIZES), tokenizer=tokenizer
        ).build_datasets()
        for name in ("cc3m", "vist", "mmdialog")
    }


def truth(world, name, split):
    return json.loads((world.root / TRUTH_FILES[name][split]).read_text())


def dominant_colour(path) -> str:
    """The palette colour of most non-white pixels of the image."""
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=float).reshape(-1, 3)
    names = list(PALETTE)
    centres = np.array([PALETTE[n] for n in names])
    nearest = np.argmin(((pixels[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    counts = np.bincount(nearest[nearest != names.index("white")], minlength=len(names))
    return names[int(counts.argmax())]


def test_every_split_builds_without_skipped_rows(built):
    for name, splits in built.items():
        assert set(splits) == {"train", "val", "test"}, name
        for split, dataset in splits.items():
            assert len(dataset) > 0 and dataset.skipped.total == 0, (name, split)
    sample = built["vist"]["train"][1]
    assert tuple(sample.output_image.shape) == (3, 32, 32) and sample.input_images.shape[-1] == 16


@pytest.mark.parametrize("name", ["cc3m", "vist", "mmdialog"])
def test_truth_covers_every_sample_with_an_output_image(world, built, name):
    for split in ("train", "val"):
        records = built[name][split].records
        # cc3m: an instruction sample shares its row's truth (cc3m_{row}_instruction -> cc3m_{row})
        with_output = {
            r.task_name.removesuffix("_instruction"): r for r in records if r.output_image is not None
        }
        targets = {t["task_name"]: t for t in truth(world, name, split)["targets"]}
        assert set(with_output) == set(targets), (name, split)
        storage = world.root / TRUTH_FILES[name][split]
        for task_name, target in list(targets.items())[:40]:
            assert with_output[task_name].output_image == str(storage.parent / target["image"])
            assert target["color"] in COLORS and target["shape"] in SHAPES
            assert dominant_colour(with_output[task_name].output_image) == target["color"], task_name


def test_cc3m_captions_name_the_drawn_pair_and_training_never_shows_an_unseen_pair(world, built):
    unseen = {tuple(p) for p in truth(world, "cc3m", "train")["unseen_pairs"]}
    for split in ("train", "val"):
        records = {r.task_name: r for r in built["cc3m"][split].records}
        for target in truth(world, "cc3m", split)["targets"]:
            assert records[target["task_name"]].caption == f"a {target['color']} {target['shape']}"
            assert target["seen_pair"] == ((target["color"], target["shape"]) not in unseen)
            if split == "train":
                assert target["seen_pair"]
    assert len(built["cc3m"]["test"]) == len(truth(world, "cc3m", "val")["targets"])  # test: no instructions


def test_story_recall_scenes_follow_from_the_story(world):
    stories = json.loads((world.root / "vist" / "val_cleaned.json").read_text())
    targets = {t["task_name"]: t for t in truth(world, "vist", "val")["targets"]}
    for story_id, steps in stories.items():
        intro = [re.search(r"\ba (\w+) (\w+)\b", s["caption"]).groups() for s in steps[:-1]]
        last = steps[-1]
        target = targets[f"{story_id}_{last['sequence_index']}-gen"]
        assert target["recall"] and (target["color"], target["shape"]) in intro
        named = target["shape"] if target["asks_by"] == "shape" else target["color"]
        assert named in last["caption"]
        other = target["color"] if target["asks_by"] == "shape" else target["shape"]
        assert other not in last["caption"]  # the rest must come from the story
        assert len({c for c, _ in intro}) == len(intro) == len({s for _, s in intro})


def test_dialogue_recall_turns_ask_for_an_earlier_object(world):
    lines = (world.root / "mmdialog" / "test" / "test_conversations.txt").read_text().splitlines()
    targets = {t["task_name"]: t for t in truth(world, "mmdialog", "val")["targets"]}
    for line in lines:
        data = json.loads(line)
        turns = [t["turn"][0]["__TEXT__"] for t in data["conversation"]]
        target = targets[f"mmdialog{data['conversation_id']}_3"]
        assert target["recall"]
        shown = [re.search(r"a (\w+) (\w+)\.", text).groups() for text in turns[:2]]
        assert (target["color"], target["shape"]) in shown
        assert (target["shape"] if target["asks_by"] == "shape" else target["color"]) in turns[2]


def test_pairs_are_the_declared_ones():
    assert len(minigpt5_files.SEEN_PAIRS) + len(minigpt5_files.UNSEEN_PAIRS) == len(COLORS) * len(SHAPES)
    # every colour and every shape still appears in training
    assert {c for c, _ in minigpt5_files.SEEN_PAIRS} == set(COLORS)
    assert {s for _, s in minigpt5_files.SEEN_PAIRS} == set(SHAPES)
