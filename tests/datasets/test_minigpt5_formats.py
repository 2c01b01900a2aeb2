"""The three MiniGPT-5 formats on tiny files of their official layouts (spec minigpt5_anatomy.md §3): the exact
samples of the official dataloader, malformed rows skipped and counted, and the errors we promise."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from minigpt5_helpers import FIXTURES, fixture_tokenizer, minigpt5_cfg, write_image
from PIL import Image

from minigpt4.common.errors import ConfigError, DataError
from minigpt4.common.registry import registry
from minigpt4.datasets.formats import cc3m_tsv, mmdialog, vist
from minigpt4.datasets.formats.minigpt5 import (
    IGNORE_INDEX,
    VOKEN_TEXT,
    TokenizerAdapter,
    voken_label_mask,
)
from minigpt4.processors.image import (
    Minigpt5InputImageProcessor,
    center_crop,
    expand2square,
    resize_shorter_side,
)

GEN = f"{VOKEN_TEXT} ###"
SLOT = "<Img><ImageHere></Img>"


@pytest.fixture(scope="module")
def tokenizer():
    return fixture_tokenizer("stage1")


def first(options):
    return options[0]


def build(name, cfg, tokenizer, choose=first):
    return registry.get_builder_class(name)(cfg, tokenizer=tokenizer, choose=choose).build_datasets()


# -- CC3M ------------------------------------------------------------------------------------------


def write_tsv(path, rows):
    path.write_text("caption\timage_path\n" + "".join(row + "\n" for row in rows))


def test_cc3m_rows_instructions_and_skipped_rows(tmp_path, tokenizer, caplog):
    write_image(tmp_path / "train" / "a.jpg")
    rows = [
        "A Dog, on the grass!\ttrain/a.jpg",  # 0: sample + instruction
        "\ttrain/a.jpg",  # 1: empty caption
        "a cat\ttrain/missing.jpg",  # 2: missing image
        "only one field",  # 3: too few fields
        "",  # blank: not a row
        "(.!)\ttrain/a.jpg",  # 4: empty once cleaned
        *(f"caption {i}\ttrain/a.jpg" for i in range(5, 101)),  # 5..100: row 100 gets an instruction
    ]
    write_tsv(tmp_path / "train.tsv", rows)
    with caplog.at_level(logging.WARNING):
        dataset = build("cc3m", minigpt5_cfg(tmp_path, train="train.tsv"), tokenizer)["train"]
    records = dataset.records
    assert records[0].source == "a dog, on the grass" and records[0].target == GEN
    assert records[0].caption == "a dog, on the grass" and records[0].input_images == (None,)
    assert records[1].task_name == "cc3m_0_instruction"
    assert records[1].source == (
        "You will be able to generate image according to command.###Human: generate image with caption: "
        "a dog, on the grass ###Assistant:"
    )
    names = [r.task_name for r in records]
    assert names[2] == "cc3m_5" and names[-2:] == ["cc3m_100", "cc3m_100_instruction"]
    assert len(records) == 2 + 96 + 1
    assert dict(dataset.skipped.reasons) == {
        "empty captions": 2,
        "missing images": 1,
        "rows with fewer fields than the header": 1,
    }
    warnings = [r.getMessage() for r in caplog.records if "skipped 4" in r.getMessage()]
    assert len(warnings) == 1 and "train.tsv line 3" in warnings[0]


def test_cc3m_test_mode_targets_are_captions_without_instructions(tmp_path, tokenizer):
    write_image(tmp_path / "val" / "a.jpg", size=(30, 20))
    write_tsv(tmp_path / "val.tsv", ["A red car.\tval/a.jpg"])
    dataset = build("cc3m", minigpt5_cfg(tmp_path, test="val.tsv", output_size=8), tokenizer)["test"]
    assert [(r.source, r.target, r.task_name) for r in dataset.records] == [
        ("a red car", "a red car", "cc3m_0")
    ]
    sample = dataset[0]
    assert float(sample.output_image.min()) >= 0.0 and float(sample.output_image.max()) <= 1.0  # eval: [0, 1]
    assert tuple(sample.output_image.shape) == (3, 8, 8)
    assert (sample.labels == IGNORE_INDEX).sum() == len(
        tokenizer("a red car", add_special_tokens=False)["input_ids"]
    )


def test_cc3m_instruction_prompts_are_seeded(tmp_path, tokenizer):
    write_image(tmp_path / "a.jpg")
    write_tsv(tmp_path / "t.tsv", [f"c {i}\ta.jpg" for i in range(1001)])
    cfg = minigpt5_cfg(tmp_path, train="t.tsv")
    builder = registry.get_builder_class("cc3m")

    def prompts(seed):
        cfg.seed = seed
        records = builder(cfg, tokenizer=tokenizer).build_datasets()["train"].records
        return [
            r.source.split("###Human: ")[1].split(" c ")[0] for r in records if "instruction" in r.task_name
        ]

    assert prompts(1) == prompts(1) != prompts(2)
    assert set(prompts(1)) <= set(cc3m_tsv.GENERATION_PROMPTS)


# -- VIST ------------------------------------------------------------------------------------------


def write_vist(root, stories, mapping, split="train"):
    (root / f"{split}_cleaned.json").write_text(json.dumps(stories))
    (root / f"{split}_image_mapping.json").write_text(json.dumps(mapping))


def step(caption, image_id, index):
    return {"caption": caption, "image_id": image_id, "sequence_index": index}


def test_vist_samples_history_and_cut_stories(tmp_path, tokenizer):
    for name in ("1", "2", "3", "4"):
        write_image(tmp_path / "train_images" / f"{name}.jpg", value=int(name))
    mapping = {k: f"train_images/{k}.jpg" for k in ("1", "2", "3", "4")} | {"9": "train_images/gone.jpg"}
    stories = {
        "s1": [step("a red circle", "1", 0), step("a blue square", "2", 1), step("the circle", "3", 2)],
        "s2": [step("one", "4", 0), step("two", "404", 1), step("three", "4", 2)],  # 404 not in the mapping
        "s3": [step("gone", "9", 0)],  # image file missing
        "s4": "not a list",
    }
    write_vist(tmp_path, stories, mapping)
    dataset = build("vist", minigpt5_cfg(tmp_path, train="train_cleaned.json"), tokenizer)["train"]
    by_name = {r.task_name: r for r in dataset.records}
    assert list(by_name) == [
        "s1_0-gen",
        "s1_1-gen",
        "s1_1-multimodal",
        "s1_1-understanding",
        "s1_2-gen",
        "s1_2-multimodal",
        "s1_2-understanding",
        "s2_0-gen",
    ]
    image = {k: str(tmp_path / "train_images" / f"{k}.jpg") for k in ("1", "2", "3", "4")}
    history = f"a red circle{SLOT}a blue square{SLOT}\n"
    gen = by_name["s1_2-gen"]
    assert gen.source == vist.SYSTEM_PROMPT + f"###Human:{history} Generate an image with the scene description: " \
        "the circle ###Assistant:"  # fmt: skip
    assert (gen.target, gen.input_images, gen.output_image, gen.caption) == (
        GEN, (image["1"], image["2"]), image["3"], None,
    )  # fmt: skip
    assert by_name["s1_0-gen"].input_images == (None,)
    assert by_name["s1_0-gen"].source == vist.SYSTEM_PROMPT + (
        "###Human: Generate an image with the scene description: a red circle ###Assistant:"
    )
    multimodal = by_name["s1_2-multimodal"]
    assert (
        multimodal.source
        == vist.SYSTEM_PROMPT + f"###Human:{history} Tell me the next scene with image. ###Assistant:"
    )
    assert (multimodal.target, multimodal.output_image) == (f"the circle {VOKEN_TEXT} ###", image["3"])
    understanding = by_name["s1_2-understanding"]
    assert understanding.source == vist.SYSTEM_PROMPT + (
        f"###Human:{history} Tell me the next scene description by this image: {SLOT} ###Assistant:"
    )
    assert (understanding.target, understanding.input_images, understanding.output_image) == (
        "the circle ###", (image["1"], image["2"], image["3"]), None,
    )  # fmt: skip
    assert dict(dataset.skipped.reasons) == {
        "stories cut at image ids missing from the image mapping": 1,
        "stories cut at missing images": 1,
        "stories that are not lists of steps": 1,
    }
    sample = dataset[6]  # s1_2-understanding: 3 input images, zeros out
    assert tuple(sample.input_images.shape) == (3, 3, 16, 16) and not sample.has_output_image
    assert not sample.output_image.any()


def test_vist_test_mode_has_only_gen_samples(tmp_path, tokenizer):
    write_image(tmp_path / "val_images" / "1.jpg")
    write_vist(
        tmp_path, {"s": [step("a", "1", 0), step("b", "1", 1)]}, {"1": "val_images/1.jpg"}, split="val"
    )
    dataset = build("vist", minigpt5_cfg(tmp_path, test="val_cleaned.json"), tokenizer)["test"]
    assert [r.task_name for r in dataset.records] == ["s_0-gen", "s_1-gen"]


# -- MMDialog --------------------------------------------------------------------------------------


def turn(text, media=None):
    return {"turn": [{"__TEXT__": text}] + ([{"__MEDIA__": media}] if media is not None else [])}


def test_mmdialog_roles_history_trimming_and_cut_rules(tmp_path, tokenizer):
    folder = tmp_path / "train"
    for media in ("11", "22", "33"):
        write_image(folder / f"{media}.jpg", value=int(media))
    long_text = " ".join(["word"] * 60)
    conversations = [
        {"conversation_id": 7, "conversation": [
            turn("hi, look at my cat", "11"), turn("nice cat! here is mine", "22"), turn("so cute"),
            turn("thanks", "33"), turn("bye"), turn("see you"),
        ]},
        {"conversation_id": 8, "conversation": [turn("hi"), turn("look: photo.jpg")]},
        {"conversation_id": 9, "conversation": [turn("hi"), turn("banned", "3713630103994725971")]},
        {"conversation_id": 10, "conversation": [turn("hi"), turn("gone", "404")]},
        {"conversation_id": 11, "conversation": [turn("hi"), turn(long_text)]},
        {"conversation_id": 12, "conversation": [turn("alone")]},
        {"conversation_id": 13, "conversation": [turn("hi"), turn("   ")]},
        {"conversation_id": 14, "conversation": [turn("hi"), turn("ok"), {"turn": [{"__MEDIA__": "11"}]}]},
    ]  # fmt: skip
    lines = [json.dumps(c) for c in conversations]
    lines.insert(3, '{"conversation_id": 99, "conversation": [')  # a broken line
    (folder / "train_conversations.txt").write_text("\n".join(lines) + "\n")
    cfg = minigpt5_cfg(tmp_path, train="train/train_conversations.txt")
    dataset = build("mmdialog", cfg, tokenizer)["train"]
    records = {r.task_name: r for r in dataset.records}
    assert list(records) == [f"mmdialog7_{i}" for i in range(1, 6)] + ["mmdialog14_1"]
    image = {m: str(folder / f"{m}.jpg") for m in ("11", "22", "33")}
    system = mmdialog.SYSTEM_PROMPT
    turn0 = f"###Human: hi, look at my cat {SLOT}\n"
    turn1 = f"###Assistant: nice cat! here is mine {SLOT}\n"
    expected = {
        1: (system + turn0 + "###Assistant:", f"nice cat! here is mine {VOKEN_TEXT} ###", ("11",), "22"),
        2: (system + turn0 + turn1 + "###Human:", "so cute ###", ("11", "22"), None),
        3: (system + turn0 + turn1 + "###Human: so cute\n###Assistant:", f"thanks {VOKEN_TEXT} ###", ("11", "22"), "33"),
        # after turn 3 the oldest exchange (turns 0 and 1, two images) left the history
        4: (system + f"###Human: so cute\n###Assistant: thanks {SLOT}\n###Human:", "bye ###", ("33",), None),
        5: (system + f"###Human: so cute\n###Assistant: thanks {SLOT}\n###Human: bye\n###Assistant:", "see you ###",
            ("33",), None),
    }  # fmt: skip
    for i, (source, target, inputs, output) in expected.items():
        record = records[f"mmdialog7_{i}"]
        assert record.source == source, i
        assert record.target == target, i
        assert record.input_images == tuple(image[m] for m in inputs), i
        assert record.output_image == (image[output] if output else None), i
    assert records["mmdialog14_1"].input_images == (None,)
    assert dict(dataset.skipped.reasons) == {
        "conversations cut at texts ending in .jpg": 1,
        "conversations cut at the two banned image ids": 1,
        "conversations cut at missing images": 1,
        "conversations cut at texts over 50 tokens": 1,
        "conversations of fewer than 2 turns": 1,
        "conversations cut at empty texts": 1,
        "conversations cut at malformed turns": 1,
        "lines that are not JSON": 1,
    }
    # test mode keeps the long turn (the 50-token rule is for training only)
    tested = build("mmdialog", minigpt5_cfg(tmp_path, test="train/train_conversations.txt"), tokenizer)[
        "test"
    ]
    assert "mmdialog11_1" in {r.task_name for r in tested.records}


# -- labels, collation, image transforms ------------------------------------------------------------


def test_voken_label_mask_keeps_img0_img7_and_what_follows():
    labels = torch.tensor([-100, 5, 400, 401, 402, 403, 404, 405, 406, 407, 276, 400, 401])
    masked = voken_label_mask(labels, first_voken_id=400)
    assert masked.tolist() == [-100, 5, 400, *[-100] * 6, 407, 276, 400, 401]  # only the first [IMG0] counts


def test_collated_batch_is_a_mapping_for_the_model(tmp_path, tokenizer):
    write_image(tmp_path / "a.jpg", size=(12, 20))
    write_tsv(tmp_path / "t.tsv", ["a b c d e f g h\ta.jpg", "x\ta.jpg"])
    dataset = build("cc3m", minigpt5_cfg(tmp_path, train="t.tsv", input_size=8, output_size=12), tokenizer)[
        "train"
    ]
    batch = dataset.collater([dataset[0], dataset[2]])
    assert set(batch) >= {"input_ids", "attention_mask", "labels", "input_images", "output_image", "captions"}
    longest = batch.input_ids.shape[1]
    short = int(batch.attention_mask[1].sum())
    assert short < longest
    assert (batch.input_ids[1, short:] == tokenizer.eos_token_id).all()
    assert (batch.labels[1, short:] == IGNORE_INDEX).all() and not batch.attention_mask[1, short:].any()
    assert tuple(batch.output_image.shape) == (2, 3, 12, 12)
    assert [tuple(i.shape) for i in batch.input_images] == [(1, 3, 8, 8), (1, 3, 8, 8)]
    assert batch.captions == ["a b c d e f g h", "x"]
    moved = {k: v for k, v in batch.items()}  # what the runner's move_to_device does
    assert moved["labels"] is batch.labels


def test_a_sample_whose_image_vanished_is_replaced_by_the_next(tmp_path, tokenizer, caplog):
    write_image(tmp_path / "a.jpg")
    write_image(tmp_path / "b.jpg")
    write_tsv(tmp_path / "t.tsv", ["first\ta.jpg", "second\tb.jpg"])
    dataset = build("cc3m", minigpt5_cfg(tmp_path, train="t.tsv"), tokenizer)["train"]
    (tmp_path / "a.jpg").unlink()
    with caplog.at_level(logging.WARNING):
        sample = dataset[0]  # cc3m_0 and cc3m_0_instruction both need a.jpg
    assert sample.task_name == "cc3m_1"
    assert dict(dataset.load_failures) == {"cc3m_0": 1, "cc3m_0_instruction": 1}
    assert sum("using the next sample" in r.getMessage() for r in caplog.records) == 1


def test_expand2square_centres_on_white():
    wide = Image.new("RGB", (20, 12), (0, 0, 0))
    square = expand2square(wide)
    assert square.size == (20, 20)
    assert square.getpixel((0, 3)) == (255, 255, 255) and square.getpixel((0, 4)) == (0, 0, 0)
    assert square.getpixel((0, 15)) == (0, 0, 0) and square.getpixel((0, 16)) == (255, 255, 255)
    tall = expand2square(Image.new("RGB", (11, 20), (0, 0, 0)))
    assert (
        tall.size == (20, 20)
        and tall.getpixel((3, 0)) == (255, 255, 255)
        and tall.getpixel((4, 0)) == (0, 0, 0)
    )


def test_resize_and_center_crop_follow_torchvision_arithmetic():
    image = Image.new("RGB", (30, 20))
    resized = resize_shorter_side(image, 10)
    assert resized.size == (15, 10)  # shorter side 10, longer int(10 * 30 / 20)
    assert resize_shorter_side(Image.new("RGB", (7, 33)), 5).size == (5, 23)
    assert resize_shorter_side(image.resize((10, 14)), 10).size == (10, 14)  # already there: unchanged
    pixels = Image.fromarray(torch.arange(15).repeat(10, 1).to(torch.uint8).numpy()).convert("RGB")
    cropped = center_crop(pixels, 10)
    assert cropped.getpixel((0, 0))[0] == 2  # left = round(2.5) = 2, as torchvision's int(round(...))


def test_random_flip_uses_the_torch_rng():
    image = Image.fromarray(torch.arange(64, dtype=torch.uint8).reshape(8, 8).numpy()).convert("RGB")
    flips = Minigpt5InputImageProcessor(image_size=8, random_flip=True, normalize=False)
    plain = Minigpt5InputImageProcessor(image_size=8, normalize=False)(image)
    outcomes = set()
    for seed in range(8):
        generator = torch.Generator().manual_seed(seed)
        flipped = torch.rand(1, generator=torch.Generator().manual_seed(seed)).item() < 0.5
        out = flips(image, generator=generator)
        assert torch.equal(out, plain.flip(-1) if flipped else plain)
        outcomes.add(flipped)
    assert outcomes == {True, False}


# -- errors ----------------------------------------------------------------------------------------


def test_missing_file_and_wrong_layout_stop_the_build(tmp_path, tokenizer):
    cfg = minigpt5_cfg(tmp_path, train="nope.tsv")
    with pytest.raises(DataError, match=r"nope\.tsv.*caption<TAB>image_path"):
        build("cc3m", cfg, tokenizer)
    (tmp_path / "bad.tsv").write_text("text\tpath\nx\ty\n")
    with pytest.raises(DataError, match=r"bad\.tsv has header \['text', 'path'\]"):
        build("cc3m", minigpt5_cfg(tmp_path, train="bad.tsv"), tokenizer)
    with pytest.raises(DataError, match=r"expected a folder at .*nowhere.*DATAFOLDER"):
        build("cc3m", minigpt5_cfg(tmp_path / "nowhere", train="x.tsv"), tokenizer)
    (tmp_path / "train_cleaned.json").write_text("{}")
    with pytest.raises(DataError, match=r"train_image_mapping\.json"):
        build("vist", minigpt5_cfg(tmp_path, train="train_cleaned.json"), tokenizer)
    write_tsv(tmp_path / "none.tsv", ["x\tmissing.jpg"])
    with pytest.raises(DataError, match=r"no usable sample"):
        build("cc3m", minigpt5_cfg(tmp_path, train="none.tsv"), tokenizer)


def test_default_yaml_placeholders_are_refused(tokenizer):
    with pytest.raises(
        DataError, match=r"datasets\.vist\.build_info\.storage is still the official placeholder"
    ):
        registry.get_builder_class("vist")(tokenizer=tokenizer).build_datasets()


def test_the_tokenizer_must_be_given_and_hold_the_minigpt5_tokens(tmp_path):
    from minigpt4.models.tokenizer import LegacyLlamaTokenizer

    with pytest.raises(ConfigError, match=r"tokenizer=model\.llama_tokenizer"):
        TokenizerAdapter(None)
    plain = LegacyLlamaTokenizer.from_pretrained(str(FIXTURES / "stage1" / "tokenizer"))
    with pytest.raises(ConfigError, match=r"lacks \[IMG0\]"):
        TokenizerAdapter(plain)
