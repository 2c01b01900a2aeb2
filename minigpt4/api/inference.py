"""One-line and batched inference, in the style of mmpretrain's `inference_model`.

    >>> from minigpt4 import inference_model
    >>> inference_model("minigpt-4_vicuna-7b_caption", "cat.png")
    {'pred_caption': '...'}
    >>> inference_model("minigpt-v2_llama2-7b", "cat.png", question="[refer] the cat")
    {'question': '[refer] the cat', 'pred_answer': '{<12><20><61><88>}', 'pred_boxes': [[...]], 'pred_phrases': [None]}

Prompts are built as the official evaluation does (`prepare_texts` with the model's conversation template),
and generation is greedy by default, so answers are deterministic. A batch is encoded and generated together
on the device (left-padded, as the official batched `generate`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from minigpt4.common.errors import DataError

logger = logging.getLogger(__name__)

ImageInput = str | Path | Image.Image
DEFAULT_GENERATION = {"max_new_tokens": 300, "num_beams": 1, "do_sample": False, "temperature": 1.0}


def open_image(image: ImageInput) -> Image.Image:
    """A path or a PIL image -> an RGB PIL image (so both give identical pixels)."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, (str, Path)):
        path = Path(image).expanduser()
        if not path.is_file():
            raise DataError(f"{path}: image file not found")
        try:
            with Image.open(path) as opened:
                return opened.convert("RGB")
        except OSError as exc:
            raise DataError(f"{path}: not a readable image ({exc})") from exc
    raise DataError(f"expected an image path or a PIL image, got {type(image).__name__}")


