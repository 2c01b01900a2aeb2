"""Per-rank append-only prediction files: what makes evaluation shardable across processes and resumable.

Layout per benchmark split: `<save_path>/<benchmark>/<split>.parts/predictions.rank<R>.jsonl`, one JSON record
per line, flushed after every batch. A killed run leaves complete lines (and at most one torn last line, which
is ignored); the next run, with any number of processes, skips every key found in any rank's file.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

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
