import numpy as np
import pytest
import torch
from PIL import Image

from minigpt4.common.registry import registry
from minigpt4.processors import build_processor
from minigpt4.processors.image import (
    CLIP_MEAN,
    CLIP_STD,
    Blip2ImageEvalProcessor,
    Blip2ImageTrainProcessor,
    random_resized_crop_box,
)
from minigpt4.tools.parity.families import image_processor


def test_parity_image_processor_passes(parity_dir):
    report = image_processor.check(parity_dir / "functions" / "image_processor")
    assert report.ok, report.line()
    assert "max |delta u8| vs official resize: 0" in report.notes


def test_processors_registered_and_shapes():
    assert registry.get_processor_class("blip2_image_eval") is Blip2ImageEvalProcessor
    processor = build_processor({"name": "blip2_image_train", "image_size": 32})
    image = Image.new("RGBA", (50, 20), (255, 0, 0, 128))
    pixels = processor(image)
    assert pixels.shape == (3, 32, 32) and pixels.dtype == torch.float32
    # a pure red image normalises to ((1, 0, 0) - mean) / std everywhere
    expected = (torch.tensor([1.0, 0.0, 0.0]) - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    assert torch.allclose(pixels[:, 5, 5], expected, atol=1e-6)


def test_train_default_is_deterministic_square_resize():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8))
    train = Blip2ImageTrainProcessor.from_config({"image_size": 24})
    assert torch.equal(train(image), Blip2ImageEvalProcessor.from_config({"image_size": 24})(image))


def test_random_resized_crop_option_is_random_and_seeded():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    train = Blip2ImageTrainProcessor.from_config({"image_size": 16, "random_resized_crop": True})
    torch.manual_seed(3)
    first = train(image)
    torch.manual_seed(3)
    assert torch.equal(first, train(image))
    assert not torch.equal(first, train(image))


@pytest.mark.parametrize("size", [(100, 100), (300, 40), (40, 300)])
def test_random_resized_crop_box_respects_scale(size):
    width, height = size
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        top, left, crop_h, crop_w = random_resized_crop_box(width, height, (0.5, 1.0), generator=generator)
        assert top >= 0 and left >= 0 and top + crop_h <= height and left + crop_w <= width
        if (width, height) == (100, 100):  # square input: the draw never falls back
            assert 0.45 * width * height <= crop_h * crop_w <= 1.02 * width * height
