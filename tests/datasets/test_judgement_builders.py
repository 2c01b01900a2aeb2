"""Our `vsr`, `hateful_memes` and `vizwiz` builders: samples agree with the world's truth (pixels included), the
instruction is the evaluation prompt, and malformed files fail at build time naming file, line or record."""

from __future__ import annotations

import json

import pytest
from datasets_helpers import Truth, builder_cfg, colours_at_centres

from minigpt4.common.errors import DataError
from minigpt4.common.registry import registry
from minigpt4.datasets.shapes import load_truth
from minigpt4.evaluation.postprocess import HM_PROMPT, VIZWIZ_PROMPT, VSR_PROMPT


def build(world_cfg, name: str, **build_info):
    cfg = builder_cfg(world_cfg, name)
    for key, value in build_info.items():
        cfg.build_info[key] = str(value)
    return registry.get_builder_class(name)(cfg).build_datasets()["train"]


def test_vsr_statements_are_true_exactly_when_the_subject_is_left_of_the_object(world, world_cfg):
    pairs = {image["image_id"]: image for image in load_truth(world.root)["pair_images"]}
    dataset = build(world_cfg, "vsr")
    assert len(dataset) == 2 * sum(image["split"] == "train" for image in pairs.values())
    labels = []
    for index in range(len(dataset)):
        sample, record = dataset[index], dataset.records[index]
        image = pairs[int(record["image"][:-4])]
        assert image["split"] == "train"
        subj, obj = (
            next(o for o in image["objects"] if o["phrase"] == p) for p in (record["subj"], record["obj"])
        )
        is_left = subj["bbox"][0] + subj["bbox"][2] <= obj["bbox"][0]
        assert sample["answer"] == ("true" if is_left else "false")
        caption = f"The {subj['phrase']} is left of the {obj['phrase']}."
        assert sample["instruction_input"] == f"<Img><ImageHere></Img> {VSR_PROMPT.format(caption)} "
        if index < 4:
            assert colours_at_centres(sample["image"], image) == [o["color"] for o in image["objects"]]
        labels.append(sample["answer"])
    assert labels.count("true") == labels.count("false")  # each scene stated both ways


def test_hateful_memes_label_is_whether_the_text_misdescribes_the_image(world, world_cfg):
    truth = Truth(load_truth(world.root))
    dataset = build(world_cfg, "hateful_memes")
    assert len(dataset) == sum(image["split"] == "train" for image in truth.images.values())
    answers = set()
    for index in range(len(dataset)):
        sample, record = dataset[index], dataset.records[index]
        image = truth.images[record["id"]]
        assert image["split"] == "train"
        assert sample["answer"] == ("no" if record["text"] == image["caption"] else "yes")
        assert sample["instruction_input"] == f"<Img><ImageHere></Img> {HM_PROMPT.format(record['text'])} "
        if index < 4:
            assert colours_at_centres(sample["image"], image) == [o["color"] for o in image["objects"]]
        answers.add(sample["answer"])
    assert answers == {"yes", "no"}


def test_vizwiz_answers_unanswerable_exactly_when_the_shape_is_absent(world, world_cfg):
    truth = Truth(load_truth(world.root))
    dataset = build(world_cfg, "vizwiz")
    assert len(dataset) == sum(image["split"] == "train" for image in truth.images.values())
    answers = []
    for index in range(len(dataset)):
        sample, record = dataset[index], dataset.records[index]
        image = truth.images[int(record["image"][len("VizWiz_train_") : -4])]
        assert image["split"] == "train"
        shape = record["question"].removeprefix("What color is the ").removesuffix("?")
        present = [o["color"] for o in image["objects"] if o["shape"] == shape]
        assert sample["answer"] == (present[0] if present else "unanswerable")
        prompt = VIZWIZ_PROMPT.format(record["question"])
        assert sample["instruction_input"] == f"<Img><ImageHere></Img> {prompt} "
        if index < 4:
            assert colours_at_centres(sample["image"], image) == [o["color"] for o in image["objects"]]
        answers.append(sample["answer"])
    assert 0 < answers.count("unanswerable") < len(answers)


def test_vizwiz_target_is_the_most_frequent_answer_and_bad_answers_are_named(world, world_cfg, tmp_path):
    record = json.loads((world.root / "vizwiz" / "train.json").read_text())[0]
    votes = ["blue", "red", "red", "unanswerable", "blue", "red"]
    ann = tmp_path / "train.json"
    ann.write_text(
        json.dumps([{**record, "answers": [{"answer": a, "answer_confidence": "yes"} for a in votes]}])
    )
    assert build(world_cfg, "vizwiz", ann_path=ann)[0]["answer"] == "red"
    ann.write_text(json.dumps([record, {**record, "answers": []}]))
    with pytest.raises(
        DataError, match=r"record 1 of .*train\.json has answers \[\], expected a non-empty list"
    ):
        build(world_cfg, "vizwiz", ann_path=ann)


def test_bad_label_and_bad_line_are_named(world, world_cfg, tmp_path):
    good = (world.root / "vsr" / "train.jsonl").read_text().splitlines()
    bad_label = tmp_path / "label.jsonl"
    bad_label.write_text("\n".join([good[0], json.dumps({**json.loads(good[1]), "label": "true"})]))
    with pytest.raises(DataError, match=r"record 1 of .*label\.jsonl has label 'true', expected 0 or 1"):
        build(world_cfg, "vsr", ann_path=bad_label)
    bad_line = tmp_path / "line.jsonl"
    bad_line.write_text(good[0] + "\n{not json\n")
    with pytest.raises(DataError, match=r"line\.jsonl line 2 is not valid JSON"):
        build(world_cfg, "vsr", ann_path=bad_line)
    missing_key = tmp_path / "key.jsonl"
    missing_key.write_text(json.dumps({"img": "img/1.png", "label": 0}) + "\n")
    with pytest.raises(DataError, match=r"record 0 of .*key\.jsonl lacks 'text'"):
        build(world_cfg, "hateful_memes", ann_path=missing_key)


def test_missing_image_is_named_when_read(world, world_cfg, tmp_path):
    dataset = build(world_cfg, "hateful_memes", image_path=tmp_path)
    with pytest.raises(DataError, match=r"image not found at .*img/\d+\.png"):
        dataset[0]
