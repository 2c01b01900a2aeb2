import random

import numpy as np
import torch

from minigpt4.common import dist


def test_single_process_defaults():
    assert dist.get_rank() == 0
    assert dist.get_world_size() == 1
    assert dist.is_main_process()
    dist.barrier()  # no-op without a process group
    assert torch.equal(dist.all_reduce_mean(torch.tensor([2.0])), torch.tensor([2.0]))


def test_env_ranks_torchrun_and_slurm():
    assert dist.env_ranks({}) is None
    assert dist.env_ranks({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == (3, 4, 1)
    assert dist.env_ranks({"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1"}) == (5, 8, 1)


def test_init_without_env_is_single_process(monkeypatch):
    from omegaconf import OmegaConf

    for name in ("RANK", "WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS"):
        monkeypatch.delenv(name, raising=False)
    run_cfg = OmegaConf.create({"distributed": True})
    info = dist.init_distributed_mode(run_cfg)
    assert not info.distributed and run_cfg.distributed is False and run_cfg.world_size == 1


def test_seed_adds_rank():
    assert dist.seed_everything(42, rank=3) == 45
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    dist.seed_everything(42, rank=3)
    assert first == (random.random(), np.random.rand(), torch.rand(1).item())
    dist.seed_everything(42, rank=0)
    assert torch.rand(1).item() != first[2]


def test_main_process_decorator_runs_on_rank_zero():
    assert dist.main_process(lambda: 7)() == 7
