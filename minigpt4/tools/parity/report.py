"""Pass/fail bookkeeping for one parity family, and the comparisons every family uses."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def equal_exact(expected: Any, got: Any) -> bool:
    """Exact equality that also tells -0.0 from 0.0 and treats tuples like lists (JSON has no tuples)."""
    if isinstance(expected, float) and isinstance(got, float):
        if math.isnan(expected) and math.isnan(got):
            return True
        return expected == got and math.copysign(1, expected) == math.copysign(1, got)
    if isinstance(expected, (list, tuple)) and isinstance(got, (list, tuple)):
        return len(expected) == len(got) and all(equal_exact(e, g) for e, g in zip(expected, got))
    if isinstance(expected, dict) and isinstance(got, dict):
        return expected.keys() == got.keys() and all(equal_exact(expected[k], got[k]) for k in expected)
    if type(expected) is bool or type(got) is bool:
        return type(expected) is type(got) and expected == got
    return expected == got


def equal_close(expected: Any, got: Any, rel: float, abs_: float = 0.0) -> bool:
    """Numbers within `abs_ + rel * max(1, |expected|)`; other values compared exactly, recursively."""
    if isinstance(expected, bool) or isinstance(got, bool):
        return equal_exact(expected, got)
    if isinstance(expected, (int, float)) and isinstance(got, (int, float)):
        if math.isnan(expected) or math.isnan(got):
            return math.isnan(expected) and math.isnan(got)
        return abs(expected - got) <= abs_ + rel * max(1.0, abs(expected))
    if isinstance(expected, (list, tuple)) and isinstance(got, (list, tuple)):
        return len(expected) == len(got) and all(equal_close(e, g, rel, abs_) for e, g in zip(expected, got))
    if isinstance(expected, dict) and isinstance(got, dict):
        return expected.keys() == got.keys() and all(
            equal_close(expected[k], got[k], rel, abs_) for k in expected
        )
    return equal_exact(expected, got)


def tensors_close(expected: Any, got: Any, atol: float, rtol: float) -> tuple[bool, str]:
    """Compare two array-likes by shape and value; returns (ok, detail of the worst element)."""
    e = np.asarray(expected.detach().cpu() if hasattr(expected, "detach") else expected, dtype=np.float64)
    g = np.asarray(got.detach().cpu() if hasattr(got, "detach") else got, dtype=np.float64)
    if e.shape != g.shape:
        return False, f"shape {tuple(e.shape)} vs {tuple(g.shape)}"
    if e.size == 0:
        return True, ""
    diff = np.abs(e - g)
    ok = bool(np.all(diff <= atol + rtol * np.abs(e)))
    worst = int(np.argmax(diff))
    return ok, f"max |diff| {diff.flat[worst]:.3g} at flat index {worst}"


@dataclass
class FamilyReport:
    """Counts cases of one family and keeps the first failure for the summary line."""

    name: str
    passed: int = 0
    total: int = 0
    first_failure: str | None = None
    not_implemented: bool = False
    notes: list[str] = field(default_factory=list)

    def record(self, ok: bool, what: str, expected: Any = None, got: Any = None, detail: str = "") -> bool:
        self.total += 1
        if ok:
            self.passed += 1
        elif self.first_failure is None:
            extra = f" ({detail})" if detail else ""
            self.first_failure = f"{what}: expected {_short(expected)}, got {_short(got)}{extra}"
        return ok

    def exact(self, what: str, expected: Any, got: Any) -> bool:
        return self.record(equal_exact(expected, got), what, expected, got)

    def close(self, what: str, expected: Any, got: Any, rel: float, abs_: float = 0.0) -> bool:
        return self.record(equal_close(expected, got, rel, abs_), what, expected, got)

    def tensor(self, what: str, expected: Any, got: Any, atol: float, rtol: float) -> bool:
        ok, detail = tensors_close(expected, got, atol, rtol)
        return self.record(ok, what, "<tensor>", "<tensor>", detail)

    def error(self, what: str, exc: BaseException) -> bool:
        return self.record(False, what, "no error", f"{type(exc).__name__}: {exc}")

    @property
    def ok(self) -> bool:
        return not self.not_implemented and self.total > 0 and self.passed == self.total

    def line(self) -> str:
        status = "PASS" if self.ok else "FAIL"
        text = f"{self.name} {status} {self.passed}/{self.total}"
        if self.not_implemented:
            return text + " (not implemented)"
        if self.total == 0:
            return text + " (no cases found)"
        if not self.ok and self.first_failure:
            text += f"  first failure: {self.first_failure}"
        return text
