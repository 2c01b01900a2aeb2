"""Official weight formats -> our modules, with a report of every key and typed errors instead of `strict=False`.

Formats read (all with `torch.load(weights_only=True)`, or safetensors):
* `eva_vit_g.pth`: flat ViT state dict (`cls_token`, `blocks.N...`); position table resized to the image size.
* BLIP-2 (`blip2_pretrained_flant5xxl.pth`): `{"model": {...}}`; we take `Qformer.*`, `query_tokens`, `ln_vision.*`
  and report the text-path / T5 tensors MiniGPT-4 never uses as ignored.
* MiniGPT-4 / MiniGPT-v2 (`{"model": {...}}`, trainable tensors only, buffers allowed). LoRA keys in the peft-0.2
  spelling (`...q_proj.lora_A.weight`) and the current one (`...q_proj.lora_A.default.weight`) both map.
* MiniGPT-5 Lightning `.ckpt` (`{"state_dict": {...}, "hyper_parameters": ..., "loops": ..., ...}`, trainable
  tensors only): its `state_dict` is read; `lightning_key` / `our_key` map its names to ours and back.

Every `.pth`/`.ckpt` is read with `weights_only=True`: a file that carries any pickled object other than tensors
and plain containers (a class, a callable) is refused with a CheckpointError before anything in it runs.
"""

from __future__ import annotations

import logging
import pickle
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from minigpt4.common.errors import CheckpointError

logger = logging.getLogger(__name__)

# Buffers that older transformers saved and newer ones no longer have (inv_freq became non-persistent).
ALWAYS_IGNORABLE = (re.compile(r"(^|\.)rotary_emb\.inv_freq$"),)
# Parts of the BLIP-2 Q-Former that MiniGPT-4 sets to None (text path, LM head) and BLIP-2's T5/OPT side.
BLIP2_UNUSED = (
    re.compile(r"^Qformer\.cls\."),
    re.compile(r"^Qformer\.bert\.embeddings\.(word|position)_embeddings\."),
    re.compile(r"^Qformer\.bert\.encoder\.layer\.\d+\.(intermediate|output)\."),
)
BLIP2_PREFIXES = ("Qformer.", "query_tokens", "ln_vision.")


def official_key(key: str) -> str:
    """Our state-dict key in the official (peft 0.2.0) spelling: no adapter name, no `base_layer`."""
    key = re.sub(r"\.(lora_[AB]|lora_embedding_[AB])\.default(\.|$)", r".\1\2", key)
    return key.replace(".base_layer.", ".")


class BlocksBeyond:
    """Matches ViT block keys with index >= depth (the official loader ignores e.g. a 40th EVA-CLIP block)."""

    pattern = re.compile(r"^blocks\.(\d+)\.")

    def __init__(self, depth: int) -> None:
        self.depth = depth

    def search(self, key: str) -> bool:
        match = self.pattern.search(key)
        return bool(match) and int(match.group(1)) >= self.depth


def read_state_dict(path: str | Path, what: str = "checkpoint") -> dict[str, Tensor]:
    """Tensors of a `.pth`/`.bin` (`{"model": ...}` or flat), a Lightning `.ckpt` (`{"state_dict": ...}`) or a
    `.safetensors` file, on CPU. Never unpickles anything but tensors and plain containers."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{what} file {path} does not exist; set the path in the model config")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            data: object = load_file(str(path), device="cpu")
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"cannot read {what} file {path}: refused, it holds pickled Python objects other than tensors "
            f"(torch.load weights_only=True: {str(exc).splitlines()[0][:300]}); nothing from the file was run. "
            "Re-save it as a plain state dict (or .safetensors) from a trusted environment"
        ) from exc
    except Exception as exc:
        raise CheckpointError(f"cannot read {what} file {path}: {type(exc).__name__}: {exc}") from exc
    if isinstance(data, Mapping) and isinstance(data.get("model"), Mapping):
        data = data["model"]
    elif isinstance(data, Mapping) and isinstance(data.get("state_dict"), Mapping):
        data = data["state_dict"]  # PyTorch Lightning checkpoint (MiniGPT-5)
    if not isinstance(data, Mapping) or not all(isinstance(v, Tensor) for v in data.values()):
        raise CheckpointError(
            f"{what} file {path} holds no state dict (expected tensors, or a 'model' dict of them)"
        )
    return dict(data)


# MiniGPT-5's official Lightning module: the MLLM under `model.`, the mapper parts and SD parts at its top level.
LIGHTNING_MAPPER = ("fc.", "t2i_decoder_prompt", "llm_to_t2i_mapping.")
LIGHTNING_SD = ("vae.", "unet.", "text_encoder.")


def lightning_key(key: str) -> str:
    """Our MiniGPT-5 state-dict key -> the official Lightning one (`llama_proj.weight` -> `model.llama_proj.weight`,
    `output_mapper.fc.0.weight` -> `fc.0.weight`, `image_decoder.unet.x` -> `unet.x`)."""
    if key.startswith("output_mapper."):
        return key[len("output_mapper.") :]
    if key.startswith("image_decoder."):
        return key[len("image_decoder.") :]
    return "model." + key


def our_key(key: str) -> str:
    """The inverse of `lightning_key`; a key of neither form comes back unchanged (and is then reported)."""
    if key.startswith("model."):
        return key[len("model.") :]
    if key.startswith(LIGHTNING_MAPPER):
        return "output_mapper." + key
    if key.startswith(LIGHTNING_SD):
        return "image_decoder." + key
    return key


def write_state_dict(path: str | Path, state: Mapping[str, Tensor], extra: Mapping | None = None) -> None:
    """Write `{"model": state, **extra}` with torch.save, or the flat tensors as `.safetensors`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(path))
    else:
        torch.save({"model": dict(state), **(extra or {})}, path)


