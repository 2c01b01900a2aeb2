"""Run every family of a fixture directory and print one line per family, then a total."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from pathlib import Path

from minigpt4.tools.parity.discover import (
    count_cases,
    function_families,
    is_model_variant,
    model_variants,
    variant_checker,
)
from minigpt4.tools.parity.report import FamilyReport

FAMILY_PACKAGE = "minigpt4.tools.parity.families"


def _load_checker(module_name: str):
    """The family's `check` function, or None when no module implements it yet."""
    try:
        module = importlib.import_module(f"{FAMILY_PACKAGE}.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"{FAMILY_PACKAGE}.{module_name}":
            return None
        raise
    return module.check


def _as_list(result) -> list[FamilyReport]:
    return result if isinstance(result, list) else [result]


def run_family(name: str, path: Path) -> list[FamilyReport]:
    checker = _load_checker(name)
    if checker is None:
        return [FamilyReport(name, total=count_cases(path), not_implemented=True)]
    try:
        return _as_list(checker(path))
    except Exception as exc:  # a crash in one family must not hide the others
        report = FamilyReport(name, total=count_cases(path))
        report.first_failure = f"checker crashed: {type(exc).__name__}: {exc}"
        logging.getLogger(__name__).debug("%s", traceback.format_exc())
        return [report]


def run_model_variant(path: Path, prefix: str = "") -> list[FamilyReport]:
    checker = _load_checker(variant_checker(path))
    if checker is None:
        return [
            FamilyReport(f"{prefix}model", total=count_cases(path / "expected.json"), not_implemented=True)
        ]
    try:
        reports = _as_list(checker(path))
    except Exception as exc:
        report = FamilyReport(f"{prefix}model", total=1)
        report.first_failure = f"checker crashed: {type(exc).__name__}: {exc}"
        logging.getLogger(__name__).debug("%s", traceback.format_exc())
        return [report]
    for report in reports:
        report.name = prefix + report.name
    return reports


def run_directory(path: Path) -> list[FamilyReport]:
    if is_model_variant(path):
        return run_model_variant(path)
    variants = model_variants(path)
    if variants:
        return [r for v in variants for r in run_model_variant(v, prefix=f"{v.name}/")]
    return [r for name, entry in function_families(path).items() for r in run_family(name, entry)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m minigpt4.tools.parity",
        description="Compare minigpt4 with reference outputs of the official code.",
    )
    parser.add_argument(
        "directory",
        type=Path,
        help="a fixture directory (functions/, models/, models/<variant>/, minigpt5/ or minigpt5/<stage>/)",
    )
    parser.add_argument("--verbose", action="store_true", help="print tracebacks of crashed checkers")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.ERROR, format="%(message)s")
    if not args.directory.is_dir():
        print(f"parity: {args.directory} is not a directory", file=sys.stderr)
        return 2
    reports = run_directory(args.directory)
    for report in reports:
        print(report.line(), flush=True)
    passed = sum(r.ok for r in reports)
    cases_passed = sum(r.passed for r in reports)
    cases_total = sum(r.total for r in reports)
    all_ok = bool(reports) and passed == len(reports)
    status = "PASS" if all_ok else "FAIL"
    print(f"total {status} {passed}/{len(reports)} families, {cases_passed}/{cases_total} cases")
    return 0 if all_ok else 1
