"""The official import path `minigpt4.conversation.conversation`, kept so official scripts run unchanged: it
offers what `minigpt4.conversation` exports (`Chat`, `Conversation`, the `CONV_VISION_*` templates, ...)."""

from minigpt4.conversation import *  # noqa: F403
from minigpt4.conversation import __all__  # noqa: F401
