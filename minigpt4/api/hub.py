"""Save a whole MiniGPT model as one shareable folder and load it back (`save_pretrained` / `from_pretrained`).

Folder layout:
    minigpt4_config.yaml                  `model:` node (arch, model_type, every option), `preprocess:`, `inference:`
    model.safetensors                     every tensor of `model.state_dict()` (ViT, Q-Former, LLM, LoRA, projection),
      or model-0000k-of-0000N.safetensors + model.safetensors.index.json when larger than one shard
    llm/                                  the LLM's config.json and tokenizer files (no weights: they are above)
Weight-path keys (`ckpt`, `vit_ckpt`, `q_former_model`) are dropped and `llama_model` points at `llm/`, so the
folder is self-contained and can be moved or shared.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from minigpt4.common.errors import CheckpointError
from minigpt4.models.checkpoint_shards import ShardWriter, TensorFile, WeightSource, parse_size
from minigpt4.models.options import resolve_path

logger = logging.getLogger(__name__)

CONFIG_NAME = "minigpt4_config.yaml"
LLM_SUBDIR = "llm"
WEIGHT_PATH_KEYS = ("ckpt", "vit_ckpt", "q_former_model")
TOKENIZER_FILES = (
    "tokenizer.model",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "generation_config.json",
)


def is_pretrained_dir(path: str | Path) -> bool:
    return (Path(path) / CONFIG_NAME).is_file()


def _as_container(cfg: Any) -> dict[str, Any]:
    if cfg is None:
        return {}
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    if isinstance(cfg, Mapping):
        return dict(cfg)
    raise CheckpointError(f"expected a config mapping, got {type(cfg).__name__}")


def model_config_of(model: nn.Module) -> dict[str, Any]:
    """The `model:` config a model was built from (attached by the API loaders as `minigpt4_config`)."""
    cfg = getattr(model, "minigpt4_config", None)
    if cfg is None:
        raise CheckpointError(
            "this model carries no config: pass config=<the model: node it was built from> to save_pretrained"
        )
    return _as_container(cfg)


def _save_llm_side_files(model: nn.Module, source_dir: Path | None, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    llm = model.llama_model
    config = getattr(llm, "config", None)
    if config is None:
        raise CheckpointError("model.llama_model has no Hugging Face config to save")
    config.save_pretrained(str(target))
    copied = False
    if source_dir is not None and source_dir.is_dir():
        for name in TOKENIZER_FILES:
            if (source_dir / name).is_file():
                shutil.copy2(source_dir / name, target / name)
                copied = copied or name.startswith("tokenizer")
    if not copied:
        tokenizer = getattr(model, "llama_tokenizer", None)
        if tokenizer is None or not hasattr(tokenizer, "save_pretrained"):
            raise CheckpointError(
                f"cannot save the tokenizer: {source_dir} has no tokenizer files and the model's tokenizer cannot save itself"
            )
        tokenizer.save_pretrained(str(target))


def _unique_storage(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses shared storage (tied weights): later duplicates become copies."""
    seen: set[int] = set()
    result = {}
    for key, tensor in state.items():
        tensor = tensor.detach().cpu()
        pointer = tensor.untyped_storage().data_ptr()
        result[key] = tensor.clone() if pointer in seen and tensor.numel() else tensor
        seen.add(pointer)
    return result


