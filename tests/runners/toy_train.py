"""Train the toy model under torchrun (or alone): `torchrun --nproc-per-node 2 toy_train.py OUT BATCH STRATEGY`."""

from __future__ import annotations

import sys

import torch

from minigpt4.common.dist import destroy_distributed, init_distributed_mode, seed_everything
from minigpt4.runners.runner import RunnerBase
from tests.runners.toy import ToyDataset, ToyModel, ToyTask, toy_cfg


def main(out: str, batch_size: int, strategy: str) -> None:
    from pathlib import Path

    cfg = toy_cfg(Path(out), strategy=strategy, max_epoch=1, iters_per_epoch=4)
    cfg.datasets_cfg.toy.batch_size = batch_size
    init_distributed_mode(cfg.run_cfg)
    seed_everything(0, rank=0)  # identical initial weights on every rank
    model = ToyModel()
    torch.manual_seed(1)
    RunnerBase(cfg, ToyTask(), model, {"toy": {"train": ToyDataset()}}).train()
    destroy_distributed()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
