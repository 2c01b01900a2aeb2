"""Vicuna v0 = LLaMA + delta, computed offline shard by shard (the official recipe, without FastChat).

The MiniGPT-4 README prepares Vicuna v0 with FastChat v0.1.10 `apply_delta`, which:
  1. loads the base LLaMA in fp16,
  2. adds a `[PAD]` token to the base tokenizer (32000 -> 32001) and resizes the embeddings, setting the new
     rows of `embed_tokens` and `lm_head` to **zero**,
  3. adds the delta to every base tensor (fp16 + fp16),
  4. saves the summed model with the **delta's** tokenizer.
We compute the same tensors, one tensor at a time, writing output shards as they fill up, so peak memory is
about one shard instead of two whole models. `tests/tools/test_weights_delta.py` checks equality with the
in-memory recipe and measures peak memory.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch

from minigpt4.common.errors import CheckpointError
from minigpt4.common.logging import progress
from minigpt4.models.checkpoint_shards import (
    HF_INDEX_NAMES,
    WEIGHT_SUFFIXES,
    ShardWriter,
    TensorFile,
    WeightSource,
    parse_size,
)

logger = logging.getLogger(__name__)

# Rows that may grow with the added [PAD] token; every other tensor must match the delta's shape exactly.
VOCAB_TENSORS = ("model.embed_tokens.weight", "lm_head.weight")
# Persistent RoPE buffers of transformers < 4.31 checkpoints; modern transformers recomputes them.
DROPPED_SUFFIXES = ("rotary_emb.inv_freq",)
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
VICUNA_DELTA_SOURCES = {
    "7b": "https://huggingface.co/lmsys/vicuna-7b-delta-v0",
    "13b": "https://huggingface.co/lmsys/vicuna-13b-delta-v0",
}


@dataclass
class DeltaReport:
    target_dir: Path
    num_tensors: int
    total_bytes: int
    shards: list[Path]
    vocab_size: int
    dropped_keys: list[str]


def _grow_rows(base: torch.Tensor, rows: int) -> torch.Tensor:
    """Base (V, D) -> (rows, D) with zero rows appended: FastChat's resize + `[-n:] = 0`."""
    grown = base.new_zeros((rows, *base.shape[1:]))
    grown[: base.shape[0]] = base
    return grown


