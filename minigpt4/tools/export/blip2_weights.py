"""Stream tensors through the BLIP-2 key table, one tensor at a time (no whole state dict is ever built).

`to_transformers` and `to_minigpt4` take and yield `(key, tensor)` pairs, so the export and import drivers can
feed them from a model's `state_dict()`, from memory-mapped shards, or from meta tensors (shapes only).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch import Tensor

from minigpt4.common.errors import CheckpointError
from minigpt4.tools.export.blip2_keys import (
    DERIVED,
    Q_OF_QKV_BIAS,
    V_OF_QKV_BIAS,
    VOCAB_ROW,
    to_ours,
    to_theirs,
)

POSITION_IDS_KEY = "Qformer.bert.embeddings.position_ids"
Pairs = Iterable[tuple[str, Tensor]]


def fuse_qkv_bias(q_bias: Tensor, v_bias: Tensor) -> Tensor:
    """(D,), (D,) -> (3D,) = [q_bias, 0, v_bias]: the bias our EVA attention adds to `qkv(x)`."""
    return torch.cat((q_bias, torch.zeros_like(v_bias), v_bias))


def split_qkv_bias(key: str, qkv_bias: Tensor) -> tuple[Tensor, Tensor]:
    """(3D,) -> q_bias (D,), v_bias (D,); the k third must be zero (EVA has no k bias)."""
    q_bias, k_bias, v_bias = qkv_bias.chunk(3)
    if not k_bias.is_meta and bool(k_bias.any()):
        raise CheckpointError(
            f"{key}: the key third of the qkv bias is not zero; EVA's attention has no key bias, so this "
            "vision tower cannot be loaded into MiniGPT-4 without changing its output"
        )
    return q_bias, v_bias


def pad_rows(key: str, weight: Tensor, rows: int) -> Tensor:
    """(V, D) -> (rows, D) with zero rows appended (the image token's embedding / LM-head row)."""
    extra = rows - weight.shape[0]
    if extra < 0:
        raise CheckpointError(
            f"{key}: has {weight.shape[0]} rows, more than the {rows} of the exported vocab"
        )
    if extra == 0:
        return weight
    return torch.cat((weight, weight.new_zeros(extra, *weight.shape[1:])))


def check_position_ids(tensor: Tensor) -> None:
    if tensor.is_meta:
        return
    expected = torch.arange(tensor.shape[-1], dtype=tensor.dtype).expand_as(tensor)
    if not torch.equal(tensor, expected):
        raise CheckpointError(
            f"{POSITION_IDS_KEY}: not the arange buffer BLIP-2 saves; transformers' Q-Former has no such "
            "tensor, so a changed one could not travel (the query path never reads it)"
        )


def position_ids(length: int) -> Tensor:
    """The Q-Former's saved `arange` buffer, (1, length) int64, as BertEmbeddings registers it."""
    return torch.arange(length).expand((1, -1))


def to_transformers(tensors: Pairs, vocab_rows: int) -> Iterator[tuple[str, Tensor]]:
    """Our (key, tensor) pairs -> transformers' pairs. vocab_rows: rows of the exported embedding / LM head."""
    halves: dict[str, dict[str, Tensor]] = {}
    for key, tensor in tensors:
        mapped = to_theirs(key)
        if mapped.kind == DERIVED:
            check_position_ids(tensor)
        elif mapped.kind in (Q_OF_QKV_BIAS, V_OF_QKV_BIAS):
            parts = halves.setdefault(mapped.key, {})
            parts[mapped.kind] = tensor
            if len(parts) == 2:
                del halves[mapped.key]
                yield mapped.key, fuse_qkv_bias(parts[Q_OF_QKV_BIAS], parts[V_OF_QKV_BIAS])
        elif mapped.kind == VOCAB_ROW:
            yield mapped.key, pad_rows(key, tensor, vocab_rows)
        else:
            yield mapped.key, tensor
    if halves:
        raise CheckpointError(
            f"{sorted(halves)[0]}: only one of q_bias / v_bias was given; both are needed for the fused qkv bias"
        )


def to_minigpt4(
    tensors: Pairs, vocab_size: int | None, qformer_max_positions: int
) -> Iterator[tuple[str, Tensor]]:
    """transformers' pairs -> ours. vocab_size: LLaMA rows to keep (None: keep all); the buffer is rebuilt."""
    for key, tensor in tensors:
        mapped = to_ours(key)
        if len(mapped) == 2:
            q_bias, v_bias = split_qkv_bias(key, tensor)
            yield mapped[0].key, q_bias
            yield mapped[1].key, v_bias
        elif mapped[0].kind == VOCAB_ROW and vocab_size is not None:
            yield mapped[0].key, tensor[:vocab_size]
        else:
            yield mapped[0].key, tensor
    yield POSITION_IDS_KEY, position_ids(qformer_max_positions)
