"""`blip_caption`: the official caption normalisation (LAVIS `BlipCaptionProcessor`), reproduced exactly.

Rules, in order (pinned by the parity family `text_processor`):
1. lowercase, then replace each of ``. ! " ( ) * # : ; ~`` by a space;
2. collapse runs of **two or more** whitespace characters into one space (a single ``\\n`` or ``\\t`` survives);
3. strip trailing ``\\n``, then surrounding spaces (spaces only);
4. keep the first `max_words` words, splitting on ``" "`` only;
5. prepend `prompt`.
"""

from __future__ import annotations

import re
from typing import Any

from minigpt4.common.registry import registry
from minigpt4.processors.base_processor import BaseProcessor, config_node

_PUNCTUATION = re.compile(r"[.!\"()*#:;~]")
_WHITESPACE_RUN = re.compile(r"\s{2,}")


def pre_caption(caption: str, max_words: int = 50) -> str:
    """The official `pre_caption` normalisation of one caption (see the module docstring)."""
    caption = _PUNCTUATION.sub(" ", caption.lower())
    caption = _WHITESPACE_RUN.sub(" ", caption)
    caption = caption.rstrip("\n").strip(" ")
    words = caption.split(" ")
    if len(words) > max_words:
        caption = " ".join(words[:max_words])
    return caption


@registry.register_processor("blip_caption")
class BlipCaptionProcessor(BaseProcessor):
    def __init__(self, prompt: str = "", max_words: int = 50) -> None:
        self.prompt = prompt
        self.max_words = max_words

    def __call__(self, caption: str) -> str:
        return self.prompt + pre_caption(caption, self.max_words)

    @classmethod
    def from_config(cls, cfg: Any = None) -> BlipCaptionProcessor:
        cfg = config_node(cfg)
        return cls(prompt=cfg.get("prompt", ""), max_words=cfg.get("max_words", 50))
