"""Tiny model builders shared by the model tests."""

from __future__ import annotations

import logging

import pytest
import torch
from omegaconf import OmegaConf

from minigpt4.common.registry import registry

TINY_TYPES = {
    "vicuna0": ("minigpt4", "tiny_vicuna0"),
    "llama2": ("minigpt4", "tiny_llama2"),
    "v2": ("minigpt_v2", "tiny"),
    "m5_stage1": ("minigpt5", "tiny_stage1"),
    "m5_stage2": ("minigpt5", "tiny_stage2"),
}


def tiny_cfg(name: str, **overrides):
    arch, model_type = TINY_TYPES[name]
    cls = registry.get_model_class(arch)
    cfg = OmegaConf.load(cls.default_config_path(model_type)).model
    for key, value in overrides.items():
        cfg[key] = value
    return cls, cfg


def build_tiny(name: str, seed: int = 0, **overrides):
    cls, cfg = tiny_cfg(name, **overrides)
    torch.manual_seed(seed)
    logging.getLogger("minigpt4").setLevel(logging.ERROR)
    return cls.from_config(cfg)


@pytest.fixture(autouse=True)
def models_run_on_one_thread(single_thread):
    """Every model test runs on one torch thread (the `single_thread` fixture of tests/conftest.py)."""


@pytest.fixture
def tiny_model():
    return build_tiny


def tiny_samples(name: str, batch: int = 2, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    answers = ["a red circle", "two blue squares", "a small green triangle", "a yellow star"][:batch]
    samples = {"image": torch.randn(batch, 3, 112, 112, generator=generator), "answer": answers}
    if name == "v2":
        samples["instruction_input"] = [
            "<Img><ImageHere></Img> [caption] Briefly describe this image. "
        ] * batch
    return samples
