"""Every one of the 25 official builders, built from a generated world's datasets.yaml, emits samples that agree
with the generator's truth (task tokens, bbox strings, conversation splits, answers, image content)."""

from __future__ import annotations

import itertools
import re

import pytest
import torch
from datasets_helpers import IMAGE_SIZE, Truth, box, builder_cfg, colours_at_centres, processed, vqa_answer

from minigpt4.common.registry import registry
from minigpt4.datasets.instructions import (
    CAPTION_POOL,
    CONNECT_SYM,
    GROUNDING_POOL,
    IDENTIFY_POOL,
    REFER_POOL,
    VQA_POOL,
)
from minigpt4.datasets.shapes import load_truth

OFFICIAL_BUILDERS = [
    "laion",
    "cc_sbu",
    "cc_sbu_align",
    "coco_caption",
    "textcaps_caption",
    "coco_vqa",
    "ok_vqa",
    "aok_vqa",
    "gqa",
    "ocrvqa",
    "refcoco",
    "refcocop",
    "refcocog",
    "invrefcoco",
    "invrefcocop",
    "invrefcocog",
    "refvg",
    "flickr_grounded_caption",
    "flickr_CaptionToPhrase",
    "flickr_ObjectToPhrase",
    "llava_detail",
    "llava_reason",
    "llava_conversation",
    "multitask_conversation",
    "unnatural_instruction",
]
REFER_SENTENCES = {  # builder -> sentence templates of its folder (from the shapes module docstring)
    "refcoco": ("the {color} {shape}", "{color} {shape}"),
    "refcocop": ("{color} {shape}", "the {color} one"),
    "refcocog": ("the {color} {shape} in the picture", "a {shape} that is {color}"),
}


def wrap(text: str) -> str:
    return f"<Img><ImageHere></Img> {text} "


@pytest.fixture(scope="module")
def truth(world):
    return Truth(load_truth(world.root))


@pytest.fixture(scope="module")
def built(world_cfg):
    return {
        name: registry.get_builder_class(name)(builder_cfg(world_cfg, name)).build_datasets()
        for name in OFFICIAL_BUILDERS
    }


def test_all_25_official_builders_our_three_and_the_minigpt5_three_are_registered():
    ours = ["vsr", "hateful_memes", "vizwiz"]
    minigpt5 = ["cc3m", "vist", "mmdialog"]
    assert sorted(registry.list_builders()) == sorted([*OFFICIAL_BUILDERS, *ours, *minigpt5])


def test_every_builder_returns_a_train_split(built):
    for name, datasets in built.items():
        assert list(datasets) == ["train"], name


def image_of_record(name: str, dataset, index: int, sample) -> int:
    record = dataset.records[index]
    if name in ("coco_caption", "coco_vqa", "ok_vqa", "aok_vqa"):
        return int(record["image"].split("/")[-1][-16:-4])
    if name == "gqa":
        return int(record["image"][:-4])
    if name == "textcaps_caption":
        return int(record["image_id"], 16)
    if name == "ocrvqa":
        return int(record["image_id"][1:])
    if name == "cc_sbu_align":
        return int(record["image_id"])
    return int(sample["image_id"])


def check_pixels(sample, image) -> None:
    assert sample["image"].shape == (3, IMAGE_SIZE, IMAGE_SIZE)
    assert colours_at_centres(sample["image"], image) == [obj["color"] for obj in image["objects"]]


