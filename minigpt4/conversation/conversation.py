"""The official import path `minigpt4.conversation.conversation`, kept so official scripts run unchanged."""

from minigpt4.conversation.chat import Chat, StoppingCriteriaSub
from minigpt4.conversation.templates import (
    CONV_VISION_LLama2,
    CONV_VISION_minigptv2,
    CONV_VISION_Vicuna0,
    Conversation,
    SeparatorStyle,
)

__all__ = [
    "CONV_VISION_LLama2",
    "CONV_VISION_Vicuna0",
    "CONV_VISION_minigptv2",
    "Chat",
    "Conversation",
    "SeparatorStyle",
    "StoppingCriteriaSub",
]
