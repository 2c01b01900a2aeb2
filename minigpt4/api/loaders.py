"""LAVIS-style loaders: `load_model`, `load_preprocess`, `load_model_and_preprocess`.

`name` is either a zoo name (`minigpt-4_vicuna-7b_caption`: weights located for you) or a registered arch with a
`model_type` (`load_model("minigpt4", "pretrain_vicuna0", llama_model=..., ckpt=...)`, as in LAVIS). Keyword
overrides are `model:` config keys. On CPU the model is built in fp32 (LAVIS calls `model.float()` on CPU)
unless `llama_dtype` / `vit_precision` are given.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from minigpt4.api.hub import from_pretrained, is_pretrained_dir
from minigpt4.api.locate import WeightsNotFoundError, locate
from minigpt4.api.zoo import MODEL_ZOO, ZooEntry, get_entry
from minigpt4.common.errors import CheckpointError, ConfigError

logger = logging.getLogger(__name__)

PLACEHOLDER_PREFIX = "please set"
Processors = dict[str, Any]


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _device_defaults(device: torch.device, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """fp32 on CPU (fp16 matmuls are slow or missing there), the official fp16 on GPU."""
    if device.type != "cpu":
        return {}
    defaults = {"llama_dtype": "float32", "vit_precision": "fp32"}
    return {k: v for k, v in defaults.items() if k not in overrides}


def default_config(arch: str, model_type: str) -> DictConfig:
    """The model type's default YAML (`model:` and `preprocess:`), with `model_type` filled in."""
    from minigpt4.common.config import load_yaml, model_default_path

    cfg = load_yaml(model_default_path(arch, model_type))
    cfg.model.model_type = model_type
    return cfg


def _check_no_placeholders(model_cfg: DictConfig, source: str) -> None:
    for key in ("llama_model", "ckpt", "vit_ckpt", "q_former_model"):
        value = model_cfg.get(key)
        if isinstance(value, str) and value.lower().startswith(PLACEHOLDER_PREFIX):
            raise WeightsNotFoundError(
                f"{source}: model.{key} is not set ({value!r}); pass {key}=<local path> to load_model, "
                f"or load a zoo name that locates its weights for you: {', '.join(sorted(MODEL_ZOO)[:4])}, ..."
            )


def build_config(
    arch: str, model_type: str, device: torch.device, overrides: Mapping[str, Any] | None = None
) -> DictConfig:
    overrides = dict(overrides or {})
    cfg = default_config(arch, model_type)
    cfg.model = OmegaConf.merge(cfg.model, _device_defaults(device, overrides), overrides)
    if "image_size" in overrides and cfg.get("preprocess") is not None:
        # the processors must produce the size the ViT was built for
        for split in ("train", "eval"):
            node = cfg.preprocess.get("vis_processor", {}).get(split)
            if node is not None:
                node.image_size = int(overrides["image_size"])
    return cfg


def _build(cfg: DictConfig, source: str) -> nn.Module:
    from minigpt4.common.registry import registry

    _check_no_placeholders(cfg.model, source)
    model_cls = registry.get_model_class(str(cfg.model.arch))
    model = model_cls.from_config(cfg.model)
    model.minigpt4_config = cfg.model
    model.minigpt4_preprocess = cfg.get("preprocess")
    return model


def move_to_device(model: nn.Module, device: torch.device) -> nn.Module:
    """`model.to(device)`, except an 8/4-bit LLM, which bitsandbytes already placed and which cannot be moved."""
    llm = getattr(model, "llama_model", None)
    quantized = llm is not None and bool(
        getattr(llm, "is_loaded_in_8bit", False) or getattr(llm, "is_loaded_in_4bit", False)
    )
    if not quantized:
        return model.to(device)
    for name, child in model.named_children():
        if name != "llama_model":
            child.to(device)
    for name, param in list(model.named_parameters(recurse=False)):  # e.g. query_tokens
        model.register_parameter(
            name, nn.Parameter(param.detach().to(device), requires_grad=param.requires_grad)
        )
    for name, buffer in list(model.named_buffers(recurse=False)):
        model.register_buffer(
            name, buffer.to(device), persistent=name not in model._non_persistent_buffers_set
        )
    return model


def load_saved_folder(
    folder: str | Path, device: str | torch.device | None = None, overrides: Mapping[str, Any] | None = None
) -> nn.Module:
    """A `save_pretrained` folder, in fp32 on CPU unless `overrides` say otherwise."""
    device = torch.device(device) if device is not None else default_device()
    overrides = dict(overrides or {})
    return from_pretrained(folder, device, {**_device_defaults(device, overrides), **overrides})


