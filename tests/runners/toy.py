"""A toy task, model and dataset that exercise the runner in milliseconds, without models or builders."""

from __future__ import annotations

import types

import torch
from omegaconf import OmegaConf
from torch.utils.data import Dataset

from minigpt4.tasks.base_task import BaseTask


class ToyDataset(Dataset):
    def __init__(self, n: int = 24, dim: int = 4, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, dim, generator=generator)
        self.y = self.x @ torch.linspace(0.5, -0.5, dim) + 0.2

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> dict:
        return {"image": self.x[index], "target": self.y[index], "answer": f"sample {index}"}


class ToyModel(torch.nn.Module):
    def __init__(self, dim: int = 4) -> None:
        super().__init__()
        self.llama_proj = torch.nn.Linear(dim, 1)
        self.frozen = torch.nn.Linear(dim, dim)
        self.frozen.requires_grad_(False)
        self.poison = False

    def forward(self, samples: dict) -> dict:
        prediction = self.llama_proj(self.frozen(samples["image"]) * 0 + samples["image"]).squeeze(-1)
        loss = torch.nn.functional.mse_loss(prediction, samples["target"])
        if self.poison and samples["iters"] == 2:
            loss = loss * float("nan")
        return {"loss": loss}


class ToyTask(BaseTask):
    pass


def toy_cfg(tmp_path, **run_overrides) -> types.SimpleNamespace:
    run = {
        "task": "image_text_pretrain",
        "lr_sched": "linear_warmup_cosine_lr",
        "init_lr": 0.05,
        "min_lr": 0.001,
        "warmup_lr": 0.001,
        "warmup_steps": 3,
        "weight_decay": 0.05,
        "max_epoch": 2,
        "iters_per_epoch": 6,
        "num_workers": 0,
        "seed": 7,
        "output_dir": str(tmp_path / "out"),
        "job_id": "job",
        "amp": False,
        "device": "cpu",
        "log_freq": 1,
        "progress_bar": False,
        **run_overrides,
    }
    config = OmegaConf.create({"run": run, "datasets": {"toy": {"batch_size": 4}}})
    return types.SimpleNamespace(
        config=config, run_cfg=config.run, datasets_cfg=config.datasets, cfg_path="toy.yaml"
    )
