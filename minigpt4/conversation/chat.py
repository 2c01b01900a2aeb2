"""`Chat`: talk to a MiniGPT-4 / MiniGPT-v2 model about one or more images.

The flow and every default are the official ones (`upload_img` -> `ask` -> `encode_img` -> `answer` or
`stream_answer`, sampling always on, top-p 0.9, repetition penalty 1.05, left truncation at `max_length`).
Differences, each on purpose:
* several images per conversation: `encode_img` encodes every image not yet encoded, in order (the official
  one pops the first entry, which re-encodes an embedding once a second image is added);
* the template's `stop_strings` (e.g. "###" for Vicuna v0) stop generation as well as EOS, for any tokenizer
  (the official demo hard-codes the LLaMA ids of "###");
* `stream_answer_text` yields the cleaned answer as it grows and re-raises a generation error instead of
  leaving the consumer waiting forever;
* generation itself is the model's (`generate_from_context` / `stream_from_context`, the path every caller
  uses); `stream_answer` returns an iterator of text pieces rather than the transformers streamer object.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError
from transformers import StoppingCriteria, StoppingCriteriaList

from minigpt4.common.errors import DataError
from minigpt4.conversation.templates import IMAGE_MESSAGE, Conversation
from minigpt4.models.generation import CHAT_DECODING

logger = logging.getLogger(__name__)

ImageInput = str | Path | Image.Image | torch.Tensor


class StoppingCriteriaSub(StoppingCriteria):
    """Official criterion: stop when, for some stop sequence, **every** row's last ids equal it."""

    def __init__(self, stops: Sequence[Sequence[int] | torch.Tensor] = ()):
        super().__init__()
        self.stops = [torch.as_tensor(stop).reshape(-1) for stop in stops]

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor | None = None, **kwargs
    ) -> bool:
        """input_ids: (B, T) ids generated so far. Returns one bool for all rows, as the official one."""
        for stop in self.stops:
            if input_ids.shape[1] < len(stop):
                continue
            tail = input_ids[:, -len(stop) :]  # (B, len(stop))
            if bool(torch.all(tail == stop.to(input_ids.device))):
                return True
        return False


def clean_answer(decoded: str) -> str:
    """Official `Chat.answer` post-processing: cut at '###', keep the text after the last 'Assistant:', strip."""
    return decoded.split("###")[0].split("Assistant:")[-1].strip()


def load_image(image: ImageInput) -> Image.Image | torch.Tensor:
    """A path or PIL image becomes an RGB PIL image; a tensor passes through. Bad input raises DataError."""
    if isinstance(image, torch.Tensor):
        return image
    if isinstance(image, (str, Path)):
        try:
            with Image.open(image) as opened:
                return opened.convert("RGB")
        except FileNotFoundError as exc:
            raise DataError(f"{image}: image file not found") from exc
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise DataError(
                f"{image}: not a readable image ({exc}); use a PNG, JPEG, WebP, ... file"
            ) from exc
    if isinstance(image, Image.Image):
        try:
            return image.convert("RGB")
        except (OSError, ValueError) as exc:
            raise DataError(f"the uploaded image could not be decoded ({exc})") from exc
    raise DataError(f"expected an image path, a PIL image or a tensor, got {type(image).__name__}")


def is_image_embedding(entry: Any) -> bool:
    """Embeddings from `model.encode_img` are (1, T, D); raw images are (3, H, W) or (1, 3, H, W) tensors."""
    return isinstance(entry, torch.Tensor) and entry.dim() == 3 and entry.shape[0] == 1


