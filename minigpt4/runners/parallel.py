"""Data parallelism: DDP by default (`run.strategy: ddp`), FSDP for LLMs that do not fit one GPU (`fsdp`).

DDP uses `find_unused_parameters=True` by default, as officially: a text-only batch on one rank leaves
`llama_proj` without a gradient. FSDP shards parameters, gradients and optimizer state across ranks and
keeps original parameters (`use_orig_params=True`) so frozen and trainable tensors can share a unit.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from minigpt4.common.dist import get_world_size, is_dist_avail_and_initialized
from minigpt4.common.errors import ConfigError

STRATEGIES = ("ddp", "fsdp")


def wrap(model: torch.nn.Module, run_cfg: Any, device: torch.device) -> torch.nn.Module:
    strategy = str(run_cfg.get("strategy", "ddp"))
    if strategy not in STRATEGIES:
        raise ConfigError(f"run.strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    if not is_dist_avail_and_initialized():
        return model
    if strategy == "fsdp":
        # FSDP2 (per-parameter sharding): runs on CUDA and, for tests, on CPU with gloo
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh(device.type, (get_world_size(),))
        for block in _shardable_blocks(model):
            fully_shard(block, mesh=mesh)
        fully_shard(model, mesh=mesh)
        return model
    return DistributedDataParallel(
        model,
        device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=bool(run_cfg.get("find_unused_parameters", True)),
    )


def _shardable_blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """Transformer blocks (LLM decoder layers, ViT blocks) get their own shard unit, to bound peak memory."""
    names = ("LlamaDecoderLayer", "Block", "QFormerLayer", "BertLayer")
    return [m for m in model.modules() if type(m).__name__ in names and m is not model]


def is_fsdp(model: torch.nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def full_trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The official trainable selection over the gathered full FSDP state, on CPU.

    Collective: every rank must call it (rank 0 writes it).
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    frozen = {name for name, param in model.named_parameters() if not param.requires_grad}
    return {name: tensor.detach().cpu() for name, tensor in state.items() if name not in frozen}


def full_optimizer_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """The optimizer state with full (unsharded) tensors keyed by parameter name; collective."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_optimizer_state_dict(model, optimizer, options=options)


def load_full_state(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, weights: dict, optimizer_state: dict
):
    """Scatter full trainable weights and optimizer state back into the shards (frozen tensors stay)."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    options = StateDictOptions(full_state_dict=True, strict=False)
    set_model_state_dict(model, weights, options=options)
    set_optimizer_state_dict(
        model, optimizer, optimizer_state, options=StateDictOptions(full_state_dict=True)
    )
