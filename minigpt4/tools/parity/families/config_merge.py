"""Parity family `config_merge`: our merge of each official YAML (+ --options) equals the official one.

Documented deviation: our dataset default YAMLs fix two official placeholder typos
(`minigpt4.datasets.official_quirks.PLACEHOLDER_PATH_FIXES`); the same fixes are applied to the
official values before comparing, so nothing else may differ.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from minigpt4.common.config import merge_config
from minigpt4.common.paths import REPO_ROOT
from minigpt4.tools.parity.report import FamilyReport


def placeholder_fixes() -> dict[str, str]:
    try:
        from minigpt4.datasets.official_quirks import PLACEHOLDER_PATH_FIXES
    except ImportError:
        return {}
    return dict(PLACEHOLDER_PATH_FIXES)


def apply_fixes(value: Any, fixes: dict[str, str]) -> Any:
    if isinstance(value, str):
        for wrong, right in fixes.items():
            value = value.replace(wrong, right)
        return value
    if isinstance(value, list):
        return [apply_fixes(v, fixes) for v in value]
    if isinstance(value, dict):
        return {k: apply_fixes(v, fixes) for k, v in value.items()}
    return value


def first_difference(expected: Any, got: Any, where: str = "") -> str | None:
    """Dotted path of the first difference between two JSON-like trees (key order ignored)."""
    if isinstance(expected, dict) and isinstance(got, dict):
        for key in list(expected) + [k for k in got if k not in expected]:
            if key not in got:
                return f"{where}{key} (missing)"
            if key not in expected:
                return f"{where}{key} (unexpected)"
            found = first_difference(expected[key], got[key], f"{where}{key}.")
            if found:
                return found
        return None
    if isinstance(expected, list) and isinstance(got, list) and len(expected) == len(got):
        for index, (e, g) in enumerate(zip(expected, got)):
            found = first_difference(e, g, f"{where}{index}.")
            if found:
                return found
        return None
    same = (expected == got and type(expected) is type(got)) or (
        isinstance(expected, (int, float))
        and isinstance(got, (int, float))
        and not isinstance(got, bool)
        and expected == got
    )
    return None if same else f"{where.rstrip('.')}: expected {expected!r}, got {got!r}"


def _cfg_path(fixture_dir: Path, cfg_path: str) -> Path:
    for base in (fixture_dir, REPO_ROOT):
        if (base / cfg_path).is_file():
            return base / cfg_path
    return REPO_ROOT / cfg_path


def check(path: Path) -> FamilyReport:
    path = Path(path)
    report = FamilyReport("config_merge")
    fixes = placeholder_fixes()
    for case in json.loads((path / "index.json").read_text())["cases"]:
        expected_doc = json.loads((path / case["file"]).read_text())
        what = f"{case['cfg_path']} options={case.get('options')}"
        expected_error = case.get("error")
        try:
            merged = merge_config(_cfg_path(path, case["cfg_path"]), case.get("options"))
            got = OmegaConf.to_container(merged, resolve=False)
        except Exception as exc:
            if expected_error:
                report.exact(what, str(expected_error).split(":")[0], type(exc).__name__)
            else:
                report.error(what, exc)
            continue
        if expected_error:
            report.exact(what, str(expected_error).split(":")[0], "no error")
            continue
        expected = apply_fixes(expected_doc["config"], fixes)
        difference = first_difference(expected, got)
        report.record(difference is None, what, "identical config", difference or "")
    return report
