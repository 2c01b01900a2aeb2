"""Each demo page rendered by a real browser (headless Chromium): the DOM holds the app and the screenshot is
not blank. Screenshots are kept in tests/artifacts/ (gitignored)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from minigpt4.cli import demo_v1 as demo
from minigpt4.cli import demo_v2
from tests.cli.conftest import make_session, serving

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1280,1000",
    "--virtual-time-budget=10000",
]


def _find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's chromium; installed with apt-get when missing (needs root and the package index)."""
    found = _find_chromium()
    if found:
        return found
    log = []
    for command in (["apt-get", "install", "-y", "-q", "chromium"], ["apt-get", "update", "-q"]):
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.append(f"{' '.join(command)}: {exc}")
            break
        log.append(f"{' '.join(command)}: exit {done.returncode} {done.stderr.strip()[-300:]}")
        if command[1] == "update" and done.returncode == 0:
            retry = subprocess.run(
                ["apt-get", "install", "-y", "-q", "chromium"], capture_output=True, text=True, timeout=900
            )
            log.append(
                f"apt-get install (after update): exit {retry.returncode} {retry.stderr.strip()[-300:]}"
            )
        if _find_chromium():
            return _find_chromium()
    pytest.fail(
        "the browser test needs Chromium and could not install it; install it with "
        "`sudo apt-get install -y chromium` (Debian/Ubuntu) and rerun. Attempts: " + " | ".join(log)
    )


def _chromium(binary: str, url: str, *action: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *action, url],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def _assert_not_blank(path: Path) -> None:
    pixels = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    background_share = counts.max() / counts.sum()
    assert len(colours) > 50, f"{path}: only {len(colours)} colours, the page looks blank"
    assert background_share < 0.97, f"{path}: {background_share:.1%} of the page is one colour"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("module", "arch", "model_type", "expected_texts"),
    [
        (
            demo,
            "minigpt4",
            "tiny_vicuna0",
            ["MiniGPT-4 demo", "Upload &amp; Start Chat", "beam search numbers"],
        ),
        (demo_v2, "minigpt_v2", "tiny", ["MiniGPT-v2 demo", "Task Shortcuts", "Grounding", "Send"]),
    ],
    ids=["demo", "demo_v2"],
)
def test_demo_page_renders_in_chromium(chromium, module, arch, model_type, expected_texts):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / f"{module.__name__}.png"
    screenshot.unlink(missing_ok=True)
    with serving(module, make_session(arch, model_type)) as url:
        dom = _chromium(chromium, url, "--dump-dom")
        shot = _chromium(chromium, url, f"--screenshot={screenshot}")
    missing = [text for text in expected_texts if text not in dom.stdout]
    assert not missing, f"rendered DOM lacks {missing} (chromium stderr: {dom.stderr[-500:]})"
    assert screenshot.is_file(), f"no screenshot written (chromium stderr: {shot.stderr[-500:]})"
    _assert_not_blank(screenshot)
