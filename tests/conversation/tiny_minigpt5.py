"""A tiny random MiniGPT-5 (tiny_stage2 config + the tiny SD stack of assets/tiny_sd), built once per process.

The quickstart's trained tiny MiniGPT-5 is not needed: these tests check the plumbing (prompts, vokens, seeds,
images), not what a trained model draws."""

from __future__ import annotations

import functools

import torch
from omegaconf import OmegaConf

from minigpt4.common.config import model_default_path
from minigpt4.common.registry import registry
from minigpt4.processors.image import Minigpt5InputImageProcessor

FAST = {"max_new_tokens": 12, "num_inference_steps": 3}  # a few LLM and denoising steps keep tests short


@functools.cache
def tiny_minigpt5():
    """(model in eval mode on CPU, input-image processor at the tiny ViT's 112 px)."""
    cfg = OmegaConf.load(model_default_path("minigpt5", "tiny_stage2"))
    torch.manual_seed(0)
    model = registry.get_model_class("minigpt5").from_config(cfg.model).eval()
    model.minigpt4_config = cfg.model
    return model, Minigpt5InputImageProcessor(image_size=int(cfg.model.image_size))
