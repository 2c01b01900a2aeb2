"""LAVIS-style loaders on tiny official-format weights."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from minigpt4.api.loaders import load_model, load_model_and_preprocess, load_preprocess
from minigpt4.api.locate import WeightsNotFoundError
from minigpt4.common.errors import ConfigError

from .conftest import MODELS, TINY_ENTRIES, fixture_weights


def lavis_overrides(variant: str) -> dict:
    """`model:` keys for load_model(arch, model_type, ...): sizes plus the fixture's weight paths."""
    entry = TINY_ENTRIES[variant]
    return {
        **entry.overrides,
        **{spec.config_key: str(MODELS / variant / spec.filename) for spec in entry.weights},
    }


def test_load_model_by_arch_and_type_lavis_style():
    model = load_model(
        "minigpt4", "pretrain_llama2", is_eval=True, device="cpu", **lavis_overrides("minigpt4_llama2")
    )
    assert not model.training
    expected = torch.load(MODELS / "minigpt4_llama2" / "minigpt_ckpt.pth", weights_only=True)["model"]
    assert torch.equal(model.llama_proj.weight, expected["llama_proj.weight"])  # the ckpt was loaded
    assert model.llama_proj.weight.dtype == torch.float32  # fp32 on CPU, as LAVIS' model.float()


def test_load_model_and_preprocess_returns_eval_processor_of_the_model_size():
    model, vis, txt = load_model_and_preprocess(
        "test-tiny-vicuna0", is_eval=True, device="cpu", weights=fixture_weights("minigpt4_vicuna0")
    )
    pixels = vis["eval"](Image.new("RGB", (100, 60), "red"))
    assert pixels.shape == (3, 42, 42)  # image_size of the tiny entry, not the 224 default
    assert set(vis) == {"train", "eval"} and txt["eval"]("A Red  Square!") == "a red square"
    embeds, atts = model.encode_img(pixels[None])
    assert embeds.shape == (1, 8, 64) and atts.shape == (1, 8)  # 8 queries -> LLM hidden 64


def test_load_preprocess_from_a_plain_dict():
    vis, txt = load_preprocess({"vis_processor": {"eval": {"name": "blip2_image_eval", "image_size": 28}}})
    assert vis["eval"](Image.new("RGB", (50, 50))).shape == (3, 28, 28)
    assert (
        vis["train"]("unchanged") == "unchanged" and txt["eval"]("x") == "x"
    )  # identity where not configured


def test_placeholder_weight_paths_raise_with_instructions():
    with pytest.raises(WeightsNotFoundError, match=r"model\.llama_model is not set"):
        load_model("minigpt4", "pretrain_vicuna0")


def test_zoo_name_with_a_model_type_is_an_error():
    with pytest.raises(ConfigError, match="zoo name"):
        load_model("minigpt-4_vicuna-7b_caption", "pretrain_vicuna0")
    with pytest.raises(ConfigError, match="give a model_type"):
        load_model("minigpt4")


def test_zoo_name_without_weights_names_the_missing_file():
    with pytest.raises(WeightsNotFoundError, match=r"prerained_minigpt4_7b\.pth|vicuna-7b"):
        load_model("minigpt-4_vicuna-7b_caption")


def test_move_to_device_leaves_a_quantized_llm_in_place():
    from torch import nn

    from minigpt4.api.loaders import move_to_device

    class Quantized(nn.Module):
        is_loaded_in_8bit = True

        def to(self, *args, **kwargs):
            raise ValueError("`.to` is not supported for 8-bit models")

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.llama_model = Quantized()
            self.llama_proj = nn.Linear(2, 2)
            self.query_tokens = nn.Parameter(torch.zeros(1, 2))

    model = move_to_device(Tiny(), torch.device("meta"))
    assert model.llama_proj.weight.is_meta and model.query_tokens.is_meta
