"""What every benchmark provides: samples from its official files, the instruction, a saved record per answer,
and the score over all records."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from minigpt4.common.errors import DataError
from minigpt4.datasets.files import load_jsonl


@dataclass
class EvalSample:
    """One question of a benchmark split.

    index: position in the evaluation file (results are merged and scored in this order);
    key: unique id of the sample within the split (resume skips keys already answered);
    instruction: the task text before the conversation template; target: the ground truth as the file gives it.
    """

    index: int
    key: str
    image_path: Path
    instruction: str
    target: Any
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ScoreResult:
    """score in percent (CIDEr x 100 for captions); n samples; unparsable answers; chance = the score of a
    trivial baseline (None where none is meaningful); extra: benchmark-specific numbers and notes."""

    score: float
    n: int
    unparsable: int
    chance: float | None
    extra: dict[str, Any] = field(default_factory=dict)


class Benchmark:
    """Base class. Subclasses set `name`, `splits`, and implement `load`, `record`, `score`."""

    name: ClassVar[str] = ""
    splits: ClassVar[tuple[str, ...]] = ("val",)
    # "generate": model.generate on the prompt; "multi_select": candidate ranking by loss
    mode: ClassVar[str] = "generate"
    generate_kwargs: ClassVar[dict[str, Any]] = {}
    paper_name: ClassVar[str | None] = None

    def __init__(self, block: Mapping[str, Any], name: str | None = None) -> None:
        self.block = dict(block)
        self.dataset = name or self.name

    # --- to implement ---
    def load(self, split: str) -> list[EvalSample]:
        raise NotImplementedError

    def record(self, sample: EvalSample, output: Any) -> dict[str, Any]:
        """The saved prediction of one sample; must hold `key`, `index`, `parsable` (bool)."""
        raise NotImplementedError

    def score(self, samples: Sequence[EvalSample], records: Sequence[Mapping[str, Any]]) -> ScoreResult:
        raise NotImplementedError

    # --- helpers ---
    @property
    def eval_file_path(self) -> Path:
        return Path(str(self._required("eval_file_path")))

    @property
    def img_path(self) -> Path:
        return Path(str(self._required("img_path")))

    def _required(self, key: str) -> Any:
        value = self.block.get(key)
        if value in (None, ""):
            raise DataError(f"evaluation_datasets.{self.dataset}.{key} is not set; set it in the eval config")
        return value

    def _file(self, path: Path, what: str) -> Path:
        if not path.is_file():
            raise DataError(
                f"{self.dataset}: {what} not found at {path}; check evaluation_datasets.{self.dataset}.eval_file_path"
            )
        return path

    def _load_json(self, path: Path, what: str) -> Any:
        path = self._file(path, what)
        try:
            return json.loads(path.read_text())
        except ValueError as exc:
            raise DataError(f"{self.dataset}: {path} is not valid JSON ({exc})") from exc

    def _load_jsonl(self, path: Path, what: str) -> list[dict[str, Any]]:
        return load_jsonl(self._file(path, what), self.dataset, "the official eval file format")

    def _field(self, record: Mapping[str, Any], key: str, path: Path, index: int) -> Any:
        if key not in record:
            raise DataError(
                f"{self.dataset}: record {index} of {path} has no {key!r} (keys: {sorted(record)}); "
                "expected the official eval file format"
            )
        return record[key]


def percent(correct: float, total: int) -> float:
    """count / total * 100, the official order of operations."""
    return correct / total * 100 if total else 0.0
