"""MiniGPT-v2 (`minigpt_v2`): 448 px EVA ViT-g -> ln_vision (identity-affine, never loaded) -> 4-token concat ->
llama_proj -> Llama-2-chat with LoRA (peft) on q_proj/v_proj."""

from __future__ import annotations

import logging
from typing import Any

from torch import nn

from minigpt4.common.registry import registry
from minigpt4.models.builder_args import base_kwargs
from minigpt4.models.minigpt4 import load_pretrained_parts, model_type_table
from minigpt4.models.minigpt_base import MiniGPTBase
from minigpt4.models.options import cfg_get

logger = logging.getLogger(__name__)


@registry.register_model("minigpt_v2")
class MiniGPTv2(MiniGPTBase):
    PRETRAINED_MODEL_CONFIG_DICT = model_type_table("minigpt_v2")
    CONVERSATION_TEMPLATE = "CONV_VISION_minigptv2"  # every model type (official demo_v2 and eval)
    ANSWERS_WITH_BOXES = True  # `{<x1><y1><x2><y2>}` grounding answers

    def __init__(self, *, chat_template: bool = False, **base: Any) -> None:
        super().__init__(**base)
        self.tokens_per_image = self.visual_encoder.cfg.num_patches // 4
        self.llama_proj = nn.Linear(self.visual_encoder.cfg.width * 4, self.llama_model.config.hidden_size)
        self.chat_template = chat_template

    @classmethod
    def from_config(cls, cfg: Any, load_weights: bool = True) -> MiniGPTv2:
        base = base_kwargs(
            cfg,
            default_image_size=448,
            default_lora_r=64,
            default_max_txt_len=300,
            default_template="[INST] {} [/INST]",
        )
        model = cls(
            chat_template=bool(cfg_get(cfg, "chat_template", False)), load_weights=load_weights, **base
        )
        if load_weights:
            load_pretrained_parts(model, cfg)
        return model
