"""The LLM side of `init_llm`: LlamaForCausalLM from a local directory (any dtype, SDPA, optional 8/4-bit),
the slow LLaMA tokenizer with `pad_token="$$"`, and LoRA through peft the way MiniGPT-v2 sets it up.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from transformers import LlamaConfig, LlamaForCausalLM

from minigpt4.common.errors import ConfigError
from minigpt4.models.tokenizer import LegacyLlamaTokenizer, load_llama_tokenizer

logger = logging.getLogger(__name__)

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


@dataclass(frozen=True)
class LoraSettings:
    """peft LoRA on the LLM. Official values: r 64, alpha 16, dropout 0.05 on q_proj/v_proj; r=0 disables it."""

    r: int = 0
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")


@dataclass(frozen=True)
class LlmSettings:
    path: str
    dtype: str = "float16"  # official: torch_dtype=torch.float16
    low_resource: bool = False  # official: 8-bit weights through bitsandbytes
    quantization: str = "8bit"  # "8bit" or "4bit" when low_resource
    device_8bit: int = 0
    lora: LoraSettings = field(default_factory=LoraSettings)
    gradient_checkpointing: bool = False
    config_overrides: tuple[tuple[str, Any], ...] = ()  # `llm_config`: sizes of a random LLM


def parse_dtype(name: str | torch.dtype) -> torch.dtype:
    if isinstance(name, torch.dtype):
        return name
    if str(name).lower() not in DTYPES:
        raise ConfigError(f"unknown LLM dtype {name!r}; use one of float32, float16, bfloat16")
    return DTYPES[str(name).lower()]


def has_weight_files(path: Path) -> bool:
    return any((path / name).is_file() for name in WEIGHT_FILES)


def _check_llm_dir(path: Path) -> None:
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"model.llama_model={str(path)!r} is not a directory holding a HF LLaMA config.json; "
            "set model.llama_model to the local Vicuna / Llama-2-chat directory"
        )


def load_tokenizer(path: str | Path) -> LegacyLlamaTokenizer:
    path = Path(path).expanduser()
    if not (path / "tokenizer.model").is_file():
        raise ConfigError(
            f"{path} has no tokenizer.model (sentencepiece); MiniGPT-4 loads its LLaMA tokenizer from llama_model"
        )
    return load_llama_tokenizer(str(path))


def llm_config(path: Path, overrides: dict[str, Any]) -> LlamaConfig:
    """config.json of `path` with `overrides` applied; an unknown field is an error (a typo would be ignored)."""
    config = LlamaConfig.from_pretrained(str(path))
    unknown = sorted(k for k in overrides if not hasattr(config, k))
    if unknown:
        # OmegaConf reads `{a:1}` (no space after the colon) as the single key 'a:1'
        hint = (
            " (on the command line write {key: value}, with a space after each colon)"
            if any(":" in str(k) for k in unknown)
            else ""
        )
        raise ConfigError(
            f"model.llm_config: {', '.join(map(str, unknown))} are not LlamaConfig fields "
            f"(see {path}/config.json){hint}"
        )
    values = config.to_dict()
    if "head_dim" not in overrides:
        values.pop("head_dim", None)  # derived: LlamaConfig recomputes it from the new hidden_size / heads
    return LlamaConfig(**{**values, **overrides})


def load_llm(settings: LlmSettings, load_weights: bool = True) -> nn.Module:
    """LlamaForCausalLM (or its peft wrapper when lora.r > 0), frozen except LoRA.

    With `load_weights=False`, or when the directory holds no weight file, the model is built from config.json
    with random init (tiny configs, tests, the meta-device manifest).
    """
    path = Path(settings.path).expanduser()
    _check_llm_dir(path)
    dtype = parse_dtype(settings.dtype)
    if settings.config_overrides and has_weight_files(path):
        raise ConfigError(
            f"model.llm_config resizes a randomly initialised LLM, but {path} holds weights "
            f"({', '.join(k for k, _ in settings.config_overrides)} would not match them): drop llm_config"
        )
    if load_weights and has_weight_files(path):
        kwargs: dict = {"dtype": dtype, "attn_implementation": "sdpa"}
        if settings.low_resource:
            kwargs["quantization_config"] = _quantization_config(settings.quantization)
            if torch.cuda.is_available():
                kwargs["device_map"] = {"": settings.device_8bit}
        model = LlamaForCausalLM.from_pretrained(str(path), **kwargs)
    else:
        if settings.low_resource and load_weights:
            raise ConfigError(
                f"low_resource (8/4-bit) needs LLM weights, but {path} holds none of {', '.join(WEIGHT_FILES)}"
            )
        # DEBUG: model.ckpt may hold the whole LLM; the model's loader reports what no file filled
        if load_weights:
            logger.debug(
                "%s holds no LLM weights: building the LLM from config.json with random weights", path
            )
        config = llm_config(path, dict(settings.config_overrides))
        model = LlamaForCausalLM._from_config(config, dtype=dtype, attn_implementation="sdpa")
    if settings.lora.r > 0:
        model = apply_lora(model, settings.lora)
    else:
        model.requires_grad_(False)
    if settings.gradient_checkpointing:
        enable_activation_checkpointing(model)
    return model


def enable_activation_checkpointing(model: LlamaForCausalLM) -> None:
    """Non-reentrant checkpointing of every decoder layer. transformers 5.2x renamed `gradient_checkpointing_enable`
    (now a FutureWarning) to `activation_checkpointing_enable`; the old name only where the new one is missing."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def _quantization_config(kind: str):
    from transformers import BitsAndBytesConfig

    if kind == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    if kind == "4bit":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.float16)
    raise ConfigError(f"model.low_resource_quantization={kind!r}; use '8bit' or '4bit'")


