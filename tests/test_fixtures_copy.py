"""The repository's copy of the parity fixtures agrees with its own README, and nothing reads outside the clone."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import PARITY, REPO_ROOT

ROW = re.compile(r"^\| `([^`]+)` \| (.*?) \|")
NAME = re.compile(r"`([a-z0-9_]+)`")


def readme_rows() -> dict[str, str]:
    """Layout table of parity/README.md: path -> its 'what' column."""
    rows = {}
    for line in (PARITY / "README.md").read_text().splitlines():
        match = ROW.match(line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def not_produced() -> set[str]:
    """Families that functions/README.md declares as not produced (listed in the table, absent on disk)."""
    text = (PARITY / "functions" / "README.md").read_text()
    return {m.group(1) for m in re.finditer(r"`([\w/.]+)`[^\n]*not produced", text)}


def test_every_listed_family_exists_and_every_family_is_listed():
    rows = readme_rows()
    assert rows, "parity/README.md has no layout table"
    for path, what in rows.items():
        if "<" in path:  # `models/<variant>/`: the names in the row are exactly the folders on disk
            parent = PARITY / path.split("<")[0]
            listed = set(NAME.findall(what))
            on_disk = {d.name for d in parent.iterdir() if d.is_dir()}
            assert listed == on_disk, (
                f"README row {path} lists {sorted(listed)}, folder holds {sorted(on_disk)}"
            )
        elif path.rstrip("/") not in not_produced():
            assert (PARITY / path).exists(), f"README lists {path}, which is not in {PARITY}"
    families = {f"functions/{p.name}" + ("/" if p.is_dir() else "") for p in (PARITY / "functions").iterdir()}
    unlisted = families - set(rows) - {"functions/README.md"}
    assert not unlisted, f"families on disk that parity/README.md does not list: {sorted(unlisted)}"
    tops = {f"{p.name}/" for p in PARITY.iterdir() if p.is_dir()}
    listed_tops = {path.split("/")[0] + "/" for path in rows}
    assert tops == listed_tops, f"top folders {sorted(tops)} vs README {sorted(listed_tops)}"


def test_nothing_reads_outside_the_clone():
    """A plain clone has no ../shared: no package, test, Makefile or CI file may point there."""
    places = [*REPO_ROOT.joinpath("minigpt4").rglob("*.py"), *REPO_ROOT.joinpath("tests").rglob("*.py")]
    places += [REPO_ROOT / "Makefile", REPO_ROOT / ".ci" / "run", REPO_ROOT / "README.md"]
    pattern = re.compile(r"\.\./shared|parent\s*/\s*\"shared\"|\"shared\"\s*/\s*\"parity\"")
    places = [p for p in places if p.exists() and p != Path(__file__).resolve()]
    offenders = [str(p.relative_to(REPO_ROOT)) for p in places if pattern.search(p.read_text())]
    assert not offenders, f"files that read outside the repository: {offenders}"
