"""Chat templates, the `Chat` driver and grounding-box parsing/drawing for MiniGPT-4 and MiniGPT-v2; `Minigpt5Chat`
for MiniGPT-5 (answers with text and pictures)."""

from minigpt4.conversation.chat import Chat, StoppingCriteriaSub, clean_answer
from minigpt4.conversation.minigpt5_chat import Minigpt5Chat, Minigpt5Settings
from minigpt4.conversation.templates import (
    CONV_VISION_LLama2,
    CONV_VISION_minigptv2,
    CONV_VISION_Vicuna0,
    Conversation,
    SeparatorStyle,
    prepare_texts,
    template_for,
)

__all__ = [
    "CONV_VISION_LLama2",
    "CONV_VISION_Vicuna0",
    "CONV_VISION_minigptv2",
    "Chat",
    "Conversation",
    "Minigpt5Chat",
    "Minigpt5Settings",
    "SeparatorStyle",
    "StoppingCriteriaSub",
    "clean_answer",
    "prepare_texts",
    "template_for",
]
