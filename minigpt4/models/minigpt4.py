"""MiniGPT-4 (`minigpt4`): EVA ViT-g -> ln_vision -> [Q-Former (Vicuna v0) | 4-token concat (Llama-2)] ->
llama_proj -> frozen LLaMA."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from minigpt4.common.errors import CheckpointError
from minigpt4.common.paths import LIBRARY_ROOT, MODEL_CONFIG_ROOT
from minigpt4.common.registry import registry
from minigpt4.models import prompting
from minigpt4.models.builder_args import base_kwargs
from minigpt4.models.checkpoint import BLIP2_PREFIXES, BLIP2_UNUSED, LoadReport, load_into, read_state_dict
from minigpt4.models.minigpt_base import MiniGPTBase
from minigpt4.models.options import cfg_get, resolve_path
from minigpt4.models.qformer import QFormer, QFormerConfig
from minigpt4.models.weight_sources import WeightSources, random_init_parts

logger = logging.getLogger(__name__)


def model_type_table(arch: str) -> dict[str, str]:
    """{model_type: default YAML path relative to the package}, from configs/models/<arch>/*.yaml."""
    folder = MODEL_CONFIG_ROOT / arch
    return {p.stem: str(p.relative_to(LIBRARY_ROOT)) for p in sorted(folder.glob("*.yaml"))}


@registry.register_model("minigpt4")
class MiniGPT4(MiniGPTBase):
    PRETRAINED_MODEL_CONFIG_DICT = model_type_table("minigpt4")
    # official demo.py `conv_dict[model_type]`, plus our tiny model types; other names by their LLM family
    CONVERSATION_TEMPLATE_BY_MODEL_TYPE: ClassVar[dict[str, str]] = {
        "pretrain_vicuna0": "CONV_VISION_Vicuna0",
        "pretrain_vicuna1": "CONV_VISION_Vicuna0",
        "tiny_vicuna0": "CONV_VISION_Vicuna0",
        "pretrain_llama2": "CONV_VISION_LLama2",
        "tiny_llama2": "CONV_VISION_LLama2",
    }
    CONVERSATION_TEMPLATE_BY_NAME_PART: ClassVar[dict[str, str]] = {
        "llama2": "CONV_VISION_LLama2",
        "vicuna": "CONV_VISION_Vicuna0",
    }

    def __init__(
        self,
        *,
        has_qformer: bool = True,
        freeze_qformer: bool = True,
        qformer: QFormerConfig | None = None,
        prompt_path: str | Path | None = None,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        self.has_qformer = has_qformer
        width = self.visual_encoder.cfg.width
        if has_qformer:
            qformer = qformer or QFormerConfig(encoder_width=width)
            self.Qformer = QFormer(qformer)
            self.query_tokens = nn.Parameter(torch.zeros(1, qformer.num_query_token, qformer.hidden_size))
            if not self.query_tokens.is_meta:
                self.query_tokens.data.normal_(mean=0.0, std=0.02)
            if freeze_qformer:
                self._freeze("Qformer", self.Qformer)
                self.query_tokens.requires_grad = False
                logger.info("freeze Qformer")
            img_f_dim = qformer.hidden_size
            self.tokens_per_image = qformer.num_query_token
        else:
            img_f_dim = width * 4
            self.tokens_per_image = self.visual_encoder.cfg.num_patches // 4
        self.llama_proj = nn.Linear(img_f_dim, self.llama_model.config.hidden_size)
        if prompt_path:
            self.prompt_list = prompting.load_prompt_list(prompt_path, self.prompt_template)
            logger.info("Load %d training prompts", len(self.prompt_list))
            # the official code logs random.choice(prompt_list) here; that draw moves the RNG, so we make it too
            logger.info("Prompt Example \n%s", random.choice(self.prompt_list) if self.prompt_list else "")

    def connect(self, patches: Tensor) -> Tensor:
        """patches (B, 1+P, W) -> Q-Former query outputs (B, Q, H) (Q = num_query_token), else the base
        class's 4-token concatenation (B, P/4, 4W)."""
        if not self.has_qformer:
            return super().connect(patches)
        image_atts = torch.ones(patches.shape[:-1], dtype=torch.long, device=patches.device)
        query_tokens = self.query_tokens.expand(patches.shape[0], -1, -1)
        return self.Qformer.bert(query_tokens, patches, image_atts)  # (B, Q, H)

    @property
    def connector_is_frozen(self) -> bool:
        if not self.has_qformer:
            return True
        return not self.query_tokens.requires_grad and not any(
            p.requires_grad for p in self.Qformer.parameters()
        )

    def load_blip2_qformer(self, path: str) -> LoadReport:
        """BLIP-2 checkpoint (`{"model": ...}`): Q-Former, query_tokens and ln_vision; the rest is reported unused."""
        state = read_state_dict(resolve_path(path), what="BLIP-2 Q-Former (model.q_former_model)")
        wanted = {k: v for k, v in state.items() if k.startswith(BLIP2_PREFIXES)}
        unused = sorted(set(state) - set(wanted))
        if unused:
            logger.info(
                "BLIP-2 %s: %d tensors outside the Q-Former unused (e.g. %s)", path, len(unused), unused[0]
            )
        required = [
            k for k in self.state_dict() if k.startswith(BLIP2_PREFIXES) and not k.endswith("position_ids")
        ]
        return load_into(self, wanted, f"BLIP-2 Q-Former {path}", required=required, ignorable=BLIP2_UNUSED)

    @classmethod
    def from_config(cls, cfg: Any, load_weights: bool = True) -> MiniGPT4:
        base = base_kwargs(
            cfg, default_image_size=224, default_lora_r=0, default_max_txt_len=32, default_template=""
        )
        qformer = qformer_config(cfg, encoder_width=base["vit"].width)
        model = cls(
            has_qformer=bool(cfg_get(cfg, "has_qformer", True)),
            freeze_qformer=bool(cfg_get(cfg, "freeze_qformer", True)),
            qformer=qformer,
            prompt_path=resolve_path(cfg_get(cfg, "prompt_path", "")),
            load_weights=load_weights,
            **base,
        )
        if load_weights:
            load_pretrained_parts(model, cfg)
        return model


def qformer_config(cfg: Any, encoder_width: int) -> QFormerConfig:
    """The Q-Former sizes of a model config (BLIP-2's by default), reading the vision encoder's width."""
    return QFormerConfig(
        hidden_size=int(cfg_get(cfg, "qformer_hidden_size", 768)),
        num_hidden_layers=int(cfg_get(cfg, "qformer_num_layers", 12)),
        num_attention_heads=int(cfg_get(cfg, "qformer_num_heads", 12)),
        intermediate_size=int(cfg_get(cfg, "qformer_intermediate_size", 3072)),
        cross_attention_freq=int(cfg_get(cfg, "qformer_cross_attention_freq", 2)),
        max_position_embeddings=int(cfg_get(cfg, "qformer_max_position_embeddings", 512)),
        encoder_width=encoder_width,
        num_query_token=int(cfg_get(cfg, "num_query_token", 32)),
    )


def load_pretrained_parts(model: MiniGPTBase, cfg: Any, report: bool = True) -> WeightSources:
    """ViT weights, then (MiniGPT-4 with Q-Former) BLIP-2, then the MiniGPT checkpoint, as the official order.

    Returns which file filled which tensor; with `report`, logs it once and warns about pretrained parts no file
    filled (a caller that loads more files, as MiniGPT-5, reports after those)."""
    sources = WeightSources()
    llm_folder = getattr(model, "llm_weights_folder", "")
    if llm_folder:
        keys = [k for k in model.state_dict() if k.startswith("llama_model.")]
        sources.record(f"LLM folder {llm_folder}", keys)
    vit_ckpt = cfg_get(cfg, "vit_ckpt", "")
    if vit_ckpt:
        loaded = model.load_vit_weights(str(vit_ckpt))
        sources.record(loaded.source, loaded.loaded, prefix="visual_encoder.")
    if getattr(model, "has_qformer", False):
        q_former = str(cfg_get(cfg, "q_former_model", ""))
        if q_former.startswith(("http://", "https://")):
            raise CheckpointError(
                f"model.q_former_model is a URL ({q_former}); we never download: fetch the file once "
                "and set model.q_former_model to its local path"
            )
        if q_former:
            loaded = model.load_blip2_qformer(q_former)
            sources.record(loaded.source, loaded.loaded)
    ckpt = str(cfg_get(cfg, "ckpt", "") or "")
    if ckpt:
        loaded = model.load_checkpoint(ckpt, allow_missing=bool(cfg_get(cfg, "ckpt_allow_missing", False)))
        sources.record(loaded.source, loaded.loaded)
    if report:
        sources.report(
            model,
            complete_checkpoint=ckpt or None,
            random_by_design=random_init_parts(cfg_get(cfg, "random_init", [])),
        )
    return sources