class MiniGPTInferencer:
    """Holds a model, its eval image processor and its chat template; answers batches of (image, question).

    default_question: the instruction used when a question is None (captioning).
    """

    def __init__(self, model: nn.Module, vis_processor: Any = None, default_question: str | None = None,
                 arch: str | None = None, model_type: str | None = None) -> None:  # fmt: skip
        from minigpt4.conversation.templates import template_for

        cfg = getattr(model, "minigpt4_config", None) or {}
        self.model = model.eval()
        self.arch = arch or str(cfg.get("arch", "minigpt4"))
        self.model_type = model_type or str(cfg.get("model_type", ""))
        self.template = template_for(self.arch, self.model_type)
        self.answers_with_boxes = bool(
            getattr(model, "ANSWERS_WITH_BOXES", False)
        )  # a fact of the model class
        self.vis_processor = vis_processor or self._eval_processor(model)
        entry = getattr(model, "minigpt4_zoo_entry", None)
        saved = getattr(model, "minigpt4_inference", None) or {}
        self.default_question = (
            default_question or saved.get("question") or (entry.default_question if entry else None)
            or "Describe this image in detail."
        )  # fmt: skip

    @staticmethod
    def _eval_processor(model: nn.Module) -> Any:
        from minigpt4.api.loaders import load_preprocess

        preprocess = getattr(model, "minigpt4_preprocess", None)
        if preprocess is None:
            raise DataError(
                "the model carries no `preprocess` config: pass vis_processor= to MiniGPTInferencer"
            )
        return load_preprocess(preprocess)[0]["eval"]

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def prompts(self, questions: Sequence[str]) -> list[str]:
        from minigpt4.conversation.templates import prepare_texts

        return prepare_texts(list(questions), self.template)

    def _result(self, answer: str, question: str | None, image: Image.Image) -> dict[str, Any]:
        from minigpt4.conversation.grounding_boxes import parse_boxes

        if question is None:
            result: dict[str, Any] = {"pred_caption": answer}
        else:
            result = {"question": question, "pred_answer": answer}
        if self.answers_with_boxes:
            boxes = parse_boxes(answer, *image.size)
            if boxes:
                result["pred_boxes"] = [list(box.xyxy) for box in boxes]
                result["pred_phrases"] = [box.phrase for box in boxes]
        return result

    @torch.no_grad()
    def __call__(
        self,
        images: ImageInput | Sequence[ImageInput],
        questions: str | Sequence[str | None] | None = None,
        batch_size: int = 8,
        **generation: Any,
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """One image -> one dict; a list of images -> a list of dicts (same order).

        questions: None (caption with the default instruction), one string for every image, or one per image.
        generation: `generate` options (max_new_tokens, num_beams, do_sample, temperature, ...).
        """
        single = not isinstance(images, (list, tuple))
        image_list = [images] if single else list(images)
        if isinstance(questions, str) or questions is None:
            question_list: list[str | None] = [questions] * len(image_list)
        else:
            question_list = list(questions)
        if len(question_list) != len(image_list):
            raise DataError(
                f"got {len(image_list)} images but {len(question_list)} questions; give one per image"
            )
        if batch_size < 1:
            raise DataError(f"batch_size must be >= 1, got {batch_size}")
        options = {**DEFAULT_GENERATION, **generation}
        stop_strings = list(self.template.stop_strings)  # Vicuna v0: "###" ends an answer, as in Chat.answer
        if stop_strings:
            tokenizer = self.model.llama_tokenizer
            stop_ids = [tokenizer(text, add_special_tokens=False).input_ids for text in stop_strings]
            options.setdefault("stop_words_ids", stop_ids)
        results: list[dict[str, Any]] = []
        for start in range(0, len(image_list), batch_size):
            pil_images = [open_image(image) for image in image_list[start : start + batch_size]]
            asked = question_list[start : start + batch_size]
            pixels = torch.stack([self.vis_processor(image) for image in pil_images]).to(
                self.device
            )  # (B, 3, H, W)
            texts = self.prompts([q if q is not None else self.default_question for q in asked])
            answers = self.model.generate_answers(pixels, texts, **options).texts
            for stop in stop_strings:
                answers = [answer.split(stop)[0].strip() for answer in answers]
            results.extend(self._result(a, q, im) for a, q, im in zip(answers, asked, pil_images))
        return results[0] if single else results


_CACHE: dict[tuple, MiniGPTInferencer] = {}


def clear_cache() -> None:
    """Forget the model kept by `inference_model` between calls."""
    _CACHE.clear()


def _cache_key(name: str, weights: Mapping | None, device: Any, overrides: Mapping | None) -> tuple:
    def frozen(mapping: Mapping | None) -> tuple:
        return tuple(sorted((str(k), str(v)) for k, v in (mapping or {}).items()))

    return (name, frozen(weights), str(device), frozen(overrides))


def get_inferencer(
    model: str | nn.Module,
    weights: Mapping[str, str | Path] | None = None,
    device: str | torch.device | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> MiniGPTInferencer:
    """An inferencer for a zoo name, a saved model folder, or a built model. The last named one is cached."""
    if isinstance(model, nn.Module):
        return MiniGPTInferencer(model)
    from minigpt4.api.hub import is_pretrained_dir
    from minigpt4.api.loaders import load_saved_folder, load_zoo_model

    key = _cache_key(str(model), weights, device, overrides)
    if key not in _CACHE:
        _CACHE.clear()  # keep at most one model in memory
        if Path(str(model)).expanduser().is_dir() and is_pretrained_dir(Path(str(model)).expanduser()):
            built = load_saved_folder(model, device, overrides)
        else:
            built = load_zoo_model(str(model), weights, device, overrides)
        _CACHE[key] = MiniGPTInferencer(built)
    return _CACHE[key]


def inference_model(
    model: str | nn.Module,
    images: ImageInput | Sequence[ImageInput],
    question: str | Sequence[str | None] | None = None,
    *,
    weights: Mapping[str, str | Path] | None = None,
    device: str | torch.device | None = None,
    batch_size: int = 8,
    overrides: Mapping[str, Any] | None = None,
    **generation: Any,
) -> dict[str, Any] | list[dict[str, Any]]:
    """Answer for one image (dict) or a list of images (list of dicts, generated in batches on the device).

    model: a zoo name (see `list_models()`), a saved model folder, or a built model.
    question: None -> {"pred_caption"}; a question -> {"question", "pred_answer"} (MiniGPT-v2 adds
        "pred_boxes" in pixels of the input image and "pred_phrases" when the answer holds boxes).
    weights: where weights are ({weight id or config key: path}); see `minigpt4.api.locate`.
    """
    inferencer = get_inferencer(model, weights, device, overrides)
    return inferencer(images, question, batch_size=batch_size, **generation)
