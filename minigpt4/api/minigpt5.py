"""MiniGPT-5 through the Python API: `inference_model("minigpt-5_...", image_or_None, prompt)`.

    >>> inference_model("minigpt-5_tiny_shapes", None, "Generate an image with the scene description: a red circle")
    {'prompt': '...', 'pred_text': '...', 'pred_images': [<PIL.Image.Image ...>]}

A batch of prompts is generated together (the 8-voken step is batched; the rows that produce `[IMG0]` are drawn
in one image-decoder call). Each zoo entry prompts in the format its checkpoint was trained on
(`conversation.minigpt5_chat.PROMPT_FORMATS`). Sampling uses the official defaults and a seed (default 0), so
the same call gives the same text and images.

The quickstart's tiny MiniGPT-5 is a training run folder (`config.yaml` + `checkpoint_*.pth`, stage 2):
`quickstart_minigpt5_dir()` finds it in the weights folder (`minigpt-5_tiny_shapes/`) or where `make quickstart`
writes it (`$MINIGPT4_QUICKSTART`, default `outputs/quickstart`, folder `minigpt5_stage2/`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import nn

from minigpt4.common.errors import CheckpointError, DataError
from minigpt4.common.paths import REPO_ROOT

logger = logging.getLogger(__name__)

QUICKSTART_ENV = "MINIGPT4_QUICKSTART"
QUICKSTART_RUN = "minigpt5_stage2"  # the stage-2 run `make quickstart` trains (train_configs/shapes/)
NO_QUICKSTART = (
    "the quickstart's tiny MiniGPT-5 was not found ({where}); run `make quickstart` first (it trains it on CPU), "
    "or pass --cfg-path / a zoo name with the official weights"
)


def quickstart_root() -> Path:
    root = Path(os.environ.get(QUICKSTART_ENV) or "outputs/quickstart").expanduser()
    return root if root.is_absolute() else REPO_ROOT / root


def newest_checkpoint(folder: Path) -> Path | None:
    best = folder / "checkpoint_best.pth"
    if best.is_file():
        return best
    found = sorted(folder.glob("checkpoint_*.pth"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def is_minigpt5_run(folder: Path) -> bool:
    return (folder / "config.yaml").is_file() and newest_checkpoint(folder) is not None


def quickstart_minigpt5_dir(weights_folder: Path | None = None) -> Path:
    """The tiny MiniGPT-5 run folder: the published copy when there is one, else the quickstart's own output."""
    candidates = [weights_folder] if weights_folder is not None else []
    candidates.append(quickstart_root() / QUICKSTART_RUN)
    for folder in candidates:
        if folder is not None and is_minigpt5_run(folder):
            return folder
    where = " or ".join(str(folder) for folder in candidates if folder is not None)
    raise CheckpointError(NO_QUICKSTART.format(where=f"no config.yaml + checkpoint_*.pth in {where}"))


def run_config(folder: Path, overrides: Mapping[str, Any] | None = None):
    """The `model:` config of a MiniGPT-5 training run, with its newest checkpoint laid over (stage 2: over the
    stage-1 checkpoint the config names; stage 1 (no LoRA): as the stage-1 checkpoint)."""
    checkpoint = newest_checkpoint(folder)
    if checkpoint is None or not (folder / "config.yaml").is_file():
        raise CheckpointError(NO_QUICKSTART.format(where=f"no config.yaml + checkpoint_*.pth in {folder}"))
    cfg = OmegaConf.load(folder / "config.yaml")
    model = cfg.model
    key = "stage2_ckpt" if model.get("lora") and int(model.lora.get("r", 0)) > 0 else "stage1_ckpt"
    model[key] = str(checkpoint)
    for name, value in (overrides or {}).items():
        model[name] = value
    return cfg


def build_run_model(
    folder: Path, device: torch.device, overrides: Mapping[str, Any] | None = None
) -> nn.Module:
    from minigpt4.common.registry import registry

    cfg = run_config(folder, overrides)
    model = registry.get_model_class(str(cfg.model.arch)).from_config(cfg.model)
    model.minigpt4_config = cfg.model
    model.minigpt4_preprocess = cfg.get("preprocess")
    return model.to(device).eval()


def input_processor(model: nn.Module):
    """The eval input-image processor: the model's `preprocess` config when it has one, else official 224 px
    CLIP-normalised at the size the ViT was built for."""
    from minigpt4.processors.image import Minigpt5InputImageProcessor

    cfg = getattr(model, "minigpt4_config", None) or {}
    size = int(cfg.get("image_size", 224)) if cfg else 224
    return Minigpt5InputImageProcessor(image_size=size)


class Minigpt5Inferencer:
    """Answers batches of (images or None, prompt) with text and images. prompt_format: a key of
    `PROMPT_FORMATS` (cc3m: caption alone; vist: story system prompt; mmdialog: dialogue system prompt)."""

    def __init__(self, model: nn.Module, prompt_format: str = "mmdialog", vis_processor=None) -> None:
        self.model = model.eval()
        self.prompt_format = prompt_format
        self.vis_processor = vis_processor or input_processor(model)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _pixels(self, images: Any) -> torch.Tensor | None:
        from minigpt4.api.inference import open_image

        if images is None:
            return None
        listed = list(images) if isinstance(images, (list, tuple)) else [images]
        if not listed:
            return None
        return torch.stack([self.vis_processor(open_image(image)) for image in listed]).to(self.device)

    @torch.no_grad()
    def __call__(
        self,
        images: Any,
        prompts: str | Sequence[str],
        batch_size: int = 8,
        seed: int | None = 0,
        **options: Any,
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """One prompt -> one dict; a list of prompts -> a list (same order).

        images: for one prompt None, an image or a list of images; for a list of prompts one such entry per
        prompt. options: `Minigpt5Settings` fields (guidance_scale, num_inference_steps, force_image, top_p, ...).
        """
        from minigpt4.conversation.minigpt5_chat import Minigpt5Settings, single_turn_prompt

        single = isinstance(prompts, str)
        prompt_list = [prompts] if single else list(prompts)
        image_list = [images] if single else list(images if images is not None else [None] * len(prompt_list))
        if len(image_list) != len(prompt_list):
            raise DataError(
                f"got {len(prompt_list)} prompts but {len(image_list)} image entries; give one per prompt"
            )
        settings = Minigpt5Settings().with_overrides(**options)
        generator = None if seed is None else torch.Generator(device=self.device).manual_seed(int(seed))
        results: list[dict[str, Any]] = []
        for start in range(0, len(prompt_list), batch_size):
            chunk = prompt_list[start : start + batch_size]
            pixels = [self._pixels(entry) for entry in image_list[start : start + batch_size]]
            texts = [
                single_turn_prompt(self.prompt_format, prompt, 0 if p is None else p.shape[0])
                for prompt, p in zip(chunk, pixels)
            ]
            out = self.model.generate_answers(
                pixels, texts, generator=generator, guidance_scale=settings.guidance_scale,
                num_inference_steps=settings.num_inference_steps, **settings.text_kwargs(),
            )  # fmt: skip
            for prompt, text, drawn in zip(chunk, out.texts, out.images or [[]] * len(chunk)):
                results.append({"prompt": prompt, "pred_text": text, "pred_images": list(drawn)})
        return results[0] if single else results


def is_minigpt5(model: nn.Module) -> bool:
    return hasattr(model, "render_images") and hasattr(model, "first_voken_id")
