from minigpt4.common.registry import registry
from minigpt4.processors import build_processor
from minigpt4.processors.text import BlipCaptionProcessor, pre_caption
from minigpt4.tools.parity.families import text_processor


def test_parity_text_processor_passes(parity_dir):
    report = text_processor.check(parity_dir / "functions" / "text_processor.json")
    assert report.ok, report.line()
    assert report.total >= 100


def test_blip_caption_is_registered_and_built_from_config():
    assert registry.get_processor_class("blip_caption") is BlipCaptionProcessor
    processor = build_processor({"name": "blip_caption", "prompt": "a photo of ", "max_words": 3})
    assert processor("The RED circle; big!") == "a photo of the red circle"


def test_pre_caption_quirks():
    assert pre_caption("a\tb") == "a\tb"  # a single whitespace char survives
    assert pre_caption("x  \n  y") == "x y"
    assert pre_caption("e-mail@example.com") == "e-mail@example com"
    assert pre_caption(" ".join(["w"] * 60)).count("w") == 50
