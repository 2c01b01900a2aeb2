"""`Minigpt5Chat`: talk with MiniGPT-5 in text and pictures (several input images, answers with 0 or 1 image).

The prompt is the official MMDialog one, the format the stage-2 model was trained on (`datasets/formats/mmdialog`):
the system prompt, then `###Human: {text} <Img><ImageHere></Img>\\n` (one slot per image of the turn) and
`###Assistant: {text}\\n` turns, and the answer is generated after `###Assistant:`. An answer's image joins the
history as the official data does (`{text} <Img><ImageHere></Img>`), so later turns can refer to it, and after each
assistant turn from the fourth one on the oldest exchange is dropped (official `trim_oldest_exchange`).

Generation is the model's (`generate_from_context` with the official `generate` defaults: sampling top-p 0.9,
temperature 1, repetition penalty 2, stop at `###`; CFG 7.5 over 50 denoising steps). `stream_answer` yields the
text as soon as the LLM is done, then the image when the image decoder is done (progress through `on_step`).
Ours, not official: a seed makes the whole answer reproducible (one `torch.Generator` drives the text sampling and
the initial latents: same seed -> same text and same image); `force_image` is the official `force_generation`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from PIL import Image

from minigpt4.conversation.chat import ImageInput, load_image
from minigpt4.conversation.templates import IMAGE_MESSAGE as IMAGE_SLOT

HUMAN, ASSISTANT = "###Human:", "###Assistant:"
# the official MMDialog system prompt (= datasets/formats/mmdialog.SYSTEM_PROMPT; the chat layer may not import
# datasets, tests/conversation/test_minigpt5_chat.py checks both agree)
SYSTEM_PROMPT = (
    "Give the following images in <Img>ImageContent</Img> format. You will be able to see the images once I "
    "provide it to you. Please generate conversations with appropriate images."
)
VIST_SYSTEM_PROMPT = (
    "Give the following images in <Img>ImageContent</Img> format. You will be able to see the images once I "
    "provide it to you. Please understanding images and generate story."
)
VIST_GENERATION = "###Human:{prompt} Generate an image with the scene description: {step_text} ###Assistant:"
OLDEST_EXCHANGE = re.compile("###Human:(.*?)###Human:", re.DOTALL)
# single-turn prompts of the Python API / evaluation per training format: {images} = one slot per input image
PROMPT_FORMATS = {
    "cc3m": "{images}{prompt}",  # stage 1: the caption alone (official CC3M test source)
    "vist": VIST_SYSTEM_PROMPT
    + VIST_GENERATION.replace("{prompt}", "{images}").replace("{step_text}", "{prompt}"),
    "mmdialog": SYSTEM_PROMPT + "###Human: {prompt}{images}\n###Assistant:",
}


def single_turn_prompt(fmt: str, prompt: str, num_images: int) -> str:
    """One request in a training format (`PROMPT_FORMATS`): the text the model generates after."""
    if fmt not in PROMPT_FORMATS:
        raise ValueError(f"unknown MiniGPT-5 prompt format {fmt!r}; known: {sorted(PROMPT_FORMATS)}")
    slots = IMAGE_SLOT * num_images
    if fmt == "mmdialog" and slots:
        slots = " " + " ".join([IMAGE_SLOT] * num_images)
    if fmt == "vist" and slots:  # official VIST history: one slot per earlier scene, then a newline
        slots += "\n"
    return PROMPT_FORMATS[fmt].format(images=slots, prompt=prompt)


def trim_oldest_exchange(history: str, images: list) -> tuple[str, list]:
    """Official MMDialog trimming: the first `###Human: ... ###Human:` span becomes `###Human:`, with its images."""
    match = OLDEST_EXCHANGE.search(history)
    if match is None:
        return history, images
    dropped = match.group(0)
    return history.replace(dropped, "###Human:"), images[dropped.count(IMAGE_SLOT) :]


@dataclass(frozen=True)
class Minigpt5Settings:
    """Answer options; the defaults are the official `MiniGPT5_Model.generate` ones. seed None: a fresh draw."""

    guidance_scale: float = 7.5
    num_inference_steps: int = 50
    seed: int | None = None
    do_sample: bool = True
    top_p: float = 0.9
    temperature: float = 1.0
    repetition_penalty: float = 2.0
    max_new_tokens: int = 256
    force_image: bool = False

    def with_overrides(self, **options: Any) -> Minigpt5Settings:
        unknown = sorted(set(options) - set(asdict(self)))
        if unknown:
            raise TypeError(f"unknown MiniGPT-5 answer options {unknown}; known: {sorted(asdict(self))}")
        return replace(self, **options)

    def text_kwargs(self) -> dict[str, Any]:
        """`generate_from_context` keywords of the text part."""
        return {
            "max_new_tokens": int(self.max_new_tokens),
            "do_sample": bool(self.do_sample),
            "top_p": float(self.top_p),
            "temperature": float(self.temperature),
            "repetition_penalty": float(self.repetition_penalty),
            "force_generation": bool(self.force_image),
        }


def history_prompt(captions: list[str]) -> str:
    """Official VIST history: earlier scene texts joined by the image slot, a trailing slot and newline."""
    prompt = IMAGE_SLOT.join(captions)
    return f"{prompt}{IMAGE_SLOT}\n" if captions else prompt


@dataclass
class Minigpt5Conversation:
    """style "dialogue" (official MMDialog format): the running prompt `history`; style "story" (official VIST
    `-gen` format): the scene texts `captions` so far, one image each, and the scene to draw (`request`).
    images: the processed images of the `<ImageHere>` slots in order (each (3, S, S)); pending: images uploaded
    for the next user message."""

    history: str = SYSTEM_PROMPT
    images: list[torch.Tensor] = field(default_factory=list)
    pending: list[torch.Tensor] = field(default_factory=list)
    turns: int = 0  # official turn index i: even = human, odd = assistant
    style: str = "dialogue"
    captions: list[str] = field(default_factory=list)
    request: str = ""

    def copy(self) -> Minigpt5Conversation:
        return replace(
            self, images=list(self.images), pending=list(self.pending), captions=list(self.captions)
        )

    def prompt(self) -> str:
        """The generation prompt: dialogue -> history + `###Assistant:` (official source of an assistant turn);
        story -> the VIST system prompt + `###Human:{history} Generate an image with the scene description: ...`."""
        if self.style == "story":
            return VIST_SYSTEM_PROMPT + VIST_GENERATION.format(
                prompt=history_prompt(self.captions), step_text=self.request
            )
        return self.history + ASSISTANT


@dataclass
class Minigpt5Answer:
    """text: cleaned answer (vokens and `###` removed); images: 0 or 1 PIL image; token_ids: new ids (N,)."""

    text: str
    images: list[Image.Image]
    token_ids: torch.Tensor
    wants_image: bool  # the LLM produced [IMG0]


@dataclass
class AnswerEvent:
    """What `stream_answer` yields: kind "text" (the answer text; `wants_image` says an image follows), then
    "image" (the picture) when the model drew one, then "done" (the complete `Minigpt5Answer`)."""

    kind: str
    text: str = ""
    image: Image.Image | None = None
    wants_image: bool = False
    answer: Minigpt5Answer | None = None


class Minigpt5Chat:
    """Chat driver for `MiniGPT5`. vis_processor: PIL -> (3, S, S) input tensor (`minigpt5_input_image`)."""

    def __init__(self, model: Any, vis_processor: Callable[[Image.Image], torch.Tensor], device=None) -> None:
        self.model = model
        self.vis_processor = vis_processor
        self.device = torch.device(device) if device is not None else model.device
        self.settings = Minigpt5Settings()

    def new_conversation(self, style: str = "dialogue") -> Minigpt5Conversation:
        if style not in ("dialogue", "story"):
            raise ValueError(f"style must be 'dialogue' or 'story', got {style!r}")
        return Minigpt5Conversation(style=style)

    def add_scene(self, text: str, image: ImageInput, conv: Minigpt5Conversation) -> None:
        """Story: a scene the user gives with its picture (it joins the history, nothing is generated)."""
        conv.captions.append(text)
        conv.images.append(self._pixels(image))

    # --- building the conversation -----------------------------------------------------------------------------
    def upload_img(self, image: ImageInput, conv: Minigpt5Conversation) -> str:
        """Keep an image for the next user message (several allowed)."""
        conv.pending.append(self._pixels(image))
        return "Received."

    def ask(self, text: str, conv: Minigpt5Conversation) -> None:
        """A user turn: its text, then one `<Img><ImageHere></Img>` slot per image uploaded since the last turn.
        Story: the scene to draw (uploaded images become scenes with this text, see `add_scene`)."""
        if conv.style == "story":
            for pixels in conv.pending:
                conv.captions.append(text)
                conv.images.append(pixels)
            conv.pending, conv.request = [], text
            return
        if conv.turns % 2 == 1:  # two user messages in a row: an empty assistant turn keeps the roles aligned
            conv.history = f"{conv.prompt()} \n"
            conv.turns += 1
        slots = " ".join([IMAGE_SLOT] * len(conv.pending))
        conv.history = f"{conv.history}{HUMAN} {text}" + (f" {slots}\n" if slots else "\n")
        conv.images += conv.pending
        conv.pending = []
        conv.turns += 1

    def _pixels(self, image: ImageInput | torch.Tensor) -> torch.Tensor:
        loaded = load_image(image)
        pixels = self.vis_processor(loaded) if isinstance(loaded, Image.Image) else loaded
        return pixels.squeeze(0) if pixels.dim() == 4 else pixels  # (3, S, S)

    # --- answering ---------------------------------------------------------------------------------------------
    def _generator(self, seed: int | None) -> torch.Generator | None:
        if seed is None:
            return None
        return torch.Generator(device=self.device).manual_seed(int(seed))

    def stream_answer(self, conv: Minigpt5Conversation, on_step: Callable[[int, int], None] | None = None,
                      **options: Any) -> Iterator[AnswerEvent]:  # fmt: skip
        """Answer the conversation: yield the text first, then the image (if the answer has one), then "done".
        options: `Minigpt5Settings` fields. The answer (with its image) joins `conv` at the end."""
        settings = self.settings.with_overrides(**options)
        generator = self._generator(settings.seed)
        model = self.model
        images = torch.stack(conv.images).to(self.device) if conv.images else None
        with torch.inference_mode():
            embeds, atts = model.generation_inputs_for([conv.prompt()], [images])
            result = model.generate_from_context(
                embeds, attention_mask=atts, generate_images=False, generator=generator,
                **settings.text_kwargs(),
            )  # fmt: skip
        text = result.texts[0]
        wants_image = bool(result.voken_states is not None and result.voken_states.abs().sum() > 0)
        wants_image = wants_image and model.first_voken_id in result.token_ids[0].tolist()
        yield AnswerEvent("text", text=text, wants_image=wants_image)
        pictures: list[Image.Image] = []
        if wants_image and model.image_decoder is not None:
            with torch.inference_mode():
                decoded = model.render_images(
                    result.voken_states[:1],
                    settings.guidance_scale,
                    settings.num_inference_steps,
                    generator=generator,
                    on_step=on_step,
                )
            pictures = list(decoded.images)
            yield AnswerEvent("image", text=text, image=pictures[0], wants_image=True)
        answer = Minigpt5Answer(text, pictures, result.token_ids[0], wants_image)
        self._remember(conv, answer)
        yield AnswerEvent("done", text=text, image=pictures[0] if pictures else None, wants_image=wants_image,
                          answer=answer)  # fmt: skip

    def answer(self, conv: Minigpt5Conversation, **options: Any) -> Minigpt5Answer:
        """`stream_answer` run to the end: the text and its images."""
        final = None
        for event in self.stream_answer(conv, **options):
            final = event.answer or final
        assert final is not None  # "done" is always yielded last
        return final

    def _remember(self, conv: Minigpt5Conversation, answer: Minigpt5Answer) -> None:
        """The assistant turn joins the history as in the official MMDialog data (image slot when drawn); in a
        story the drawn scene joins the captions (a scene without a picture is left out: VIST has one per scene)."""
        if conv.style == "story":
            if answer.images:
                conv.captions.append(conv.request)
                conv.images.append(self._pixels(answer.images[0]))
            conv.request = ""
            return
        source = conv.prompt()
        if answer.images:
            conv.history = f"{source} {answer.text} {IMAGE_SLOT}\n"
            conv.images.append(self._pixels(answer.images[0]))
        else:
            conv.history = f"{source} {answer.text}\n"
        if conv.turns > 2:  # official: after assistant turns i > 2 the oldest exchange is dropped
            history, kept = trim_oldest_exchange(conv.history, list(range(len(conv.images))))
            conv.history, conv.images = history, [conv.images[i] for i in kept]
        conv.turns += 1
