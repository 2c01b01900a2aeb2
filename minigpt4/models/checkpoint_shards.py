"""Stream tensors out of weight files and write sharded safetensors, one shard in memory at a time.

Readers never materialise a whole model: safetensors files are opened with `safe_open` (memory-mapped,
tensor by tensor) and `.bin`/`.pth` files with `torch.load(mmap=True, weights_only=True)` (lazy pages).
A Hugging Face directory is read through its `*.index.json` weight map when it has one.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from minigpt4.common.errors import CheckpointError

logger = logging.getLogger(__name__)

SAFETENSORS_SUFFIX = ".safetensors"
PICKLE_SUFFIXES = (".bin", ".pth", ".pt", ".ckpt")
WEIGHT_SUFFIXES = (SAFETENSORS_SUFFIX, *PICKLE_SUFFIXES)
# Files of a Hugging Face directory that hold weights, in the order transformers prefers them.
HF_INDEX_NAMES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
HF_SINGLE_NAMES = ("model.safetensors", "pytorch_model.bin")
# Official training checkpoints wrap the state dict: {"model": ..., "optimizer": ..., "config": ..., "epoch": ...}.
STATE_DICT_WRAPPER_KEYS = ("model", "state_dict", "module")

_SIZE_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def parse_size(size: int | str) -> int:
    """`"2GB"`, `"500MB"`, `"64KiB"` or an int number of bytes -> bytes."""
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(size))
    if not match or match.group(2).upper() not in _SIZE_UNITS:
        raise CheckpointError(
            f"max shard size {size!r}: expected bytes or a size like '2GB', '500MB', '64KiB'"
        )
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).upper()])


def tensor_nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


def unwrap_state_dict(obj: Any, source: Path | str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The tensor dict inside a loaded checkpoint, and the names of the wrapper's other entries.

    Accepts a flat dict of tensors (eva_vit_g.pth, HF .bin shards) or one wrapped under
    "model"/"state_dict"/"module" (official runner checkpoints, BLIP-2 files).
    """
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source}: expected a dict of tensors, got {type(obj).__name__}")
    for wrapper in STATE_DICT_WRAPPER_KEYS:
        inner = obj.get(wrapper)
        if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
            return dict(inner), [k for k in obj if k != wrapper]
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(
            f"{source}: no tensors found at the top level or under {list(STATE_DICT_WRAPPER_KEYS)}; "
            f"top-level keys are {list(obj)[:8]}"
        )
    return tensors, [k for k in obj if k not in tensors]


def load_pickle_checkpoint(path: Path) -> Any:
    """`torch.load` with weights_only=True, memory-mapped when the file is in the zip format."""
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc) and "zip" not in str(exc):
                raise
            # legacy (pre-zip) pickles cannot be memory-mapped; they are read whole
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors have no common base class
        raise CheckpointError(
            f"{path}: cannot be read with torch.load(weights_only=True) ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0]}); the file may be truncated, or hold objects other than tensors"
        ) from exc