def save_pretrained(
    model: nn.Module,
    directory: str | Path,
    config: Any = None,
    preprocess: Any = None,
    inference: Mapping[str, Any] | None = None,
    max_shard_size: int | str = "2GB",
) -> Path:
    """Write `model` (all tensors) and its config to `directory`. Returns the directory.

    config: the `model:` config node it was built from (default: `model.minigpt4_config`).
    preprocess: the `preprocess:` node (vis/text processors); default: `model.minigpt4_preprocess`, if any.
    inference: defaults for the API (e.g. {"question": "..."}), stored with the config.
    """
    directory = Path(directory).expanduser()
    model_cfg = _as_container(config) if config is not None else model_config_of(model)
    if "arch" not in model_cfg:
        raise CheckpointError(
            "the model config has no `arch`; pass the merged `model:` node it was built from"
        )
    preprocess = preprocess if preprocess is not None else getattr(model, "minigpt4_preprocess", None)
    llm_source = model_cfg.get("llama_model")
    # a relative llama_model is resolved as the models resolve it (package dir first)
    llm_source_dir = resolve_path(str(llm_source)) if llm_source else None

    saved_cfg = {k: v for k, v in model_cfg.items() if k not in WEIGHT_PATH_KEYS}
    saved_cfg["llama_model"] = LLM_SUBDIR
    directory.mkdir(parents=True, exist_ok=True)
    _save_llm_side_files(model, llm_source_dir, directory / LLM_SUBDIR)

    writer = ShardWriter(directory, parse_size(max_shard_size))
    for key, tensor in _unique_storage(model.state_dict()).items():
        writer.add(key, tensor)
    shards = writer.close()

    document: dict[str, Any] = {"model": saved_cfg}
    if preprocess is not None:
        document["preprocess"] = _as_container(preprocess)
    if inference:
        document["inference"] = dict(inference)
    OmegaConf.save(OmegaConf.create(document), directory / CONFIG_NAME)
    logger.info(
        "saved %s/%s model to %s (%d shard(s))",
        saved_cfg["arch"],
        saved_cfg.get("model_type"),
        directory,
        len(shards),
    )
    return directory


def read_pretrained_config(directory: str | Path) -> DictConfig:
    """The folder's config with `model.llama_model` made absolute."""
    directory = Path(directory).expanduser()
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(
            f"{directory}: not a saved MiniGPT model folder (no {CONFIG_NAME}); save one with "
            "minigpt4.api.save_pretrained(model, folder)"
        )
    cfg = OmegaConf.load(path)
    cfg.model.llama_model = str((directory / str(cfg.model.get("llama_model", LLM_SUBDIR))).resolve())
    return cfg


def load_state_streaming(model: nn.Module, directory: Path) -> None:
    """Copy every tensor of the folder's shards into `model`, one shard at a time; all keys must match."""
    from minigpt4.models.checkpoint import load_into

    expected = set(model.state_dict())
    loaded: set[str] = set()
    for file in WeightSource.open(directory).files:
        with TensorFile(file) as opened:
            shard = {key: opened.get(key) for key in opened.names()}
        report = load_into(model, shard, f"{file}")
        loaded.update(report.loaded)
        del shard
    missing = sorted(expected - loaded)
    if missing:
        raise CheckpointError(
            f"{directory}: {len(missing)} model tensors are not in the saved weights, e.g. {missing[:3]}; "
            "the folder was saved from a different model configuration"
        )
    logger.info("weights: saved model %s -> every tensor (%d)", directory, len(loaded))


def from_pretrained(
    directory: str | Path, device: str | torch.device = "cpu", overrides: Mapping[str, Any] | None = None
) -> nn.Module:
    """Build the model from the folder's config (no weight files read) and fill it from its safetensors.

    overrides: `model:` keys to change before building (e.g. {"llama_dtype": "float32"}).
    The returned model carries `minigpt4_config` / `minigpt4_preprocess` / `minigpt4_inference`.
    """
    from minigpt4.common.registry import registry

    directory = Path(directory).expanduser()
    cfg = read_pretrained_config(directory)
    if overrides:
        cfg.model = OmegaConf.merge(cfg.model, dict(overrides))
    model_cls = registry.get_model_class(str(cfg.model.arch))
    model = model_cls.from_config(cfg.model, load_weights=False)
    load_state_streaming(model, directory)
    model.minigpt4_config = cfg.model
    model.minigpt4_preprocess = cfg.get("preprocess")
    model.minigpt4_inference = cfg.get("inference")
    return model.to(device).eval()
