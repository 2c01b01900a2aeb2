"""Load a user YAML and merge it with the model and dataset defaults, in the official order.

Merge order (later wins), as the official `Config`:
  1. `run` from the user YAML;
  2. the model's default YAML, chosen by `model.arch` + `model.model_type` **of the user YAML** (an
     `--options model.model_type=...` override does not change which default is loaded, as officially),
     merged with the user's `model` node;
  3. for each dataset, the builder's default YAML chosen by its `type` (default "default"), merged with the
     user's block;
  4. `evaluation_datasets`, verbatim;
  5. `--options key=value ...` (or the official alternating `key value` form).

Unlike the official code, `Config` validates the result (`schema.py`) before any model or data work.
`merge_config` is the faithful merge alone; the parity family `config_merge` compares it with the official one.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from minigpt4.common.errors import ConfigError
from minigpt4.common.paths import DATASET_CONFIG_ROOT, MODEL_CONFIG_ROOT, REPO_ROOT
from minigpt4.common.registry import closest_name


def load_yaml(path: str | Path) -> DictConfig:
    """Load a YAML file, or raise ConfigError naming it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        loaded = OmegaConf.load(path)
    except (OmegaConfBaseException, OSError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not a valid YAML file ({exc})") from exc
    if not isinstance(loaded, DictConfig):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(loaded).__name__}")
    return loaded


def options_to_dotlist(options: Sequence[str] | None) -> list[str]:
    """`["a.b=1", "c=2"]` stays; the official alternating form `["a.b", "1", "c", "2"]` becomes the former."""
    if not options:
        return []
    options = list(options)
    if "=" in options[0]:
        bad = [o for o in options if "=" not in o]
        if bad:
            raise ConfigError(f"--options: expected key=value, got {bad[0]!r}")
        return options
    if len(options) % 2:
        raise ConfigError(f"--options: expected key=value pairs or alternating key value, got {options}")
    return [f"{key}={value}" for key, value in zip(options[0::2], options[1::2])]


def _choices(folder: Path, suffix: str = "") -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(
        p.stem if suffix else p.name
        for p in folder.iterdir()
        if (p.suffix == suffix if suffix else p.is_dir())
    )


def model_default_path(arch: str, model_type: str, source: str = "") -> Path:
    """`configs/models/<arch>/<model_type>.yaml`, or a registered class's PRETRAINED_MODEL_CONFIG_DICT entry."""
    path = MODEL_CONFIG_ROOT / arch / f"{model_type}.yaml"
    if path.is_file():
        return path
    where = f"{source}: " if source else ""
    archs = _choices(MODEL_CONFIG_ROOT)
    if arch not in archs:
        from_registry = _registered_default(
            "get_model_class", arch, "PRETRAINED_MODEL_CONFIG_DICT", model_type
        )
        if from_registry is not None:
            return from_registry
        hint = closest_name(arch, archs)
        did_you_mean = f" (did you mean {hint!r}?)" if hint else ""
        raise ConfigError(
            f"{where}model.arch {arch!r} is not a known model{did_you_mean}; known: {', '.join(archs)}"
        )
    types = _choices(MODEL_CONFIG_ROOT / arch, ".yaml")
    hint = closest_name(model_type, types)
    did_you_mean = f" (did you mean {hint!r}?)" if hint else ""
    raise ConfigError(
        f"{where}model.model_type {model_type!r} is not a type of {arch!r}{did_you_mean}; known: {', '.join(types)}"
    )


def _registered_default(lookup: str, name: str, table_name: str, config_type: str) -> Path | None:
    """A default YAML declared by a user-registered class (outside the package), as LAVIS classes declare them."""
    from minigpt4.common.errors import RegistryError
    from minigpt4.common.registry import registry

    try:
        registered = getattr(registry, lookup)(name)
    except RegistryError:
        return None
    table = getattr(registered, table_name, {})
    return Path(table[config_type]) if config_type in table else None


def dataset_default_path(name: str, dataset_type: str, source: str = "") -> Path:
    """`configs/datasets/<builder>/<type>.yaml`, or a registered builder's DATASET_CONFIG_DICT entry."""
    path = DATASET_CONFIG_ROOT / name / f"{dataset_type}.yaml"
    if path.is_file():
        return path
    where = f"{source}: " if source else ""
    names = _choices(DATASET_CONFIG_ROOT)
    if name in names:
        types = _choices(DATASET_CONFIG_ROOT / name, ".yaml")
        raise ConfigError(
            f"{where}datasets.{name}.type {dataset_type!r} is unknown; known: {', '.join(types)}"
        )
    from_registry = _registered_default("get_builder_class", name, "DATASET_CONFIG_DICT", dataset_type)
    if from_registry is not None:
        return from_registry
    hint = closest_name(name, names)
    did_you_mean = f" (did you mean datasets.{hint}?)" if hint else ""
    raise ConfigError(
        f"{where}datasets.{name} is not a known dataset builder{did_you_mean}; known: {', '.join(names)}"
    )


