"""Distributed helpers: init from torchrun (or SLURM) variables, rank queries, rank-0 printing, seeding.

NCCL on GPU, gloo on CPU. Everything works unchanged in a single process without any variable set.
"""

from __future__ import annotations

import builtins
import datetime
import functools
import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    backend: str | None
    distributed: bool


def is_dist_avail_and_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_dist_avail_and_initialized() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_dist_avail_and_initialized() else 1


def is_main_process() -> bool:
    return get_rank() == 0


def barrier() -> None:
    if is_dist_avail_and_initialized():
        dist.barrier()


def main_process(func: Callable) -> Callable:
    """Run `func` on rank 0 only (others return None)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs) if is_main_process() else None

    return wrapper


def env_ranks(environ: dict[str, str] | None = None) -> tuple[int, int, int] | None:
    """(rank, world_size, local_rank) from torchrun's or SLURM's variables, or None when neither is set."""
    env = os.environ if environ is None else environ
    if "RANK" in env and "WORLD_SIZE" in env:
        return int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0))
    if "SLURM_PROCID" in env and "SLURM_NTASKS" in env:
        rank = int(env["SLURM_PROCID"])
        world_size = int(env["SLURM_NTASKS"])
        local_rank = int(env.get("SLURM_LOCALID", rank % max(torch.cuda.device_count(), 1)))
        return rank, world_size, local_rank
    return None


def setup_for_distributed(is_master: bool) -> None:
    """Silence `print` off rank 0 unless called with force=True (the official behaviour)."""
    builtin_print = builtins.print

    def rank_print(*args: Any, **kwargs: Any) -> None:
        force = kwargs.pop("force", False)
        if is_master or force:
            builtin_print(*args, **kwargs)

    builtins.print = rank_print


def init_distributed_mode(run_cfg: Any = None, backend: str | None = None) -> DistInfo:
    """Initialise torch.distributed from the environment; a no-op single process when nothing is set.

    Sets `run_cfg.distributed`, `run_cfg.gpu`, `run_cfg.rank`, `run_cfg.world_size` when a config is given.
    """
    ranks = env_ranks()
    if ranks is None:
        info = DistInfo(0, 1, 0, None, False)
        _write_back(run_cfg, info)
        return info
    rank, world_size, local_rank = ranks
    use_cuda = torch.cuda.is_available() and (
        run_cfg is None or str(getattr(run_cfg, "device", "cuda")) != "cpu"
    )
    backend = backend or ("nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if "MASTER_ADDR" not in os.environ:  # SLURM without torchrun
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29500")
    if not is_dist_avail_and_initialized():
        dist.init_process_group(
            backend=backend,
            init_method=str(getattr(run_cfg, "dist_url", "env://") or "env://")
            if run_cfg is not None
            else "env://",
            world_size=world_size,
            rank=rank,
            timeout=datetime.timedelta(days=365),  # long data preparation on rank 0 must not time out
        )
    logger.info("distributed init: rank %d of %d, backend %s", rank, world_size, backend)
    setup_for_distributed(rank == 0)
    info = DistInfo(rank, world_size, local_rank, backend, True)
    _write_back(run_cfg, info)
    return info


def _write_back(run_cfg: Any, info: DistInfo) -> None:
    if run_cfg is None:
        return
    from omegaconf import open_dict

    with open_dict(run_cfg):
        run_cfg.distributed = info.distributed
        run_cfg.rank = info.rank
        run_cfg.world_size = info.world_size
        run_cfg.gpu = info.local_rank


def destroy_distributed() -> None:
    if is_dist_avail_and_initialized():
        dist.destroy_process_group()


def seed_everything(seed: int, rank: int | None = None) -> int:
    """Seed python, numpy and torch with `seed + rank` (official); returns the seed used."""
    effective = int(seed) + (get_rank() if rank is None else int(rank))
    random.seed(effective)
    np.random.seed(effective % (2**32))
    torch.manual_seed(effective)
    return effective


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """Mean over ranks (identity in a single process)."""
    if not is_dist_avail_and_initialized():
        return value
    value = value.clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / get_world_size()
