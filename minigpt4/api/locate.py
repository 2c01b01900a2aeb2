"""Where weights are: explicit arguments, environment variables, a user config file, then the cache folder.

Nothing is hard-coded and nothing is downloaded. For a weight with id `vicuna-7b-v0` the lookup order is:
  1. an argument: `weights={"vicuna-7b-v0": path}` or by config key `weights={"llama_model": path}`;
  2. the environment variable `MINIGPT4_WEIGHT_VICUNA_7B_V0`;
  3. the user config file `$MINIGPT4_WEIGHTS_CONFIG`, default `~/.config/minigpt4/weights.yaml`
     (a mapping `weight id: path`, e.g. `vicuna-7b-v0: /data/vicuna-7b`);
  4. the weights folder `$MINIGPT4_WEIGHTS_DIR`, default `${MINIGPT4_CACHE:-~/.cache/minigpt4}/weights`,
     under the weight's usual file name (e.g. `eva_vit_g.pth`, `vicuna-7b/`).
A missing weight raises `WeightsNotFoundError` naming the file, where to obtain it and these four places.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from minigpt4.common.errors import CheckpointError, ConfigError

ENV_PREFIX = "MINIGPT4_WEIGHT_"
CONFIG_ENV = "MINIGPT4_WEIGHTS_CONFIG"
DIR_ENV = "MINIGPT4_WEIGHTS_DIR"
CACHE_ENV = "MINIGPT4_CACHE"


class WeightsNotFoundError(CheckpointError):
    """A weight file or folder the model needs could not be found in any configured place."""


@dataclass(frozen=True)
class WeightSpec:
    """One weight a zoo model needs.

    config_key: the `model:` key it fills (`llama_model`, `ckpt`, `vit_ckpt`, `q_former_model`) or "model_dir"
        for a whole saved model (a `save_pretrained` folder or a training run folder).
    weight_id: the name used by arguments, environment variables and the user config file.
    filename: its usual file or folder name (looked up in the weights folder).
    what: one line saying what it is.
    source: where to obtain it (URL or recipe).
    is_dir: a folder (HF LLM, saved model) rather than a file.
    """

    config_key: str
    weight_id: str
    filename: str
    what: str
    source: str
    is_dir: bool = False

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + re.sub(r"[^A-Za-z0-9]+", "_", self.weight_id).upper()


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or "~/.cache/minigpt4").expanduser()


def weights_dir() -> Path:
    return Path(os.environ.get(DIR_ENV) or cache_root() / "weights").expanduser()


def user_config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or "~/.config/minigpt4/weights.yaml").expanduser()


def read_user_config(path: Path | None = None) -> dict[str, str]:
    """The `weight id: path` mapping of the user config file ({} when the file does not exist)."""
    path = path or user_config_path()
    if not path.is_file():
        return {}
    try:
        loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception as exc:
        raise ConfigError(
            f"{path}: not a valid YAML weights file ({exc}); expected lines like `eva_vit_g: /path`"
        ) from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping `weight id: path`, got {type(loaded).__name__}")
    entries = loaded.get("weights", loaded)
    return {str(k): str(v) for k, v in entries.items() if v is not None}


def _exists(path: Path, spec: WeightSpec) -> bool:
    return path.is_dir() if spec.is_dir else path.is_file()


def locate(spec: WeightSpec, weights: Mapping[str, str | Path] | None = None) -> Path:
    """The local path of one weight, or WeightsNotFoundError saying which file is needed and where to get it."""
    weights = weights or {}
    tried: list[str] = []
    for origin, value in (
        (f"argument weights[{spec.weight_id!r}]", weights.get(spec.weight_id)),
        (f"argument weights[{spec.config_key!r}]", weights.get(spec.config_key)),
        (f"environment variable {spec.env_var}", os.environ.get(spec.env_var)),
        (f"user config {user_config_path()}", read_user_config().get(spec.weight_id)),
    ):
        if value is None or str(value) == "":
            continue
        path = Path(str(value)).expanduser()
        if _exists(path, spec):
            return path
        tried.append(f"{origin} -> {path} (does not exist)")
    default = weights_dir() / spec.filename
    if _exists(default, spec):
        return default
    raise WeightsNotFoundError(missing_message(spec, tried))


def missing_message(spec: WeightSpec, tried: list[str] | None = None) -> str:
    kind = "folder" if spec.is_dir else "file"
    lines = [
        f"missing weight {spec.weight_id!r}: the {kind} {spec.filename} ({spec.what}), used as model.{spec.config_key}.",
        f"  Obtain it from: {spec.source}",
        "  Then point to it in one of these ways:",
        f"    - argument: weights={{'{spec.weight_id}': '/path/to/{spec.filename}'}}",
        f"    - environment: export {spec.env_var}=/path/to/{spec.filename}",
        f"    - user config {user_config_path()}: a line `{spec.weight_id}: /path/to/{spec.filename}`",
        f"    - or place it at {weights_dir() / spec.filename}",
    ]
    lines.extend(f"  Tried: {attempt}" for attempt in tried or [])
    return "\n".join(lines)