class Chat:
    """Official chat driver. `img_list` holds raw images until `encode_img` turns them into (1, T, D) embeds."""

    def __init__(
        self,
        model: Any,
        vis_processor: Callable[[Image.Image], torch.Tensor],
        device: str | torch.device | None = None,
        stopping_criteria: StoppingCriteriaList | None = None,
        stop_words_ids: Sequence[Sequence[int]] | None = None,
    ):
        self.model = model
        self.vis_processor = vis_processor
        self.device = torch.device(device) if device is not None else model.device
        if stopping_criteria is None:
            # official default: token id 2 (LLaMA's EOS); the tokenizer's own EOS id when it has one
            eos = getattr(model.llama_tokenizer, "eos_token_id", None)
            stop_words_ids = stop_words_ids if stop_words_ids is not None else [[2 if eos is None else eos]]
            stopping_criteria = StoppingCriteriaList([StoppingCriteriaSub(stops=stop_words_ids)])
        self.stopping_criteria = stopping_criteria

    # --- conversation building (official) ---------------------------------------------------------------------
    def upload_img(self, image: ImageInput, conv: Conversation, img_list: list) -> str:
        """Add an image message and its raw image; `encode_img` encodes it later."""
        conv.append_message(conv.roles[0], IMAGE_MESSAGE)
        img_list.append(load_image(image))
        return "Received."

    def ask(self, text: str, conv: Conversation) -> None:
        """Append the question to a just-uploaded image message, otherwise as a new user message."""
        last = conv.messages[-1] if conv.messages else None
        if last is not None and last[0] == conv.roles[0] and last[1] is not None and last[1][-6:] == "</Img>":
            last[1] = " ".join([last[1], text])
        else:
            conv.append_message(conv.roles[0], text)

    def encode_img(self, img_list: list) -> None:
        """Replace every raw image in `img_list` (path, PIL, (3,H,W) or (1,3,H,W) tensor) by its (1, T, D) embeds."""
        for index, entry in enumerate(img_list):
            if is_image_embedding(entry):
                continue
            image = load_image(entry)
            if isinstance(image, Image.Image):
                pixels = self.vis_processor(image).unsqueeze(0)  # (1, 3, H, W)
            else:
                pixels = image.unsqueeze(0) if image.dim() == 3 else image
            pixels = pixels.to(self.device)
            with torch.inference_mode():
                image_embeds, _ = self.model.encode_img(pixels)  # (1, T, D)
            img_list[index] = image_embeds

    # --- generation -------------------------------------------------------------------------------------------
    def answer_prepare(
        self, conv: Conversation, img_list: list, max_length: int = 2000, **options: Any
    ) -> dict[str, Any]:
        """Open the assistant slot, embed the prompt and return the `generate` kwargs (official values).
        options: `DecodingOptions` fields over the official Chat defaults `CHAT_DECODING` (max_new_tokens 300,
        sampling, top_p 0.9, repetition_penalty 1.05, ...)."""
        decoding = CHAT_DECODING.with_overrides(**options)
        conv.append_message(conv.roles[1], None)
        prompt = conv.get_prompt()
        with torch.inference_mode():
            embeds = self.model.get_context_emb(prompt, img_list)  # (1, L, D)
        current_max_len = embeds.shape[1] + decoding.max_new_tokens
        if current_max_len > max_length:
            logger.warning(
                "the conversation (%d tokens + %d new) exceeds max_length %d: the model will not see the "
                "oldest context",
                embeds.shape[1],
                decoding.max_new_tokens,
                max_length,
            )
        begin = max(0, current_max_len - max_length)
        # official Chat: these go to the LLM's generate as they are (min_length included)
        generation_kwargs: dict[str, Any] = {
            "inputs_embeds": embeds[:, begin:],
            "stopping_criteria": self.stopping_criteria,
            **asdict(decoding),
            "temperature": float(decoding.temperature),
        }
        if conv.stop_strings:
            generation_kwargs["stop_strings"] = list(conv.stop_strings)
            generation_kwargs["tokenizer"] = self.model.llama_tokenizer
        return generation_kwargs

    def answer(self, conv: Conversation, img_list: list, **kwargs) -> tuple[str, Any]:
        """Generate (through the model's `generate_from_context`), clean and store the answer.
        Returns (text, new token ids as a numpy array)."""
        generation_kwargs = self.answer_prepare(conv, img_list, **kwargs)
        result = self.model.generate_from_context(**generation_kwargs)
        text = clean_answer(result.texts[0])
        conv.messages[-1][1] = text
        return text, result.token_ids[0].cpu().numpy()

    def stream_answer(self, conv: Conversation, img_list: list, **kwargs) -> Iterator[str]:
        """Official streaming: the raw text pieces as the model generates them (`model.stream_from_context`)."""
        generation_kwargs = self.answer_prepare(conv, img_list, **kwargs)
        return self.model.stream_from_context(**generation_kwargs)

    def stream_answer_text(self, conv: Conversation, img_list: list, **kwargs) -> Iterator[str]:
        """Yield the cleaned answer so far after each piece; store the final answer in `conv` at the end.

        The last value equals what `answer` returns for the same random state.
        """
        decoded = ""
        for piece in self.stream_answer(conv, img_list, **kwargs):
            decoded += piece
            yield clean_answer(decoded)
        conv.messages[-1][1] = clean_answer(decoded)
