"""Data parallelism: DDP by default (`run.strategy: ddp`), FSDP for LLMs that do not fit one GPU (`fsdp`).

DDP uses `find_unused_parameters=True` by default, as officially: a text-only batch on one rank leaves
`llama_proj` without a gradient. FSDP shards parameters, gradients and optimizer state across ranks and
keeps original parameters (`use_orig_params=True`) so frozen and trainable tensors can share a unit.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from minigpt4.common.dist import is_dist_avail_and_initialized
from minigpt4.common.errors import ConfigError

STRATEGIES = ("ddp", "fsdp")


def wrap(model: torch.nn.Module, run_cfg: Any, device: torch.device) -> torch.nn.Module:
    strategy = str(run_cfg.get("strategy", "ddp"))
    if strategy not in STRATEGIES:
        raise ConfigError(f"run.strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    if not is_dist_avail_and_initialized():
        return model
    if strategy == "fsdp":
        from torch.distributed.fsdp import FullyShardedDataParallel

        return FullyShardedDataParallel(
            model,
            use_orig_params=True,
            device_id=device if device.type == "cuda" else None,
            sync_module_states=False,
        )
    return DistributedDataParallel(
        model,
        device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=bool(run_cfg.get("find_unused_parameters", True)),
    )


def is_fsdp(model: torch.nn.Module) -> bool:
    from torch.distributed.fsdp import FullyShardedDataParallel

    return isinstance(model, FullyShardedDataParallel)


def full_trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The official trainable selection over the gathered full FSDP state (rank 0; CPU-offloaded).

    Collective: every rank must call it.
    """
    from torch.distributed.fsdp import FullStateDictConfig, FullyShardedDataParallel, StateDictType

    config = FullStateDictConfig(offload_to_cpu=True, rank0_only=True)
    with FullyShardedDataParallel.state_dict_type(model, StateDictType.FULL_STATE_DICT, config):
        state = model.state_dict()
    prefix = "_fsdp_wrapped_module."
    frozen = {name.replace(prefix, "") for name, p in model.named_parameters() if not p.requires_grad}
    state = {name.replace(prefix, ""): tensor for name, tensor in state.items()}
    return {name: tensor.detach().cpu() for name, tensor in state.items() if name not in frozen}
