"""`minigpt5_generation`: MiniGPT-5 training (stage 1 on CC3M, stage 2 on VIST / MMDialog) through train.py.

What differs from `image_text_pretrain`:
* the MiniGPT-5 builders tokenise their samples with the model's LLaMA tokenizer (which holds the 9 new tokens),
  so the model is built first and the builders are given its tokenizer; `build_model` returns that model;
* the optimizer is the official one (`build_optimizer`): AdamW(lr, eps=`run.adam_eps`, official 1e-8, weight
  decay `run.weight_decay`, official 0.01 = torch's default) over the model's own groups
  (`MiniGPT5.optimizer_param_groups`): the LLM trainables at lr, the output mapper at `run.mapper_lr_scale` x lr
  (official stage 1: 10; stage 2 trains the mapper transformer at lr and freezes fc and the queries). Unlike the
  LAVIS groups, biases and norms are decayed too, as torch.optim.AdamW over plain parameter lists does.

The training step is the model's forward loss (`0.01 LM + diffusion (+ 0.1 caption)`), under the runner's
autocast (bf16 on GPU with `run.amp: true, run.amp_dtype: bfloat16`, official `precision='bf16-mixed'`).
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from minigpt4.common.errors import ConfigError
from minigpt4.common.registry import registry
from minigpt4.tasks.base_task import BaseTask, _set_attribute

logger = logging.getLogger(__name__)
MINIGPT5_BUILDERS = ("cc3m", "vist", "mmdialog")


@registry.register_task("minigpt5_generation")
class Minigpt5GenerationTask(BaseTask):
    def __init__(self) -> None:
        self.model: torch.nn.Module | None = None

    def build_model(self, cfg: Any) -> torch.nn.Module:
        """Built once: `build_datasets` needs its tokenizer first."""
        if self.model is None:
            if str(cfg.model_cfg.arch) != "minigpt5":
                raise ConfigError(
                    f"{getattr(cfg, 'cfg_path', 'config')}: run.task minigpt5_generation trains model.arch "
                    f"minigpt5, not {cfg.model_cfg.arch!r}"
                )
            self.model = super().build_model(cfg)
        return self.model

    def build_datasets(self, cfg: Any) -> dict[str, dict[str, Any]]:
        datasets_cfg = cfg.datasets_cfg
        if not datasets_cfg:
            raise ConfigError(
                f"{getattr(cfg, 'cfg_path', 'config')}: datasets is empty; set cc3m (stage 1) or vist / mmdialog"
            )
        unknown = [name for name in datasets_cfg if name not in MINIGPT5_BUILDERS]
        if unknown:
            raise ConfigError(
                f"{getattr(cfg, 'cfg_path', 'config')}: datasets.{unknown[0]} is not a MiniGPT-5 dataset; "
                f"run.task minigpt5_generation reads {', '.join(MINIGPT5_BUILDERS)}"
            )
        tokenizer = self.build_model(cfg).llama_tokenizer
        datasets = {}
        for name in datasets_cfg:
            dataset_cfg = datasets_cfg[name]
            splits = registry.get_builder_class(name)(dataset_cfg, tokenizer=tokenizer).build_datasets()
            for split in splits.values():
                _set_attribute(split, "name", name)
                if "sample_ratio" in dataset_cfg:
                    _set_attribute(split, "sample_ratio", dataset_cfg.sample_ratio)
            datasets[name] = splits
        return datasets

    def train_step(self, model: torch.nn.Module, samples: dict[str, Any]) -> torch.Tensor:
        return model(samples)["loss"]

    @staticmethod
    def build_optimizer(model: torch.nn.Module, run_cfg: Any) -> torch.optim.Optimizer:
        """Official AdamW over the model's groups; each group carries `lr_scale` (its lr / init_lr) for the
        schedulers, which set lr = scheduled lr x lr_scale."""
        init_lr = float(run_cfg.init_lr)
        mapper_scale = float(run_cfg.get("mapper_lr_scale", 1.0))
        groups = model.optimizer_param_groups(
            lr=init_lr,
            weight_decay=float(run_cfg.get("weight_decay", 0.01)),
            mapper_lr=init_lr * mapper_scale,
        )
        if not groups:
            raise ConfigError("the MiniGPT-5 model has no trainable parameters")
        for group in groups:
            group["lr_scale"] = group["lr"] / init_lr if init_lr else 1.0
        optimizer = torch.optim.AdamW(
            groups,
            lr=init_lr,
            betas=(0.9, float(run_cfg.get("beta2", 0.999))),
            eps=float(run_cfg.get("adam_eps", 1e-8)),
        )
        model.install_optimizer_hooks(optimizer)
        return optimizer