def trainable_state_dict(model: nn.Module, official_names: bool = True) -> dict[str, Tensor]:
    """What the official runner saves: `state_dict()` minus parameters with requires_grad=False (buffers kept)."""
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    state = {k: v for k, v in model.state_dict().items() if k not in frozen}
    return {official_key(k) if official_names else k: v for k, v in state.items()}


@dataclass
class LoadReport:
    """What happened to every key of one file."""

    source: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{self.source}: loaded {len(self.loaded)} tensors"
        if self.ignored:
            text += f", ignored {len(self.ignored)} (e.g. {self.ignored[0]})"
        if self.missing:
            text += f", {len(self.missing)} model tensors not in the file (e.g. {self.missing[0]})"
        return text


def _examples(keys: Iterable[str], limit: int = 3) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def load_into(
    module: nn.Module,
    state: Mapping[str, Tensor],
    source: str,
    *,
    required: Iterable[str] = (),
    ignorable: Iterable[re.Pattern[str] | BlocksBeyond] = (),
    fix_hint: str = "",
) -> LoadReport:
    """Copy `state` into `module` by key, accepting both LoRA spellings.

    Raises CheckpointError when a key is neither in the module nor ignorable, when a shape differs, or when a
    key of `required` (module keys) is absent from the file. Returns a report of loaded/ignored/missing keys.
    """
    own = module.state_dict(keep_vars=True)
    by_official = {official_key(k): k for k in own}
    ignorable = tuple(ignorable) + ALWAYS_IGNORABLE
    report = LoadReport(source)
    mapped: dict[str, Tensor] = {}
    unexpected: list[str] = []
    for key, tensor in state.items():
        target = key if key in own else by_official.get(official_key(key))
        if target is None:
            if any(p.search(key) for p in ignorable):
                report.ignored.append(key)
            else:
                unexpected.append(key)
            continue
        if tuple(own[target].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"{source}: tensor {key} has shape {list(tensor.shape)} but the model expects "
                f"{list(own[target].shape)} for {target}; the file was made for another model size "
                f"(check llama_model, image_size, num_query_token and the LoRA rank){fix_hint}"
            )
        mapped[target] = tensor
    if unexpected:
        raise CheckpointError(
            f"{source}: {len(unexpected)} unexpected key(s), e.g. {_examples(unexpected)}; "
            f"they match no tensor of the model{fix_hint}"
        )
    missing_required = sorted(set(required) - set(mapped))
    if missing_required:
        raise CheckpointError(
            f"{source}: {len(missing_required)} trainable tensor(s) missing, e.g. {_examples(missing_required)}{fix_hint}"
        )
    with torch.no_grad():
        for target, tensor in mapped.items():
            param = own[target]
            if param.is_meta:
                continue
            if param.dtype in (torch.int8, torch.uint8) and tensor.dtype != param.dtype:
                raise CheckpointError(
                    f"{source}: {target} is a quantised tensor; load full-precision weights "
                    "into a model built without low_resource"
                )
            param.data.copy_(tensor.to(device=param.device, dtype=param.dtype))
    report.loaded = sorted(mapped)
    report.missing = sorted(set(own) - set(mapped))
    # DEBUG: another file may hold the "missing" tensors; the model's loader says once what came from where
    # (models/weight_sources.py) and warns about what no file filled
    logger.debug("%s", report.summary())
    return report
