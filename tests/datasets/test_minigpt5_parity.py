"""The MiniGPT-5 builders reproduce the official dataloader + collator batches of the parity fixtures
(tests/fixtures/parity/minigpt5/{stage1,stage2}): sources, targets, captions and task names as strings, and
input_ids / attention_mask / labels id for id; the image transforms give the fixture's preprocessed tensors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from minigpt5_helpers import FIXTURES, fixture_json, fixture_tokenizer, minigpt5_cfg
from PIL import Image
from safetensors.torch import load_file

from minigpt4.common.registry import registry
from minigpt4.datasets.formats import vist
from minigpt4.processors.image import CLIP_MEAN, CLIP_STD


def fixture_inputs(stage: str) -> dict[str, torch.Tensor]:
    return load_file(str(FIXTURES / stage / "inputs.safetensors"))


def save_output_image(tensor: torch.Tensor, path) -> None:
    """A [-1, 1] (3, S, S) fixture tensor back to the uint8 file it was made from."""
    pixels = ((tensor * 0.5 + 0.5) * 255).round().clamp(0, 255).to(torch.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.permute(1, 2, 0).numpy()).save(path)


def save_input_image(tensor: torch.Tensor, path) -> None:
    """A CLIP-normalised (3, S, S) fixture tensor back to its uint8 file."""
    mean, std = torch.tensor(CLIP_MEAN).view(3, 1, 1), torch.tensor(CLIP_STD).view(3, 1, 1)
    pixels = ((tensor * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.permute(1, 2, 0).numpy()).save(path)


def assert_same_batch(batch, inputs: dict[str, torch.Tensor], meta: dict) -> None:
    assert batch.sources == meta["batch_source"]
    assert batch.targets == meta["batch_target"]
    assert batch.captions == meta["batch_caption"]
    assert batch.task_names == meta["task_name"]
    for key in ("input_ids", "attention_mask", "labels"):
        assert batch[key].dtype == torch.long
        assert torch.equal(batch[key], inputs[key]), key


def test_cc3m_builder_gives_the_official_stage1_batch(tmp_path):
    inputs, meta = fixture_inputs("stage1"), fixture_json("stage1", "inputs.json")
    size = int(inputs["output_image"].shape[-1])
    # row 0 (an instruction row: 0 % 100 == 0) is the fixture's second sample, row 1 its first
    save_output_image(inputs["output_image"][1], tmp_path / "val" / "000000000.png")
    save_output_image(inputs["output_image"][0], tmp_path / "val" / "000000001.png")
    (tmp_path / "cc3m_val.tsv").write_text(
        "caption\timage_path\nA blue car near the house.\tval/000000000.png\n"
        "A red cat (sitting) on the grass!\tval/000000001.png\n"
    )
    builder = registry.get_builder_class("cc3m")(
        minigpt5_cfg(tmp_path, train="cc3m_val.tsv", input_size=size, output_size=size),
        tokenizer=fixture_tokenizer("stage1"),
        choose=lambda options: options[0],  # the fixture's instruction used "generate image with caption:"
    )
    dataset = builder.build_datasets()["train"]
    assert [r.task_name for r in dataset.records] == ["cc3m_0", "cc3m_0_instruction", "cc3m_1"]
    batch = dataset.collater([dataset[2], dataset[1]])
    assert_same_batch(batch, inputs, meta)
    assert torch.allclose(batch.output_image, inputs["output_image"], atol=1e-6, rtol=0)
    for b in range(2):  # no input image: the processed black image
        assert torch.allclose(batch.input_images[b], inputs[f"input_images.{b}"], atol=1e-6, rtol=0)
    assert batch.has_output_image.tolist() == [True, True]


def test_vist_builder_gives_the_official_stage2_batch(tmp_path):
    inputs, meta = fixture_inputs("stage2"), fixture_json("stage2", "inputs.json")
    size = int(inputs["output_image"].shape[-1])
    save_input_image(inputs["input_images.0"][0], tmp_path / "val_images" / "000000011.png")
    save_output_image(inputs["output_image"][0], tmp_path / "val_images" / "000000012.png")
    story = [
        {"caption": "a man walks a dog on the road", "image_id": "11", "sequence_index": 0},
        {"caption": "the dog runs on the grass", "image_id": "12", "sequence_index": 1},
    ]
    (tmp_path / "val_cleaned.json").write_text(json.dumps({"story1": story}))
    mapping = {"11": "val_images/000000011.png", "12": "val_images/000000012.png"}
    (tmp_path / "val_image_mapping.json").write_text(json.dumps(mapping))
    picks = {vist.GENERATION_PROMPTS: 0, vist.MULTIMODAL_PROMPTS: 0, vist.UNDERSTANDING_PROMPTS: 1}
    builder = registry.get_builder_class("vist")(
        minigpt5_cfg(tmp_path, train="val_cleaned.json", input_size=size, output_size=size),
        tokenizer=fixture_tokenizer("stage2"),
        choose=lambda options: options[picks[tuple(options)]],
    )
    dataset = builder.build_datasets()["train"]
    names = [r.task_name for r in dataset.records]
    assert names == ["story1_0-gen", "story1_1-gen", "story1_1-multimodal", "story1_1-understanding"]
    batch = dataset.collater([dataset[1], dataset[2], dataset[3]])
    assert_same_batch(batch, inputs, meta)
    assert [tuple(images.shape) for images in batch.input_images] == [
        tuple(inputs[f"input_images.{b}"].shape) for b in range(3)
    ]
    # the -gen sample: the first step's image in, the second step's image out (the fixture's other samples
    # were given other image files, so only these are compared)
    assert torch.allclose(batch.input_images[0], inputs["input_images.0"], atol=1e-5, rtol=0)
    assert torch.allclose(batch.output_image[0], inputs["output_image"][0], atol=1e-6, rtol=0)
    assert torch.equal(batch.output_image[2], torch.zeros(3, size, size))  # -understanding: no output image
    assert batch.has_output_image.tolist() == [True, True, False]


@pytest.mark.parametrize("stage", ["stage1", "stage2"])
def test_output_transform_matches_the_fixture_tensors(tmp_path, stage):
    from minigpt4.processors.image import Minigpt5OutputImageProcessor, expand2square

    tensors = fixture_inputs(stage)["output_image"]
    processor = Minigpt5OutputImageProcessor(image_size=int(tensors.shape[-1]))
    for b, tensor in enumerate(tensors):
        if not tensor.any():
            continue  # a sample without output image (zeros, not a file)
        save_output_image(tensor, tmp_path / f"{b}.png")
        with Image.open(tmp_path / f"{b}.png") as image:
            ours = processor(expand2square(image.convert("RGB")))
        assert np.abs((ours - tensor).numpy()).max() <= 1e-6