def add_delta_tensor(name: str, base: torch.Tensor, delta: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """target = base + delta in `dtype` (fp16 in the official recipe). Shapes: equal, or vocab rows growing."""
    base = base.to(dtype)
    delta = delta.to(dtype)
    if base.shape != delta.shape:
        grows_vocab = (
            name in VOCAB_TENSORS
            and base.dim() == 2
            and base.shape[1:] == delta.shape[1:]
            and delta.shape[0] > base.shape[0]
        )
        if not grows_vocab:
            raise CheckpointError(
                f"{name}: base shape {tuple(base.shape)} does not match delta shape {tuple(delta.shape)}; "
                "is the base the right LLaMA size (7B delta needs llama-7b, 13B delta needs llama-13b)?"
            )
        base = _grow_rows(base, delta.shape[0])
    # out of place: a memory-mapped base tensor must not be written through
    return torch.add(base, delta)


def _copy_side_files(base_dir: Path, delta_dir: Path, target_dir: Path, dtype_name: str, vocab: int) -> None:
    """Tokenizer and config from the delta (as FastChat saves `delta_tokenizer`); generation config from base."""
    for source in (base_dir, delta_dir):  # delta second: its files win
        if not source.is_dir():
            continue
        for path in source.iterdir():
            is_weights = path.suffix in WEIGHT_SUFFIXES or path.name in HF_INDEX_NAMES
            if path.is_file() and not is_weights and not path.name.startswith("."):
                if source == base_dir and path.name != "generation_config.json":
                    continue
                shutil.copy2(path, target_dir / path.name)
    config_path = target_dir / "config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text())
        config["vocab_size"] = vocab
        config["torch_dtype"] = dtype_name
        config.pop("dtype", None)
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def apply_delta(
    base_path: str | Path,
    delta_path: str | Path,
    target_path: str | Path,
    max_shard_size: int | str | None = None,
    dtype: str = "float16",
) -> DeltaReport:
    """Write `target = base + delta` as a Hugging Face directory of safetensors shards.

    base_path: local LLaMA directory in HF format (safetensors or .bin shards).
    delta_path: local Vicuna v0 delta directory (e.g. a clone of lmsys/vicuna-13b-delta-v0).
    max_shard_size: output shard size (default: the largest input file, so memory stays at one shard).
    dtype: arithmetic and output dtype; "float16" is the official recipe.
    """
    base_path, delta_path, target_path = Path(base_path), Path(delta_path), Path(target_path)
    if dtype not in DTYPES:
        raise CheckpointError(f"dtype {dtype!r}: expected one of {sorted(DTYPES)}")
    if target_path.resolve() in (base_path.resolve(), delta_path.resolve()):
        raise CheckpointError(f"{target_path}: the target must be a new directory, not the base or the delta")
    base = WeightSource.open(base_path)
    try:
        delta = WeightSource.open(delta_path)
    except CheckpointError as exc:
        raise CheckpointError(
            f"{exc}. The Vicuna v0 delta is obtained from {VICUNA_DELTA_SOURCES['13b']} (13B) or "
            f"{VICUNA_DELTA_SOURCES['7b']} (7B) with `git lfs clone`"
        ) from exc

    base_layout = base.keys_by_file()
    delta_file_of = {key: file for file, keys in delta.keys_by_file().items() for key in keys}
    base_keys = [key for keys in base_layout.values() for key in keys]
    kept = [k for k in base_keys if not k.endswith(DROPPED_SUFFIXES)]
    dropped = [k for k in base_keys if k.endswith(DROPPED_SUFFIXES)]
    missing = [k for k in kept if k not in delta_file_of]
    unused = sorted(
        set(delta_file_of) - set(base_keys) - {k for k in delta_file_of if k.endswith(DROPPED_SUFFIXES)}
    )
    if missing or unused:
        raise CheckpointError(
            f"base {base_path} and delta {delta_path} hold different tensors: "
            f"{len(missing)} base keys missing from the delta (e.g. {missing[:2]}), "
            f"{len(unused)} delta keys not in the base (e.g. {unused[:2]}); both must be LLaMA checkpoints of one size"
        )

    shard_bytes = (
        parse_size(max_shard_size)
        if max_shard_size is not None
        else max(base.largest_file_bytes(), delta.largest_file_bytes())
    )
    writer = ShardWriter(target_path, shard_bytes)
    vocab_size = 0
    for base_file, keys in progress(list(base_layout.items()), desc="apply delta (shards)"):
        keys = [k for k in keys if not k.endswith(DROPPED_SUFFIXES)]
        by_delta_file: dict[Path, list[str]] = defaultdict(list)
        for key in keys:
            by_delta_file[delta_file_of[key]].append(key)
        with TensorFile(base_file) as base_tensors:
            for delta_file, delta_keys in by_delta_file.items():
                with TensorFile(delta_file) as delta_tensors:
                    for key in delta_keys:
                        target = add_delta_tensor(
                            key, base_tensors.get(key), delta_tensors.get(key), DTYPES[dtype]
                        )
                        if key in VOCAB_TENSORS:
                            vocab_size = target.shape[0]
                        writer.add(key, target)  # the writer holds at most one output shard
    shards = writer.close()
    _copy_side_files(base_path, delta_path, target_path, dtype, vocab_size)
    logger.info(
        "wrote %s: %d tensors in %d shard(s), vocab %d", target_path, len(kept), len(shards), vocab_size
    )
    if dropped:
        logger.info("dropped %d rotary_emb.inv_freq buffers (recomputed by transformers)", len(dropped))
    return DeltaReport(target_path, len(kept), writer.total_bytes, shards, vocab_size, dropped)
