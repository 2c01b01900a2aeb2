"""CI fails on lint (STYLE.md): ruff check and ruff format --check over the repository."""

import subprocess
import sys


def test_ruff_check_and_format(repo_root):
    for args in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *args], cwd=repo_root, capture_output=True, text=True
        )
        assert result.returncode == 0, (
            f"ruff {' '.join(args)}:\n{result.stdout[-3000:]}{result.stderr[-1000:]}"
        )
