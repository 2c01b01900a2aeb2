"""Layers of minigpt4/ only point down: imports between top-level subpackages, read with `ast` (nothing imported).

    common <- models, processors, datasets <- tasks, runners, evaluation <- conversation <- api <- cli, tools

Fails on a cycle between two subpackages and on the forbidden arrows of FORBIDDEN (kept here, so a plain clone
checks itself). Lazy imports inside functions count too: they are arrows all the same.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "minigpt4"
LIBRARY_TOP = {"tools", "cli", "quickstart"}  # what people run sits above the library
FORBIDDEN: dict[str, set[str] | str] = {
    "common": "*",  # common imports no other part
    "models": {"datasets", "tasks", "runners", "conversation", "evaluation", "api"} | LIBRARY_TOP,
    "processors": {"models", "tasks", "runners", "conversation", "evaluation", "api"} | LIBRARY_TOP,
    "datasets": {"models", "tasks", "runners", "conversation", "evaluation", "api"} | LIBRARY_TOP,
    "conversation": {"tasks", "runners", "evaluation", "api", "datasets"} | LIBRARY_TOP,
    "tasks": {"conversation", "api"} | LIBRARY_TOP,
    "runners": {"conversation", "api"} | LIBRARY_TOP,
    "evaluation": {"api"} | LIBRARY_TOP,
    "api": LIBRARY_TOP,
}


def imported_modules(source: str, module: str, is_package: bool) -> list[tuple[str, int]]:
    """(absolute module name, line) of every import in `source`, relative imports resolved against `module`."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[: len(package) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.append((base, node.lineno))
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return found


def arrows(package_dir: Path) -> dict[tuple[str, str], str]:
    """{(from part, to part): first place} for the imports between top-level subpackages of `package_dir`."""
    name = package_dir.name
    parts = {
        path.name for path in package_dir.iterdir() if path.is_dir() and (path / "__init__.py").is_file()
    }

    def part_of(module: str) -> str | None:
        bits = module.split(".")
        return bits[1] if len(bits) > 1 and bits[0] == name and bits[1] in parts else None

    found: dict[tuple[str, str], str] = {}
    for file in sorted(package_dir.rglob("*.py")):
        relative = file.relative_to(package_dir.parent).with_suffix("")
        is_package = relative.name == "__init__"
        module = ".".join(relative.parts[:-1] if is_package else relative.parts)
        source_part = part_of(module)
        if source_part is None:
            continue
        for imported, line in imported_modules(file.read_text(), module, is_package):
            target = part_of(imported)
            if target and target != source_part:
                found.setdefault((source_part, target), f"{file.relative_to(package_dir.parent)}:{line}")
    return found


def violations(found: dict[tuple[str, str], str], forbidden: dict[str, set[str] | str]) -> list[str]:
    """Forbidden arrows and two-way pairs (a cycle of any length contains a forbidden arrow or a pair; a longer
    one among allowed arrows is caught by `cycles`)."""
    bad = []
    for (source, target), where in sorted(found.items()):
        rule = forbidden.get(source, set())
        if rule == "*" or target in rule:
            bad.append(f"{source} -> {target} ({where})")
    return bad + [f"cycle {' -> '.join(cycle)}" for cycle in cycles(set(found))]


def cycles(edges: set[tuple[str, str]]) -> list[list[str]]:
    """One cycle per strongly connected group of parts (depth-first search), e.g. [a, b, a]."""
    graph: dict[str, set[str]] = {}
    for source, target in edges:
        graph.setdefault(source, set()).add(target)
    found, seen = [], set()

    def visit(node: str, path: list[str]) -> None:
        for target in sorted(graph.get(node, ())):
            if target in path:
                cycle = [*path[path.index(target) :], target]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    found.append(cycle)
            elif len(path) < len(graph) + 1:
                visit(target, [*path, target])

    for start in sorted(graph):
        visit(start, [start])
    return found


def test_the_package_layers_point_down():
    found = arrows(PACKAGE)
    assert found, "no imports between subpackages were read: is PACKAGE right?"
    assert violations(found, FORBIDDEN) == []


def write_package(root: Path, files: dict[str, str]) -> Path:
    for relative, source in files.items():
        path = root / "pkg" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root / "pkg"


def test_a_forbidden_arrow_is_reported_with_its_place(tmp_path):
    package = write_package(
        tmp_path,
        {
            "__init__.py": "",
            "common/__init__.py": "",
            "models/__init__.py": "",
            "models/net.py": "import os\n\ndef f():\n    from pkg.datasets.files import x\n",
            "datasets/__init__.py": "",
            "datasets/files.py": "from ..common import y\n",
        },
    )
    found = arrows(package)
    assert found == {
        ("models", "datasets"): "pkg/models/net.py:4",
        ("datasets", "common"): "pkg/datasets/files.py:1",
    }
    assert violations(found, FORBIDDEN) == ["models -> datasets (pkg/models/net.py:4)"]


def test_a_cycle_between_allowed_arrows_is_reported(tmp_path):
    package = write_package(
        tmp_path,
        {
            "__init__.py": "",
            "tasks/__init__.py": "from pkg.runners import loop\n",
            "runners/__init__.py": "",
            "runners/loop.py": "import pkg.evaluation.scores\n",
            "evaluation/__init__.py": "",
            "evaluation/scores.py": "from pkg.tasks import something\n",
        },
    )
    assert violations(arrows(package), FORBIDDEN) == ["cycle evaluation -> tasks -> runners -> evaluation"]


@pytest.mark.parametrize(
    ("source", "module", "is_package", "expected"),
    [
        ("from . import a", "pkg.models.net", False, ["pkg.models", "pkg.models.a"]),
        (
            "from ..common.errors import E",
            "pkg.models.net",
            False,
            ["pkg.common.errors", "pkg.common.errors.E"],
        ),
        ("from .x import y", "pkg.models", True, ["pkg.models.x", "pkg.models.x.y"]),
    ],
)
def test_relative_imports_resolve_to_absolute_names(source, module, is_package, expected):
    assert [name for name, _ in imported_modules(source, module, is_package)] == expected
