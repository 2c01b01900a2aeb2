"""A task builds the model and the datasets from a config and defines one training step."""

from __future__ import annotations

import logging
from typing import Any

import torch

from minigpt4.common.errors import ConfigError
from minigpt4.common.registry import registry

logger = logging.getLogger(__name__)


class BaseTask:
    @classmethod
    def setup_task(cls, cfg: Any = None, **kwargs: Any) -> BaseTask:
        return cls()

    def build_model(self, cfg: Any) -> torch.nn.Module:
        model_cfg = cfg.model_cfg
        model_cls = registry.get_model_class(model_cfg.arch)
        return model_cls.from_config(model_cfg)

    def build_datasets(self, cfg: Any) -> dict[str, dict[str, Any]]:
        """{dataset name: {split: dataset}}, each train split tagged with its name and sample_ratio."""
        datasets_cfg = cfg.datasets_cfg
        if not datasets_cfg:
            raise ConfigError(
                f"{getattr(cfg, 'cfg_path', 'config')}: datasets is empty; at least one dataset is needed"
            )
        datasets = {}
        for name in datasets_cfg:
            dataset_cfg = datasets_cfg[name]
            builder = registry.get_builder_class(name)(dataset_cfg)
            splits = builder.build_datasets()
            for split in splits.values():
                _set_attribute(split, "name", name)
                if "sample_ratio" in dataset_cfg:
                    _set_attribute(split, "sample_ratio", dataset_cfg.sample_ratio)
            datasets[name] = splits
        return datasets

    def train_step(self, model: torch.nn.Module, samples: dict[str, Any]) -> torch.Tensor:
        return model(samples)["loss"]


def _set_attribute(dataset: Any, name: str, value: Any) -> None:
    try:
        setattr(dataset, name, value)
    except AttributeError:  # some pipeline objects refuse attributes; mixing reads the config instead
        logger.debug("could not tag dataset with %s", name)
