"""Conversation templates: the official `Conversation` record and its three chat templates.

`Conversation.get_prompt` reproduces the official string byte for byte (parity family `conversation`), including
its quirks: an empty-string message counts as "no message yet" (only the role is written), and the Llama-2 and
MiniGPT-v2 roles carry a literal `<s>` although the tokenizer also adds BOS to the first segment.
"""

from __future__ import annotations

import copy
import dataclasses
from enum import Enum, auto

from minigpt4.common.errors import ConfigError

IMAGE_PLACEHOLDER = "<ImageHere>"
IMAGE_MESSAGE = "<Img><ImageHere></Img>"


class SeparatorStyle(Enum):
    """How messages are joined. SINGLE: one `sep` after every message; TWO: `sep`/`sep2` alternating."""

    SINGLE = auto()
    TWO = auto()


@dataclasses.dataclass
class Conversation:
    """A chat history rendered into one prompt string.

    `messages` holds `[role, text]` pairs (lists, so the official in-place edits work); `text` None (or "") marks
    the slot the model is about to fill. `offset` is the number of leading messages `to_gradio_chatbot` skips.
    `stop_strings` is ours (not an official field): text that ends an answer besides EOS, e.g. "###" for Vicuna v0.
    """

    system: str
    roles: tuple[str, str]
    messages: list[list[str | None]]
    offset: int
    sep_style: SeparatorStyle = SeparatorStyle.SINGLE
    sep: str = "###"
    sep2: str | None = None
    skip_next: bool = False
    conv_id: object = None
    stop_strings: tuple[str, ...] = ()

    def get_prompt(self) -> str:
        if self.sep_style == SeparatorStyle.SINGLE:
            prompt = self.system + self.sep
            for role, message in self.messages:
                # official: `if message:`, so "" is rendered like None (role only, no separator)
                prompt += role + message + self.sep if message else role
            return prompt
        if self.sep_style == SeparatorStyle.TWO:
            seps = [self.sep, self.sep2 or ""]
            prompt = self.system + seps[0]
            for index, (role, message) in enumerate(self.messages):
                prompt += role + ": " + message + seps[index % 2] if message else role + ":"
            return prompt
        raise ValueError(f"unknown separator style {self.sep_style!r}; expected SINGLE or TWO")

    def append_message(self, role: str, message: str | None) -> None:
        self.messages.append([role, message])

    def to_gradio_chatbot(self) -> list[list[str | None]]:
        """Official pair format `[[user, assistant], ...]` of the messages after `offset`."""
        pairs: list[list[str | None]] = []
        for index, (_, message) in enumerate(self.messages[self.offset :]):
            if index % 2 == 0:
                pairs.append([message, None])
            else:
                pairs[-1][-1] = message
        return pairs

    def copy(self) -> Conversation:
        """An independent conversation with the same template and a copy of the messages."""
        return dataclasses.replace(self, messages=copy.deepcopy(self.messages))

    def dict(self) -> dict:
        return {
            "system": self.system,
            "roles": self.roles,
            "messages": self.messages,
            "offset": self.offset,
            "sep": self.sep,
            "sep2": self.sep2,
            "conv_id": self.conv_id,
        }


_IMAGE_SYSTEM = (
    "Give the following image: <Img>ImageContent</Img>. "
    "You will be able to see the image once I provide it to you. Please answer my questions."
)

CONV_VISION_Vicuna0 = Conversation(
    system=_IMAGE_SYSTEM,
    roles=("Human: ", "Assistant: "),
    messages=[],
    offset=2,
    sep_style=SeparatorStyle.SINGLE,
    sep="###",
    stop_strings=("###",),
)

CONV_VISION_LLama2 = Conversation(
    system=_IMAGE_SYSTEM,
    roles=("<s>[INST] ", " [/INST] "),
    messages=[],
    offset=2,
    sep_style=SeparatorStyle.SINGLE,
    sep="",
)

CONV_VISION_minigptv2 = Conversation(
    system="",
    roles=("<s>[INST] ", " [/INST]"),
    messages=[],
    offset=2,
    sep_style=SeparatorStyle.SINGLE,
    sep="",
)

TEMPLATES: dict[str, Conversation] = {
    "CONV_VISION_Vicuna0": CONV_VISION_Vicuna0,
    "CONV_VISION_LLama2": CONV_VISION_LLama2,
    "CONV_VISION_minigptv2": CONV_VISION_minigptv2,
}


def template_for(arch: str, model_type: str) -> Conversation:
    """The chat template of a model (a fresh copy). Which one is a fact of the model class
    (`conversation_template_name`, e.g. MiniGPT-v2 always uses `CONV_VISION_minigptv2`)."""
    from minigpt4.common.registry import registry  # the model class: imported on first lookup

    name = registry.get_model_class(arch).conversation_template_name(model_type)
    if name not in TEMPLATES:
        raise ConfigError(f"model arch={arch!r} names the chat template {name!r}; known: {sorted(TEMPLATES)}")
    return TEMPLATES[name].copy()


def prepare_texts(texts: list[str], conv_template: Conversation) -> list[str]:
    """Official `eval_utils.prepare_texts`: one single-turn image prompt per text, ready for generation."""
    prompts = []
    for text in texts:
        conv = conv_template.copy()
        conv.append_message(conv.roles[0], f"{IMAGE_MESSAGE} {text}")
        conv.append_message(conv.roles[1], None)
        prompts.append(conv.get_prompt())
    return prompts
