"""The processor interface of LAVIS: `Processor.from_config(cfg_or_None)` then `processor(item)`."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf


def config_node(cfg: Any) -> DictConfig:
    """`cfg` as a DictConfig: None gives an empty node, a dict is wrapped."""
    if cfg is None:
        return OmegaConf.create({})
    if isinstance(cfg, DictConfig):
        return cfg
    return OmegaConf.create(dict(cfg))


class BaseProcessor:
    """Identity processor; subclasses override `__call__` and `from_config`."""

    def __call__(self, item: Any) -> Any:
        return item

    @property
    def is_random(self) -> bool:
        """Whether two calls on the same item can differ (random augmentation): its outputs cannot be cached."""
        return False

    @classmethod
    def from_config(cls, cfg: Any = None) -> BaseProcessor:
        return cls()

    def build(self, **kwargs: Any) -> BaseProcessor:
        return self.from_config(OmegaConf.create(kwargs))
