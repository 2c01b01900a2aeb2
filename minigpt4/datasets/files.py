"""Reading dataset files with errors that name the path, the record and the expected layout.

Every format family reads through these helpers, so a missing file, a wrong folder or a malformed record
raises `DataError` with a message that says what was expected, instead of a bare KeyError deep in a worker.
"""

from __future__ import annotations

import io
import json
import logging
import pickle
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from minigpt4.common.errors import DataError

logger = logging.getLogger(__name__)


def require_file(path: str | Path, what: str, layout: str) -> Path:
    """`path` as a Path if it is a file; otherwise DataError naming it and the expected `layout`."""
    path = Path(path)
    if path.is_file():
        return path
    found = "a folder" if path.is_dir() else "nothing"
    raise DataError(f"{what}: expected a file at {path}, found {found}. Expected layout: {layout}")


def require_dir(path: str | Path, what: str, layout: str) -> Path:
    path = Path(path)
    if path.is_dir():
        return path
    found = "a file" if path.exists() else "nothing"
    raise DataError(f"{what}: expected a folder at {path}, found {found}. Expected layout: {layout}")


def load_json(path: str | Path, what: str, layout: str) -> Any:
    path = require_file(path, what, layout)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{what}: {path} is not valid JSON ({exc}). Expected layout: {layout}") from exc


def load_json_list(path: str | Path, what: str, layout: str, list_key: str | None = None) -> list[Any]:
    """A JSON list, or the `list_key` list of a JSON object (LAVIS BaseDataset reads `annotations`)."""
    data = load_json(path, what, layout)
    if isinstance(data, dict) and list_key is not None:
        if list_key not in data:
            raise DataError(
                f"{what}: {path} is a JSON object without key {list_key!r}. Expected layout: {layout}"
            )
        data = data[list_key]
    if not isinstance(data, list):
        raise DataError(
            f"{what}: {path} holds a JSON {type(data).__name__}, expected a list. Expected layout: {layout}"
        )
    return data


def load_jsonl(path: str | Path, what: str, layout: str) -> list[Any]:
    """One JSON value per non-blank line (VSR and Hateful Memes ship their splits this way)."""
    path = require_file(path, what, layout)
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{what}: {path} line {number} is not valid JSON ({exc}). Expected layout: {layout}"
                ) from exc
    return rows


def check_records(
    records: Sequence[Any], required: Iterable[str], path: str | Path, what: str, layout: str
) -> None:
    """Raise on the first record that is not an object or lacks a required key (checked at build time)."""
    required = tuple(required)
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise DataError(
                f"{what}: record {index} of {path} is a {type(record).__name__}, expected an object with keys "
                f"{', '.join(required)}. Expected layout: {layout}"
            )
        missing = [key for key in required if key not in record]
        if missing:
            raise DataError(
                f"{what}: record {index} of {path} lacks {', '.join(repr(k) for k in missing)} "
                f"(has {', '.join(sorted(map(str, record))) or 'no keys'}). Expected layout: {layout}"
            )


def open_rgb(path: str | Path, what: str, layout: str) -> Image.Image:
    """The image at `path` converted to RGB; DataError naming it when missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what}: image not found at {path}. Expected layout: {layout}")
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except OSError as exc:
        raise DataError(f"{what}: cannot read image {path} ({exc})") from exc


class _PlainContainersUnpickler(pickle.Unpickler):
    """Admits only what pickle builds without importing anything (dict, list, tuple, str, bytes, numbers,
    bool, None) plus set/frozenset; any other global (a class, a function such as os.system) is refused."""

    SAFE_GLOBALS = frozenset(
        {("builtins", "set"), ("builtins", "frozenset"), ("__builtin__", "set"), ("__builtin__", "frozenset")}
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.SAFE_GLOBALS:
            return set if name == "set" else frozenset
        raise pickle.UnpicklingError(
            f"refusing to load global {module}.{name}: only plain containers are allowed"
        )


def load_plain_pickle(path: str | Path, what: str, layout: str) -> Any:
    """Unpickle `path` allowing only plain containers (the RefCOCO `refs(unc).p` files are lists of dicts).

    A pickle that references any class or function, as a malicious one must to run code, raises DataError.
    """
    path = require_file(path, what, layout)
    try:
        return _PlainContainersUnpickler(io.BytesIO(path.read_bytes())).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(
            f"{what}: refusing or failing to read {path}: {exc}. Expected layout: {layout}"
        ) from exc