def expected_check(name: str, sample, image) -> None:
    objects = image["objects"]
    caption = image["caption"]
    if name in ("coco_caption", "textcaps_caption"):
        assert sample["instruction_input"] in {wrap(f"[caption] {p}") for p in CAPTION_POOL}
        assert sample["answer"] == caption
    elif name == "cc_sbu_align":
        assert sample["answer"] == f"The image shows {caption} on a white background."
    elif name in ("coco_vqa", "ok_vqa", "aok_vqa", "gqa", "ocrvqa"):
        question = next(
            m.group(1)
            for t in sorted(VQA_POOL, key=len, reverse=True)
            if (m := re.fullmatch(re.escape(wrap(t)).replace(r"\{\}", "(.*)"), sample["instruction_input"]))
        )
        assert sample["answer"] == vqa_answer(question, image)
    elif name in REFER_SENTENCES or name.removeprefix("inv") in REFER_SENTENCES:
        folder = name.removeprefix("inv")
        obj = next(o for o in objects if box(image, o) in sample["answer"] + sample["instruction_input"])
        sentences = [processed(t.format(**obj)) for t in REFER_SENTENCES[folder]]
        if name.startswith("inv"):
            assert sample["instruction_input"] in {wrap(t.format(box(image, obj))) for t in IDENTIFY_POOL}
            assert sample["answer"] in sentences
        else:
            assert sample["answer"] == box(image, obj)
            assert sample["instruction_input"] in {wrap(t.format(s)) for t in REFER_POOL for s in sentences}
    elif name == "refvg":
        phrases = {box(image, o): f"a {o['phrase']}" for o in objects}
        phrases["{<0><0><100><100>}"] = "the white background"
        assert sample["answer"] in phrases
        assert sample["instruction_input"] in {wrap(t.format(phrases[sample["answer"]])) for t in REFER_POOL}
    elif name == "flickr_grounded_caption":
        assert sample["instruction_input"] in {wrap(p) for p in GROUNDING_POOL}
        assert sample["answer"] == " and ".join(f"<p>a {o['phrase']}</p> {box(image, o)}" for o in objects)
    elif name == "flickr_CaptionToPhrase":
        assert sample["instruction_input"] == wrap("[detection] " + caption[0].upper() + caption[1:] + ".")
        assert sample["answer"] == " ".join(f"<p>{o['phrase']}</p> {box(image, o)}" for o in objects)
    elif name == "flickr_ObjectToPhrase":
        phrase = sample["instruction_input"][len(wrap("[detection] ")) - 1 : -1]
        obj = next(o for o in objects if o["phrase"] == phrase)
        assert sample["answer"] == f"<p>{phrase}</p> {box(image, obj)}"
    elif name == "llava_detail":
        assert sample["instruction_input"] == wrap("describe the image in detail")
        assert caption in sample["answer"]
    elif name == "llava_reason":
        assert sample["instruction_input"] == wrap("what is the color of the leftmost object?")
        assert sample["answer"].endswith(f"its color is {objects[0]['color']}.")
    elif name == "llava_conversation":
        questions, answers = sample["conv_q"].split(CONNECT_SYM), sample["conv_a"].split(CONNECT_SYM)
        assert sample["connect_sym"] == CONNECT_SYM
        assert len(questions) == len(answers) == len(objects) + 1
        assert questions[0] == wrap(f"What shape is the {objects[0]['color']} object?")
        assert answers[0] == f"It is a {objects[0]['shape']}."
        for obj, answer in zip(objects[1:], answers[1:]):
            assert answer == f"The {obj['shape']} is {obj['color']}."
        assert answers[-1] == f"There are {len(objects)}."
    elif name == "multitask_conversation":
        questions, answers = sample["conv_q"].split(CONNECT_SYM), sample["conv_a"].split(CONNECT_SYM)
        first, last = objects[0], objects[-1]
        assert questions[0] == wrap(f"[vqa] What color is the {first['shape']}?")
        assert questions[1].startswith("[refer] ") and questions[2].startswith("[identify] ")
        assert answers == [first["color"], box(image, last), first["phrase"]]
    else:
        raise AssertionError(f"no check for {name}")


@pytest.mark.parametrize(
    "name", [n for n in OFFICIAL_BUILDERS if n not in ("laion", "cc_sbu", "unnatural_instruction")]
)
def test_map_style_samples_match_truth(name, built, truth):
    dataset = built[name]["train"]
    assert len(dataset) > 0
    for index in range(len(dataset)):
        sample = dataset[index]
        image = truth.image(image_of_record(name, dataset, index, sample))
        assert image["split"] == "train", f"{name} uses held-out image {image['image_id']}"
        expected_check(name, sample, image)
        if index < 3:
            check_pixels(sample, image)