def _resolve_user_path(cfg_path: str | Path) -> Path:
    """A config path as given, or relative to the repository (so `train_configs/x.yaml` works from anywhere)."""
    path = Path(cfg_path)
    if path.is_file() or path.is_absolute():
        return path
    in_repo = REPO_ROOT / path
    return in_repo if in_repo.is_file() else path


def merge_config(cfg_path: str | Path, options: Sequence[str] | None = None) -> DictConfig:
    """The official merge, without validation. Returns the merged (unresolved) DictConfig."""
    path = _resolve_user_path(cfg_path)
    user = load_yaml(path)
    source = str(cfg_path)

    parts: list[Any] = [OmegaConf.create({"run": user.get("run", {})})]

    model = user.get("model")
    if model is not None:
        arch, model_type = model.get("arch"), model.get("model_type")
        if arch is None:
            raise ConfigError(f"{source}: model.arch is missing (expected e.g. minigpt4 or minigpt_v2)")
        if model_type is None:
            raise ConfigError(
                f"{source}: model.model_type is missing (e.g. pretrain_vicuna0, pretrain_llama2, pretrain)"
            )
        default = load_yaml(model_default_path(str(arch), str(model_type), source))
        parts.append(OmegaConf.merge(default, {"model": model}))

    datasets = user.get("datasets")
    if datasets is not None:
        if not isinstance(datasets, DictConfig):
            raise ConfigError(f"{source}: datasets must be a mapping of builder name -> settings")
        merged_datasets = OmegaConf.create({})
        for name in datasets:
            block = datasets[name] if datasets[name] is not None else OmegaConf.create({})
            dataset_type = block.get("type", "default")
            default = load_yaml(dataset_default_path(str(name), str(dataset_type), source))
            merged_datasets = OmegaConf.merge(merged_datasets, default, {"datasets": {name: block}})
        parts.append(merged_datasets)

    if user.get("evaluation_datasets") is not None:
        parts.append(OmegaConf.create({"evaluation_datasets": user.evaluation_datasets}))

    dotlist = options_to_dotlist(options)
    try:
        parts.append(OmegaConf.from_dotlist(dotlist))
    except OmegaConfBaseException as exc:
        raise ConfigError(f"--options: cannot parse {dotlist} ({exc})") from exc
    return OmegaConf.merge(*parts)


class Config:
    """The official `Config(args)`: `args.cfg_path`, `args.options`; validated after merging.

    `purpose` selects which keys are required: "train" (train.py), "eval" (eval scripts), "chat" (demos, API).
    """

    def __init__(self, args: argparse.Namespace | Any, purpose: str = "train") -> None:
        from minigpt4.common.schema import validate_config

        self.args = args
        self.cfg_path = str(args.cfg_path)
        self.options = list(getattr(args, "options", None) or [])
        self.config = merge_config(self.cfg_path, self.options)
        # the official merge silently drops unknown top-level sections: check the user's file itself
        user_sections = list(load_yaml(_resolve_user_path(self.cfg_path)))
        validate_config(
            self.config,
            source=self.cfg_path,
            options=self.options,
            purpose=purpose,
            user_sections=user_sections,
        )
        from minigpt4.common.registry import registry

        registry.register("configuration", self)

    @classmethod
    def from_path(
        cls, cfg_path: str | Path, options: Sequence[str] | None = None, purpose: str = "train"
    ) -> Config:
        return cls(argparse.Namespace(cfg_path=str(cfg_path), options=list(options or [])), purpose=purpose)

    @property
    def run_cfg(self) -> DictConfig:
        return self.config.run

    @property
    def model_cfg(self) -> DictConfig:
        return self.config.model

    @property
    def datasets_cfg(self) -> DictConfig:
        return self.config.datasets

    @property
    def evaluation_datasets_cfg(self) -> DictConfig:
        return self.config.get("evaluation_datasets", OmegaConf.create({}))

    def to_dict(self, resolve: bool = True) -> dict:
        return OmegaConf.to_container(self.config, resolve=resolve)

    def pretty_print(self) -> str:
        return OmegaConf.to_yaml(self.config)
