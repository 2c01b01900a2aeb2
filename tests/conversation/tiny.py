"""Real tiny models (random weights, built from minigpt4/configs/models/<arch>/<type>.yaml) wrapped for chat tests."""

from __future__ import annotations

import functools

import torch
from omegaconf import OmegaConf

from minigpt4.cli.demo_launch import ChatSession
from minigpt4.common.config import model_default_path
from minigpt4.common.registry import registry
from minigpt4.conversation.chat import Chat
from minigpt4.conversation.templates import template_for

TINY_TYPES = [("minigpt4", "tiny_vicuna0"), ("minigpt4", "tiny_llama2"), ("minigpt_v2", "tiny")]


@functools.cache
def tiny_parts(arch: str, model_type: str):
    """(model in eval mode on CPU, eval image processor), built once per process."""
    cfg = OmegaConf.load(model_default_path(arch, model_type))
    torch.manual_seed(0)
    model = registry.get_model_class(arch).from_config(cfg.model).eval()
    vis_cfg = cfg.preprocess.vis_processor.eval
    return model, registry.get_processor_class(vis_cfg.name).from_config(vis_cfg)


def tiny_session(arch: str, model_type: str) -> ChatSession:
    model, vis_processor = tiny_parts(arch, model_type)
    chat = Chat(model, vis_processor, device="cpu")
    return ChatSession(chat, template_for(arch, model_type), torch.device("cpu"), arch, model_type)