class TensorFile:
    """Read access to the tensors of one file. Use as a context manager so mapped pages are released."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._safe: Any = None
        self._tensors: dict[str, torch.Tensor] | None = None
        self.extra_keys: list[str] = []
        self.run_config: Any = None  # the "config" entry of an official runner checkpoint, if any

    def __enter__(self) -> TensorFile:
        if self.path.suffix == SAFETENSORS_SUFFIX:
            try:
                self._safe = safe_open(str(self.path), framework="pt", device="cpu")
            except Exception as exc:
                raise CheckpointError(f"{self.path}: not a readable safetensors file ({exc})") from exc
        else:
            loaded = load_pickle_checkpoint(self.path)
            self._tensors, self.extra_keys = unwrap_state_dict(loaded, self.path)
            if "config" in self.extra_keys:
                self.run_config = loaded["config"]
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._safe = None
        self._tensors = None

    def names(self) -> list[str]:
        return list(self._safe.keys()) if self._safe is not None else list(self._tensors or {})

    def get(self, key: str) -> torch.Tensor:
        if self._safe is not None:
            return self._safe.get_tensor(key)
        assert self._tensors is not None, "TensorFile used outside its `with` block"
        return self._tensors[key]

    def metadata(self) -> dict[str, str]:
        return dict(self._safe.metadata() or {}) if self._safe is not None else {}


def safetensors_header(path: Path) -> dict[str, dict[str, Any]]:
    """{key: {"dtype", "shape"}} from a safetensors header, without reading any tensor data."""
    with open(path, "rb") as handle:
        length = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(length))
    header.pop("__metadata__", None)
    return header


@dataclass
class WeightSource:
    """The weight files of a checkpoint: one file, or a Hugging Face directory (sharded or not)."""

    root: Path
    files: list[Path]
    weight_map: dict[str, Path] = field(default_factory=dict)  # key -> file, when an index says so

    @classmethod
    def open(cls, path: str | Path) -> WeightSource:
        path = Path(path).expanduser()
        if path.is_file():
            if path.suffix not in WEIGHT_SUFFIXES:
                raise CheckpointError(
                    f"{path}: not a weight file (expected one of {', '.join(WEIGHT_SUFFIXES)})"
                )
            return cls(root=path.parent, files=[path])
        if not path.is_dir():
            raise CheckpointError(f"{path}: no such file or directory")
        for index_name in HF_INDEX_NAMES:
            index_path = path / index_name
            if index_path.is_file():
                weight_map = json.loads(index_path.read_text()).get("weight_map") or {}
                if not weight_map:
                    raise CheckpointError(f"{index_path}: has no weight_map")
                files = sorted({path / name for name in weight_map.values()})
                missing = [f.name for f in files if not f.is_file()]
                if missing:
                    raise CheckpointError(f"{index_path}: lists shard files that are missing: {missing[:4]}")
                return cls(path, files, {key: path / name for key, name in weight_map.items()})
        for single in HF_SINGLE_NAMES:
            if (path / single).is_file():
                return cls(path, [path / single])
        shards = sorted(p for suffix in WEIGHT_SUFFIXES for p in path.glob(f"*{suffix}"))
        if not shards:
            raise CheckpointError(
                f"{path}: no weight files (expected {HF_INDEX_NAMES[0]}, {HF_SINGLE_NAMES[0]} or *.bin shards)"
            )
        return cls(path, shards)

    @property
    def is_directory(self) -> bool:
        return len(self.files) > 1 or bool(self.weight_map) or self.files[0].name in HF_SINGLE_NAMES

    def largest_file_bytes(self) -> int:
        return max(f.stat().st_size for f in self.files)

    def keys_by_file(self) -> dict[Path, list[str]]:
        """Which keys live in which file; reads only headers (safetensors) or the index."""
        if self.weight_map:
            grouped: dict[Path, list[str]] = {f: [] for f in self.files}
            for key, file in self.weight_map.items():
                grouped[file].append(key)
            return grouped
        grouped = {}
        for file in self.files:
            if file.suffix == SAFETENSORS_SUFFIX:
                grouped[file] = list(safetensors_header(file))
            else:
                with TensorFile(file) as opened:
                    grouped[file] = opened.names()
        return grouped

    def iter_files(self) -> Iterator[TensorFile]:
        for file in self.files:
            with TensorFile(file) as opened:
                yield opened


@contextmanager
def open_tensor_file(path: Path) -> Iterator[TensorFile]:
    with TensorFile(path) as opened:
        yield opened


class ShardWriter:
    """Collect tensors and write `model-0000k-of-0000N.safetensors` shards plus the index, as transformers does.

    At most one shard (`max_shard_bytes`, or one larger tensor) is held in memory at any time.
    A single resulting shard is named `model.safetensors` with no index.
    """

    def __init__(self, out_dir: Path, max_shard_bytes: int, prefix: str = "model") -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.max_shard_bytes = max_shard_bytes
        self.prefix = prefix
        self._pending: dict[str, torch.Tensor] = {}
        self._pending_bytes = 0
        self._written: list[tuple[Path, list[str]]] = []
        self.total_bytes = 0

    def add(self, key: str, tensor: torch.Tensor) -> None:
        size = tensor_nbytes(tensor)
        if self._pending and self._pending_bytes + size > self.max_shard_bytes:
            self.flush()
        # clone only views: safetensors refuses tensors that share storage or are not contiguous
        if not tensor.is_contiguous() or tensor.untyped_storage().nbytes() != size:
            tensor = tensor.contiguous().clone()
        self._pending[key] = tensor
        self._pending_bytes += size
        self.total_bytes += size

    def flush(self) -> None:
        if not self._pending:
            return
        path = self.out_dir / f".{self.prefix}-part{len(self._written):05d}{SAFETENSORS_SUFFIX}"
        save_file(self._pending, str(path), metadata={"format": "pt"})
        self._written.append((path, list(self._pending)))
        logger.debug("wrote %s (%d tensors, %d bytes)", path.name, len(self._pending), self._pending_bytes)
        self._pending = {}
        self._pending_bytes = 0

    def close(self) -> list[Path]:
        """Write the last shard, give shards their final names, write the index. Returns the shard paths."""
        self.flush()
        if not self._written:
            raise CheckpointError(f"{self.out_dir}: nothing to write (no tensors were added)")
        if len(self._written) == 1:
            final = self.out_dir / f"{self.prefix}{SAFETENSORS_SUFFIX}"
            self._written[0][0].replace(final)
            return [final]
        count = len(self._written)
        weight_map: dict[str, str] = {}
        finals = []
        for number, (temp_path, keys) in enumerate(self._written, start=1):
            final = self.out_dir / f"{self.prefix}-{number:05d}-of-{count:05d}{SAFETENSORS_SUFFIX}"
            temp_path.replace(final)
            finals.append(final)
            weight_map.update(dict.fromkeys(keys, final.name))
        index = {"metadata": {"total_size": self.total_bytes}, "weight_map": weight_map}
        index_path = self.out_dir / f"{self.prefix}{SAFETENSORS_SUFFIX}.index.json"
        index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
        return finals
