"""Official config keys -> constructor arguments shared by both model classes (see `options.py` for our keys)."""

from __future__ import annotations

from typing import Any

from minigpt4.models.eva_vit import EvaVitConfig
from minigpt4.models.llm import LlmSettings, LoraSettings
from minigpt4.models.options import as_str_tuple, cfg_get, check_vit_model, resolve_path


def vit_config(cfg: Any, default_image_size: int) -> EvaVitConfig:
    check_vit_model(str(cfg_get(cfg, "vit_model", "eva_clip_g")))
    return EvaVitConfig(
        image_size=int(cfg_get(cfg, "image_size", default_image_size)),
        patch_size=int(cfg_get(cfg, "vit_patch_size", 14)),
        width=int(cfg_get(cfg, "vit_width", 1408)),
        depth=int(cfg_get(cfg, "vit_depth", 39)),
        num_heads=int(cfg_get(cfg, "vit_num_heads", 16)),
        mlp_ratio=float(cfg_get(cfg, "vit_mlp_ratio", 4.3637)),
        drop_path_rate=float(cfg_get(cfg, "drop_path_rate", 0)),
        use_grad_checkpoint=bool(cfg_get(cfg, "use_grad_checkpoint", False)),
    )


def llm_settings(cfg: Any, default_lora_r: int) -> LlmSettings:
    llama_model = cfg_get(cfg, "llama_model", "")
    path = resolve_path(llama_model)
    return LlmSettings(
        path=str(path) if path is not None else "",
        dtype=str(cfg_get(cfg, "llama_dtype", "float16")),
        low_resource=bool(cfg_get(cfg, "low_resource", False)),
        quantization=str(cfg_get(cfg, "low_resource_quantization", "8bit")),
        device_8bit=int(cfg_get(cfg, "device_8bit", 0)),
        lora=LoraSettings(
            r=int(cfg_get(cfg, "lora_r", default_lora_r)),
            alpha=int(cfg_get(cfg, "lora_alpha", 16)),
            dropout=float(cfg_get(cfg, "lora_dropout", 0.05)),
            target_modules=as_str_tuple(
                cfg_get(cfg, "lora_target_modules", ["q_proj", "v_proj"]), "lora_target_modules"
            ),
        ),
        gradient_checkpointing=bool(cfg_get(cfg, "use_grad_checkpoint_llm", False)),
        config_overrides=tuple(sorted(dict(cfg_get(cfg, "llm_config", {})).items())),
    )


def base_kwargs(cfg: Any, *, default_image_size: int, default_lora_r: int, default_max_txt_len: int,
                default_template: str) -> dict[str, Any]:  # fmt: skip
    return {
        "vit": vit_config(cfg, default_image_size),
        "vit_precision": str(cfg_get(cfg, "vit_precision", "fp16")),
        "freeze_vit": bool(cfg_get(cfg, "freeze_vit", True)),
        "llm": llm_settings(cfg, default_lora_r),
        "freeze_llm": bool(cfg_get(cfg, "freeze_llm", True)),
        "max_txt_len": int(cfg_get(cfg, "max_txt_len", default_max_txt_len)),
        "max_context_len": int(cfg_get(cfg, "max_context_len", 3800)),
        "prompt_template": str(cfg_get(cfg, "prompt_template", default_template)),
        "end_sym": str(cfg_get(cfg, "end_sym", "\n")),
        "autocast_dtype": str(cfg_get(cfg, "autocast_dtype", "float16")),
    }