def test_dataset_sizes_follow_the_truth(built, truth):
    train = [image for image in truth.images.values() if image["split"] == "train"]
    objects = sum(len(image["objects"]) for image in train)
    assert len(built["coco_caption"]["train"]) == len(train)  # val2014 records filtered out (official)
    for name in ("refcoco", "refcocop", "refcocog", "invrefcoco", "flickr_ObjectToPhrase"):
        assert len(built[name]["train"]) == objects, name  # only split == train refs
    assert len(built["refvg"]["train"]) == objects + len(train)  # objects + background (112 px < 128)
    assert len(built["ocrvqa"]["train"]) == 2 * len(train)  # split 1 only, two questions each
    pairs = [image for image in truth.pair_images.values() if image["split"] == "train"]
    assert len(built["cc_sbu_align"]["train"]) == len(train)  # one-object captions only (MiniGPT-4's)
    asked = sum(2 * len(image["objects"]) + 2 for image in train)  # colour, shape of each; count; yes/no
    assert len(built["gqa"]["train"]) == asked + 4 * len(pairs)  # and 4 about sides per two-object scene


def test_webdataset_streams_yield_train_captions(built, truth):
    for name in ("laion", "cc_sbu"):
        for sample in itertools.islice(iter(built[name]["train"]), 30):
            assert set(sample) == {"image", "answer"}
            assert sample["image"].shape == (3, IMAGE_SIZE, IMAGE_SIZE)
            assert sample["answer"] in truth.train_captions()


def test_unnatural_instruction_is_text_only(built, truth):
    dataset = built["unnatural_instruction"]["train"]
    captions = truth.train_captions()
    assert len(dataset) == 2 * sum(i["split"] == "train" for i in truth.images.values())  # two per scene
    answers = []
    for index in range(len(dataset)):
        sample = dataset[index]
        assert set(sample) == {"instruction_input", "answer"}
        caption = max((c for c in captions if c in sample["instruction_input"]), key=len)
        image = next(i for i in truth.images.values() if i["caption"] == caption)
        text = sample["instruction_input"]
        assert text.startswith(f"the image shows {caption} is there a ")  # the text processor drops the '.'
        question = text[len(f"the image shows {caption} ") :]
        assert sample["answer"] == vqa_answer(question, image)
        answers.append(sample["answer"])
    assert set(answers) == {"yes", "no"}


def test_collated_batches_have_the_model_keys(built):
    dataset = built["llava_conversation"]["train"]
    batch = dataset.collater([dataset[0], dataset[1]])
    assert batch["image"].shape == (2, 3, IMAGE_SIZE, IMAGE_SIZE) and batch["image"].dtype == torch.float32
    assert isinstance(batch["conv_q"], list) and batch["connect_sym"] == [CONNECT_SYM] * 2


def test_all_25_mix_into_training_batches(built, truth):
    from minigpt4.datasets.mixing import build_train_loader

    datasets = {name: parts["train"] for name, parts in built.items()}
    batch_sizes = dict.fromkeys(datasets, 2)
    loader = build_train_loader(datasets, batch_sizes, dict.fromkeys(datasets, 1.0), seed=1)
    seen = set()
    for _ in range(150):
        batch = next(loader)
        name = loader.last_dataset
        seen.add(name)
        if name == "unnatural_instruction":
            assert "image" not in batch
        else:
            assert batch["image"].shape == (2, 3, IMAGE_SIZE, IMAGE_SIZE)
        text_keys = {"conv_q", "conv_a", "connect_sym"} if "conversation" in name else {"answer"}
        for key in text_keys:
            assert isinstance(batch[key], list) and len(batch[key]) == 2 and isinstance(batch[key][0], str)
    assert len(seen) >= 22
    with pytest.raises(TypeError):
        len(loader)  # laion/cc_sbu are streams
