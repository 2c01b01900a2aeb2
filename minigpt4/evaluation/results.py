"""Per-rank append-only prediction files: what makes evaluation shardable across processes and resumable.

Layout per benchmark split: `<save_path>/<benchmark>/<split>.parts/predictions.rank<R>.jsonl`, one JSON record
per line, flushed after every batch. A killed run leaves complete lines (and at most one torn last line, which
is ignored); the next run, with any number of processes, skips every key found in any rank's file.
`source.json` beside them records what made the predictions (checkpoint file, LLM, max_new_tokens): a run
with another source refuses to resume there instead of mixing two models' answers in one score.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from minigpt4.common.errors import DataError

logger = logging.getLogger(__name__)


class PredictionStore:
    def __init__(self, directory: str | Path, rank: int = 0) -> None:
        self.directory = Path(directory)
        self.rank = rank

    @property
    def path(self) -> Path:
        return self.directory / f"predictions.rank{self.rank}.jsonl"

    def _files(self) -> list[Path]:
        return sorted(self.directory.glob("predictions.rank*.jsonl")) if self.directory.is_dir() else []

    def read_all(self) -> list[dict[str, Any]]:
        """Every complete record of every rank (a torn last line of a killed run is skipped)."""
        records = []
        for path in self._files():
            with path.open() as handle:
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        records.append(json.loads(line))
                    except ValueError:
                        logger.warning(
                            "%s line %d is incomplete (interrupted write); it will be redone", path, number
                        )
        return records

    @property
    def source_path(self) -> Path:
        return self.directory / "source.json"

    def check_source(self, source: Mapping[str, Any], record: bool = True) -> None:
        """Raise when predictions here came from another source, else record `source` (`record`: on one rank
        only; every rank checks, so none is left waiting for a rank that raised)."""
        source = json.loads(json.dumps(dict(source)))  # as it reads back from disk
        if self.source_path.is_file():
            recorded = json.loads(self.source_path.read_text())
            changed = sorted(
                key for key in recorded.keys() | source.keys() if recorded.get(key) != source.get(key)
            )
            if changed and self.read_all():
                details = "; ".join(
                    f"{key}: was {recorded.get(key)!r}, now {source.get(key)!r}" for key in changed
                )
                raise DataError(
                    f"{self.directory} holds predictions from another source ({details}); delete that folder "
                    "to start over, or choose another run.save_path"
                )
        if record:
            self.directory.mkdir(parents=True, exist_ok=True)
            partial = self.source_path.with_suffix(".json.tmp")  # other ranks may be reading the file
            partial.write_text(json.dumps(source, indent=1, sort_keys=True) + "\n")
            partial.replace(self.source_path)

    def done_keys(self) -> set[str]:
        return {str(record["key"]) for record in self.read_all()}

    def append(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Append records and force them to disk, so an interruption loses at most the batch in flight."""
        self.directory.mkdir(parents=True, exist_ok=True)
        torn = self.path.is_file() and self.path.stat().st_size > 0 and not self._ends_with_newline()
        with self.path.open("a") as handle:
            if torn:  # close a line torn by a kill, so the new records start on their own lines
                handle.write("\n")
            for record in records:
                handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"

    def merged(self) -> list[dict[str, Any]]:
        """One record per key (the first written wins), in evaluation-file order."""
        by_key: dict[str, dict[str, Any]] = {}
        for record in self.read_all():
            by_key.setdefault(str(record["key"]), record)
        return sorted(by_key.values(), key=lambda record: record["index"])