def _load_model_folder(
    entry: ZooEntry, folder: Path, device: torch.device, overrides: Mapping[str, Any]
) -> nn.Module:
    """A saved model folder (save_pretrained) or a training run folder (config.yaml + checkpoint_*.pth)."""
    if is_pretrained_dir(folder):
        return load_saved_folder(folder, device, overrides)
    run_config = folder / "config.yaml"
    checkpoints = sorted(folder.glob("checkpoint_*.pth"), key=lambda p: p.stat().st_mtime)
    if run_config.is_file() and checkpoints:
        best = folder / "checkpoint_best.pth"
        ckpt = best if best.is_file() else checkpoints[-1]
        run = OmegaConf.load(run_config)
        cfg = build_config(str(run.model.arch), str(run.model.model_type), device, {
            **OmegaConf.to_container(run.model, resolve=True), "ckpt": str(ckpt), **overrides,
        })  # fmt: skip
        if run.get("preprocess") is not None:
            cfg.preprocess = run.preprocess
        return _build(cfg, str(run_config))
    raise CheckpointError(
        f"{folder}: for zoo model {entry.name!r} expected a saved model folder (minigpt4_config.yaml) or a "
        "training run folder (config.yaml + checkpoint_*.pth)"
    )


def load_zoo_model(
    name: str,
    weights: Mapping[str, str | Path] | None = None,
    device: str | torch.device | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> nn.Module:
    """Build a zoo model with its weights located (arguments, environment, user config, weights folder)."""
    entry = get_entry(name)
    device = torch.device(device) if device is not None else default_device()
    overrides = dict(overrides or {})
    if entry.is_saved_folder:
        (spec,) = entry.weights
        model = _load_model_folder(entry, locate(spec, weights), device, overrides)
    else:
        paths = {spec.config_key: str(locate(spec, weights)) for spec in entry.weights}
        cfg = build_config(entry.arch, entry.model_type, device, {**entry.overrides, **paths, **overrides})
        model = _build(cfg, f"zoo model {name}")
    model.minigpt4_zoo_entry = entry
    return move_to_device(model, device).eval()


def load_preprocess(config: Any) -> tuple[Processors, Processors]:
    """LAVIS `load_preprocess`: the `preprocess:` node -> ({"train", "eval"} image processors, same for text).

    A missing split gets the identity `BaseProcessor`, as in LAVIS.
    """
    from minigpt4.common.registry import registry
    from minigpt4.processors.base_processor import BaseProcessor

    config = (
        OmegaConf.create(config)
        if isinstance(config, Mapping) and not isinstance(config, DictConfig)
        else config
    )

    def build(node: Any) -> Processors:
        processors: Processors = {}
        for split in ("train", "eval"):
            settings = node.get(split) if node is not None else None
            if settings is None:
                processors[split] = BaseProcessor()
                continue
            if "name" not in settings:
                raise ConfigError(f"preprocess: the {split} processor has no `name` (e.g. blip2_image_eval)")
            processors[split] = registry.get_processor_class(str(settings.name)).from_config(settings)
        return processors

    if config is None:
        return build(None), build(None)
    return build(config.get("vis_processor")), build(config.get("text_processor"))


def load_model(
    name: str,
    model_type: str | None = None,
    is_eval: bool = False,
    device: str | torch.device = "cpu",
    checkpoint: str | Path | None = None,
    weights: Mapping[str, str | Path] | None = None,
    **overrides: Any,
) -> nn.Module:
    """LAVIS `load_model(name, model_type, is_eval, device)`.

    name: a zoo name (model_type must be None) or an arch (`minigpt4`, `minigpt_v2`) with a model_type.
    checkpoint: a MiniGPT checkpoint to load (the `ckpt` key).
    weights: weight locations for zoo names ({weight id or config key: path}).
    overrides: `model:` config keys (`llama_model=...`, `lora_r=...`).
    """
    device = torch.device(device)
    if checkpoint is not None:
        overrides["ckpt"] = str(checkpoint)
    if name in MODEL_ZOO:
        if model_type is not None:
            raise ConfigError(
                f"{name!r} is a zoo name; it has no model types (got model_type={model_type!r})"
            )
        model = load_zoo_model(name, weights, device, overrides)
    else:
        if model_type is None:
            raise ConfigError(
                f"load_model({name!r}): give a model_type (e.g. pretrain_vicuna0), or use a zoo name: "
                f"{', '.join(sorted(MODEL_ZOO))}"
            )
        model = move_to_device(
            _build(build_config(name, model_type, device, overrides), f"{name}/{model_type}"), device
        )
    if is_eval:
        model.eval()
    return model


def load_model_and_preprocess(
    name: str,
    model_type: str | None = None,
    is_eval: bool = False,
    device: str | torch.device = "cpu",
    weights: Mapping[str, str | Path] | None = None,
    **overrides: Any,
) -> tuple[nn.Module, Processors, Processors]:
    """LAVIS `load_model_and_preprocess`: (model, vis_processors, txt_processors), processors keyed train/eval."""
    model = load_model(name, model_type, is_eval, device, weights=weights, **overrides)
    vis_processors, txt_processors = load_preprocess(getattr(model, "minigpt4_preprocess", None))
    return model, vis_processors, txt_processors
