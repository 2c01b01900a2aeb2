"""MiniGPT-5 options read from the model config: stage-2 LoRA, loss weights, the output mapper's sizes and the
image decoder (Stable Diffusion 2.1-base officially). `minigpt5.py` assembles the model from them."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from torch import nn

from minigpt4.common.errors import ConfigError
from minigpt4.models.image_decoder import ImageDecoder, StableDiffusionDecoder
from minigpt4.models.llm import LlmSettings, LoraSettings, parse_dtype, peft_lora_config
from minigpt4.models.options import as_str_tuple, cfg_get, resolve_path
from minigpt4.models.output_mapper import OutputMapperConfig

IMAGE_DECODERS = {"stable_diffusion": StableDiffusionDecoder}


@dataclass(frozen=True)
class LossSettings:
    """Official: loss = 0.01 text + 1.0 image (+ 0.1 caption when every sample has a caption); Min-SNR gamma 5;
    the voken states of a sample are zeroed with probability 0.1 (classifier-free guidance)."""

    text_weight: float = 0.01
    image_weight: float = 1.0
    caption_weight: float = 0.1
    snr_gamma: float | None = 5.0
    cfg_drop_prob: float = 0.1


@dataclass(frozen=True)
class Minigpt5Lora(LoraSettings):
    """Stage-2 LoRA (official r 8, alpha 16, q/v, dropout 0.05, embed/lm_head saved whole). r=0: no LoRA."""

    modules_to_save: tuple[str, ...] = ("lm_head", "embed_tokens")


def without_lora(llm: LlmSettings) -> LlmSettings:
    """MiniGPT-5 adds its LoRA after growing the vocabulary, so the LLM is built without one."""
    return replace(llm, lora=LoraSettings(r=0))


def apply_minigpt5_lora(llm: nn.Module, lora: Minigpt5Lora) -> nn.Module:
    """Official stage 2: peft LoRA on q/v with embed_tokens and lm_head saved whole (their copies trainable)."""
    from peft import get_peft_model

    model = get_peft_model(llm, peft_lora_config(lora, lora.modules_to_save))
    for param in model.parameters():  # official: LoRA and the saved copies in fp32
        if param.requires_grad:
            param.data = param.data.float()
    return model


def build_image_decoder(cfg: Any, load_weights: bool) -> ImageDecoder | None:
    path = resolve_path(cfg_get(cfg, "sd_model", ""))
    if path is None:
        return None
    kind = str(cfg_get(cfg, "image_decoder", "stable_diffusion"))
    if kind not in IMAGE_DECODERS:
        raise ConfigError(f"model.image_decoder={kind!r}; known: {', '.join(sorted(IMAGE_DECODERS))}")
    return IMAGE_DECODERS[kind](path, parse_dtype(str(cfg_get(cfg, "sd_dtype", "float32"))), load_weights)


def mapper_config(cfg: Any, decoder: ImageDecoder | None) -> OutputMapperConfig:
    llm_width = _llm_hidden_size(cfg)
    width = cfg_get(cfg, "mapper_width", None)
    if width is None:
        width = decoder.conditioning_width if decoder is not None else 1024
    return OutputMapperConfig(
        llm_width=llm_width,
        width=int(width),
        num_queries=int(cfg_get(cfg, "mapper_num_queries", 77)),
        num_encoder_layers=int(cfg_get(cfg, "mapper_encoder_layers", 4)),
        num_decoder_layers=int(cfg_get(cfg, "mapper_decoder_layers", 4)),
        feedforward=int(cfg_get(cfg, "mapper_feedforward", 4096)),
        num_heads=int(cfg_get(cfg, "mapper_num_heads", 8)),
        dropout=float(cfg_get(cfg, "mapper_dropout", 0.0)),
        layer_norm_eps=float(cfg_get(cfg, "mapper_layer_norm_eps", 1e-5)),
        activation=str(cfg_get(cfg, "mapper_activation", "relu")),
    )


def _llm_hidden_size(cfg: Any) -> int:
    overrides = dict(cfg_get(cfg, "llm_config", {}))
    if "hidden_size" in overrides:
        return int(overrides["hidden_size"])
    path = resolve_path(cfg_get(cfg, "llama_model", ""))
    config = (path / "config.json") if path is not None else None
    if config is None or not config.is_file():
        raise ConfigError(
            f"model.llama_model={str(path)!r} has no config.json; set it to the Vicuna-7B v0 folder"
        )
    return int(json.loads(config.read_text())["hidden_size"])


def lora_settings(cfg: Any) -> Minigpt5Lora:
    lora = cfg_get(cfg, "lora", None)
    if not lora:
        return Minigpt5Lora(r=0)
    return Minigpt5Lora(
        r=int(cfg_get(lora, "r", 8)),
        alpha=int(cfg_get(lora, "alpha", 16)),
        dropout=float(cfg_get(lora, "dropout", 0.05)),
        target_modules=as_str_tuple(
            cfg_get(lora, "target_modules", ["q_proj", "v_proj"]), "lora.target_modules"
        ),
        modules_to_save=as_str_tuple(
            cfg_get(lora, "modules_to_save", ["lm_head", "embed_tokens"]), "lora.modules_to_save"
        ),
    )


def loss_settings(cfg: Any) -> LossSettings:
    gamma = cfg_get(cfg, "snr_gamma", 5.0)
    return LossSettings(
        text_weight=float(cfg_get(cfg, "text_loss_weight", 0.01)),
        image_weight=float(cfg_get(cfg, "image_loss_weight", 1.0)),
        caption_weight=float(cfg_get(cfg, "caption_loss_weight", 0.1)),
        snr_gamma=float(gamma) if gamma else None,
        cfg_drop_prob=float(cfg_get(cfg, "cfg_drop_prob", 0.1)),
    )
