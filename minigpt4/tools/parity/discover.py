"""Find the families of a fixture directory and count their cases.

A directory is one of:
* a model variant: it holds `config.json` and `expected.json` (families come from its checker: MiniGPT-5
  fixtures, whose config names the vokens, have their own);
* a collection of variants: subdirectories that are model variants (e.g. `models/`);
* a function-fixture folder: every `NAME.json` file or `NAME/` folder is the family NAME.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

IGNORED_FILES = {"README.md", "index.json"}


def is_model_variant(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "expected.json").is_file()


def variant_checker(path: Path) -> str:
    """The family module that checks a model variant: MiniGPT-5 fixtures (their config names the vokens) have
    their own checker; MiniGPT-4 / v2 variants share `model_variant`."""
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return "model_variant"
    if isinstance(config, dict) and ("IMG_TOKEN_NUM" in config or "ALL_IMG_TOKENS" in config):
        return "minigpt5_variant"
    return "model_variant"


def model_variants(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and is_model_variant(p))


def function_families(path: Path) -> dict[str, Path]:
    """Family name -> its file or folder, in name order."""
    families = {}
    for entry in sorted(path.iterdir()):
        if entry.name in IGNORED_FILES or entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix == ".json":
            families[entry.stem] = entry
        elif entry.is_dir():
            families[entry.name] = entry
    return families


def _count_cases(data: Any) -> int:
    if isinstance(data, list):
        return len(data)
    if isinstance(data, dict):
        counted = [len(v) for k, v in data.items() if "case" in k and isinstance(v, (list, dict))]
        if counted:
            return sum(counted)
        if "steps" in data and isinstance(data["steps"], list):
            return len(data["steps"])
    return 1


def count_cases(path: Path) -> int:
    """A best-effort number of cases, shown as n in `NAME FAIL 0/n (not implemented)`."""
    try:
        if path.is_file():
            return max(1, _count_cases(json.loads(path.read_text())))
        for index_name in ("index.json", "cases.json"):
            index = path / index_name
            if index.is_file():
                return max(1, _count_cases(json.loads(index.read_text())))
        return max(1, len(list(path.glob("*.json"))))
    except (OSError, ValueError):
        return 1
