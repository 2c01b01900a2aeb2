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


def write_fake_run(folder):
    """A training run folder as `make quickstart` leaves it (config.yaml + checkpoint_best.pth), holding the
    tiny random model's trainable tensors (stage 2 over a stage-1 file)."""
    from pathlib import Path

    model, _ = tiny_minigpt5()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = folder / "checkpoint_best.pth"
    torch.save({"model": {k: v.clone() for k, v in model.official_state_dict().items()}}, checkpoint)
    cfg = OmegaConf.create({"model": OmegaConf.to_container(model.minigpt4_config)})
    cfg.model.stage1_ckpt = str(checkpoint)  # the quickstart's stage-2 config names its stage-1 run
    OmegaConf.save(cfg, folder / "config.yaml")
    return folder
