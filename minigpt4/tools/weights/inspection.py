"""`inspect`: keys, shapes, dtypes and parameter counts of a checkpoint, and which model/variant it fits.

Reads shapes only (safetensors headers; memory-mapped `torch.load` for .pth/.bin), so inspecting a 13B
directory costs no memory. A folder of official files (eva_vit.pth, qformer.pth, a MiniGPT checkpoint, an
LLM directory) is inspected file by file, and the widths of the vision files resolve which MiniGPT-4
variant a projection-only checkpoint belongs to.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from minigpt4.common.errors import CheckpointError
from minigpt4.models.checkpoint_shards import (
    HF_INDEX_NAMES,
    HF_SINGLE_NAMES,
    SAFETENSORS_SUFFIX,
    WEIGHT_SUFFIXES,
    TensorFile,
    WeightSource,
    safetensors_header,
)
from minigpt4.tools.weights.identify import Identification, Shape, identify

SAFETENSORS_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64", "I32": "int32",
    "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
}  # fmt: skip
SAVED_MODEL_CONFIG = "minigpt4_config.yaml"  # minigpt4.api.hub.CONFIG_NAME (kept import-free here)
DTYPE_BYTES = {"float64": 8, "int64": 8, "float32": 4, "int32": 4, "float16": 2, "bfloat16": 2, "int16": 2}


@dataclass
class TensorInfo:
    shape: Shape
    dtype: str

    @property
    def numel(self) -> int:
        total = 1
        for dim in self.shape:
            total *= dim
        return total


@dataclass
class CheckpointSummary:
    path: str
    files: int
    tensors: dict[str, TensorInfo]
    other_entries: list[str]  # non-tensor entries of the file (optimizer, config, epoch, ...)
    identification: Identification
    groups: dict[str, list[int]] = field(default_factory=dict)  # top-level prefix -> [tensors, params]

    @property
    def num_params(self) -> int:
        return sum(info.numel for info in self.tensors.values())

    @property
    def num_bytes(self) -> int:
        return sum(info.numel * DTYPE_BYTES.get(info.dtype, 1) for info in self.tensors.values())

    @property
    def dtypes(self) -> dict[str, int]:
        return dict(Counter(info.dtype for info in self.tensors.values()))

    def to_dict(self, with_keys: bool = False) -> dict[str, Any]:
        data = {
            "path": self.path,
            "files": self.files,
            "num_tensors": len(self.tensors),
            "num_params": self.num_params,
            "num_bytes": self.num_bytes,
            "dtypes": self.dtypes,
            "other_entries": self.other_entries,
            "groups": self.groups,
            "identification": asdict(self.identification),
        }
        if with_keys:
            data["tensors"] = {k: {"shape": list(v.shape), "dtype": v.dtype} for k, v in self.tensors.items()}
        return data


def read_tensor_infos(path: Path) -> tuple[dict[str, TensorInfo], list[str], int, Any]:
    """{key: TensorInfo} of a file or HF directory, the wrapper's other entries, the number of files, and the
    run config stored in the file (official runner checkpoints) or beside it (saved model folders), if any."""
    source = WeightSource.open(path)
    infos: dict[str, TensorInfo] = {}
    other: list[str] = []
    run_config: Any = None
    saved_config = path / SAVED_MODEL_CONFIG if path.is_dir() else None
    if saved_config is not None and saved_config.is_file():
        from omegaconf import OmegaConf

        run_config = OmegaConf.to_container(OmegaConf.load(saved_config))
    for file in source.files:
        if file.suffix == SAFETENSORS_SUFFIX:
            for key, entry in safetensors_header(file).items():
                infos[key] = TensorInfo(
                    tuple(entry["shape"]), SAFETENSORS_DTYPES.get(entry["dtype"], entry["dtype"])
                )
            continue
        with TensorFile(file) as opened:
            other.extend(opened.extra_keys)
            run_config = run_config if opened.run_config is None else opened.run_config
            for key in opened.names():
                tensor = opened.get(key)
                infos[key] = TensorInfo(tuple(tensor.shape), str(tensor.dtype).removeprefix("torch."))
    return infos, other, len(source.files), run_config


def _config_model(run_config: Any) -> str | None:
    """`arch/model_type` named by a stored config, or None."""
    model = run_config.get("model") if isinstance(run_config, dict) else None
    if isinstance(model, dict) and model.get("arch") and model.get("model_type"):
        return f"{model['arch']}/{model['model_type']}"
    return None


def _groups(tensors: dict[str, TensorInfo]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for key, info in tensors.items():
        prefix = key.split(".")[0]
        entry = groups.setdefault(prefix, [0, 0])
        entry[0] += 1
        entry[1] += info.numel
    return groups


def _match_config_files(found: Identification) -> None:
    """Non-official sizes: name the model types (configs/models YAMLs) whose shapes the checkpoint has."""
    proj = found.details.get("llama_proj")
    if proj is None or found.details.get("official_size"):
        return
    from minigpt4.tools.weights.fits import fitting_model_types

    lora = found.details.get("lora") or {}
    rank = lora.get("rank", 0) if isinstance(lora.get("rank", 0), int) else -1
    fits = fitting_model_types(tuple(proj), rank)
    found.details["fits_configs"] = fits
    if len(fits) == 1 and (found.model is None or found.model.split("/")[0] == fits[0].split("/")[0]):
        found.model = fits[0]
        found.candidates = []


def inspect_checkpoint(
    path: str | Path, vit_width: int | None = None, qformer_width: int | None = None
) -> CheckpointSummary:
    """Summarise one weight file or one Hugging Face directory and identify it."""
    path = Path(path).expanduser()
    tensors, other, files, run_config = read_tensor_infos(path)
    shapes = {key: info.shape for key, info in tensors.items()}
    found = identify(shapes, vit_width=vit_width, qformer_width=qformer_width)
    _match_config_files(found)
    configured = _config_model(run_config)
    if configured is not None:
        # the stored config names the exact model type (e.g. a tiny one); shapes alone give only the family
        found.details["config_model"] = configured
        if found.model is None or found.model.split("/")[0] == configured.split("/")[0]:
            found.model = configured
            found.candidates = []
    return CheckpointSummary(str(path), files, tensors, other, found, _groups(tensors))


def _is_hf_directory(path: Path) -> bool:
    return any((path / name).is_file() for name in (*HF_INDEX_NAMES, *HF_SINGLE_NAMES))


def inspect_path(
    path: str | Path, vit_width: int | None = None, qformer_width: int | None = None
) -> list[CheckpointSummary]:
    """A file or HF directory -> one summary; a folder of checkpoints -> one per file and per HF subfolder.

    In a folder, the EVA width and Q-Former width found in sibling files resolve which MiniGPT-4
    variant a projection-only checkpoint belongs to (unless given explicitly).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or directory")
    if path.is_file() or _is_hf_directory(path):
        return [inspect_checkpoint(path, vit_width, qformer_width)]
    members = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    members += sorted(p for p in path.iterdir() if p.is_dir() and _is_hf_directory(p))
    if not members:
        raise CheckpointError(
            f"{path}: no weight files ({', '.join(WEIGHT_SUFFIXES)}) or Hugging Face folders inside"
        )
    summaries = [inspect_checkpoint(member) for member in members]
    for summary in summaries:
        found = summary.identification
        if found.kind == "eva_vit" and vit_width is None:
            vit_width = found.details["width"]
        if found.kind == "blip2_qformer" and qformer_width is None:
            qformer_width = found.details["hidden"]
    return [
        inspect_checkpoint(s.path, vit_width, qformer_width) if s.identification.kind == "minigpt4" else s
        for s in summaries
    ]


def format_summary(summary: CheckpointSummary, with_keys: bool = False) -> str:
    found = summary.identification
    lines = [
        f"{summary.path}",
        f"  identified : {found.description}",
    ]
    if found.model:
        lines.append(f"  fits model : {found.model}")
    lines.extend(f"  candidate  : {candidate}" for candidate in found.candidates)
    dtypes = ", ".join(f"{dtype} x{count}" for dtype, count in sorted(summary.dtypes.items()))
    lines.append(
        f"  tensors    : {len(summary.tensors)} in {summary.files} file(s), {summary.num_params:,} params, "
        f"{summary.num_bytes / 2**20:.1f} MiB ({dtypes})"
    )
    if summary.other_entries:
        lines.append(f"  also holds : {', '.join(summary.other_entries)}")
    for prefix, (count, params) in sorted(summary.groups.items()):
        lines.append(f"    {prefix:<24} {count:>6} tensors {params:>16,} params")
    if found.details:
        lines.append(f"  details    : {json.dumps(found.details, default=str)}")
    if with_keys:
        lines.extend(f"    {key}  {list(info.shape)}  {info.dtype}" for key, info in summary.tensors.items())
    return "\n".join(lines)