class CastOutputToFloat(nn.Sequential):
    """peft 0.2.0's `lm_head` wrapper (`prepare_model_for_int8_training`): logits in fp32.

    Kept so the module tree (and `llama_model.base_model.model.lm_head.0.weight`) matches the official v2 model.
    """

    def forward(self, hidden: Tensor) -> Tensor:
        return super().forward(hidden.to(self[0].weight.dtype)).to(torch.float32)


def prepare_for_lora(model: LlamaForCausalLM) -> LlamaForCausalLM:
    """peft 0.2.0 `prepare_model_for_int8_training`, applied by the official code even without 8-bit."""
    in_8bit = bool(getattr(model, "is_loaded_in_8bit", False))
    for name, param in model.named_parameters():
        param.requires_grad = False
        if in_8bit and param.ndim == 1 and "layer_norm" in name:  # matches no LLaMA parameter, as officially
            param.data = param.data.float()
    if in_8bit:
        model.enable_input_require_grads()
        enable_activation_checkpointing(model)
    if not isinstance(model.lm_head, CastOutputToFloat):
        model.lm_head = CastOutputToFloat(model.lm_head)
    return model


def peft_lora_config(lora: LoraSettings, modules_to_save: Sequence[str] | None = None):
    """The peft LoraConfig of these settings (causal LM, no bias); modules_to_save: modules trained whole."""
    from peft import LoraConfig

    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
        modules_to_save=list(modules_to_save) if modules_to_save is not None else None,
    )


def apply_lora(model: LlamaForCausalLM, lora: LoraSettings) -> nn.Module:
    from peft import get_peft_model

    model = prepare_for_lora(model)
    peft_model = get_peft_model(model, peft_lora_config(lora))
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in peft_model.parameters())
    logger.info("LoRA: trainable params %d of %d (%.4f%%)", trainable, total, 100 * trainable / max(total, 1))
    return peft_model


def input_embeddings(llm: nn.Module) -> nn.Embedding:
    """`embed_tokens` of a plain or peft-wrapped LlamaForCausalLM."""
    return llm.get_input_embeddings()
