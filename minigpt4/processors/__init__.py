"""Text and image processors (LAVIS API: `Cls.from_config(cfg)` then `processor(item)`), registered by name."""

from __future__ import annotations

from typing import Any

from minigpt4.processors.base_processor import BaseProcessor


def build_processor(cfg: Any) -> BaseProcessor:
    """A processor from a `{name: ..., ...}` node; None gives the identity processor (as the official builder)."""
    from minigpt4.common.registry import registry
    from minigpt4.processors.base_processor import config_node

    if cfg is None:
        return BaseProcessor()
    cfg = config_node(cfg)
    return registry.get_processor_class(cfg.name).from_config(cfg)


__all__ = ["BaseProcessor", "build_processor"]
