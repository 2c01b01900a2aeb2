"""Drive a gradio demo in headless Chromium (Playwright on the system browser) through the page's own controls.

Reusable by every demo test (demo.py, demo_v2.py, demo_minigpt5.py):

    from tests.cli.browser import DemoPage   # the `browser` fixture comes from tests/cli/conftest.py

    def test_x(browser):
        with serving(module, session) as url, DemoPage.open(browser, url) as page:
            page.upload("image", "examples/shapes_world/red_circle.png")   # elem_id of the image component
            page.click("upload")                                           # elem_id of a button
            page.ask("textbox", "What color is the circle?")               # types, presses Enter
            answer = page.wait_answer("chatbot")                           # the streamed answer, once finished
            page.screenshot(ARTIFACTS / "demo.png")

Components are addressed by their gradio `elem_id`. Chromium is Debian's (`/usr/bin/chromium`, installed by
`make system-deps`); Playwright never downloads a browser. Screenshots go to tests/artifacts/ (gitignored).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
VIEWPORT = {"width": 1280, "height": 1000}
# WebGL through SwiftShader: without it the v2 image editor (PixiJS) shows an upload but sends no image
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-dev-shm-usage",
    "--no-first-run",
]
# gradio's status tracker over an output component: class "hide" when idle; shown (timer, "queue: n",
# "processing", class "pending"/"generating" while streaming) as long as an event writing to it runs
BUSY_JS = """() => Array.from(document.querySelectorAll('[data-testid=status-tracker]')).some(
    e => !e.classList.contains('hide') && e.offsetParent !== null) || document.querySelector('.generating') !== null"""
ANSWER_TIMEOUT_S = 60.0


def find_chromium() -> str | None:
    """CHROMIUM env var, else Debian's chromium on PATH."""
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser") or None


def _install_chromium() -> list[str]:
    """apt-get the Debian package (root and the package index needed); returns the log of what was tried."""
    log = []
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.append(f"{' '.join(command)}: {exc}")
            break
        log.append(f"{' '.join(command)}: exit {done.returncode} {done.stderr.strip()[-300:]}")
    return log


@pytest.fixture(scope="session")
def chromium_path() -> str:
    found = find_chromium()
    if not found:
        log = _install_chromium()
        found = find_chromium()
        if not found:
            pytest.fail(
                "the browser tests need Chromium: `sudo apt-get install -y chromium` (Debian/Ubuntu, also "
                "`make system-deps`), or set CHROMIUM=/path/to/chrome. Tried: " + " | ".join(log)
            )
    return found


@pytest.fixture(scope="session")
def browser(chromium_path):
    """One headless Chromium for the whole test session (Playwright's sync API)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (test extra)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class DemoPage:
    """One browser tab on a demo; every action goes through the page's visible controls."""

    def __init__(self, page, url: str):
        self.page = page
        self.url = url

    @classmethod
    @contextlib.contextmanager
    def open(cls, browser, url: str) -> Iterator[DemoPage]:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.set_default_timeout(ANSWER_TIMEOUT_S * 1000)
        try:
            page.goto(url)
            page.wait_for_selector("gradio-app .gradio-container")
            page.wait_for_selector("[id]:not(gradio-app) >> nth=0")
            page.wait_for_function("document.readyState === 'complete'")
            yield cls(page, url)
        finally:
            context.close()

    def element(self, elem_id: str):
        return self.page.locator(f"#{elem_id}")

    # --- actions -------------------------------------------------------------------------------------------
    def upload(self, elem_id: str, path: str | Path) -> None:
        """Put a file into an image/file component (its own hidden file input, as a drop would) or, for an
        upload button, choose it in the file dialog the click opens."""
        inputs = self.element(elem_id).locator("input[type=file]")
        if inputs.count():
            inputs.first.set_input_files(str(path))
        else:
            with self.page.expect_file_chooser() as chooser:
                self.element(elem_id).click()
            chooser.value.set_files(str(path))
        self.wait_idle()

    def click(self, elem_id: str) -> None:
        self.element(elem_id).click()

    def type(self, elem_id: str, text: str) -> None:
        box = self.element(elem_id).locator("textarea, input[type=text]").first
        box.fill(text)

    def click_example(self, elem_id: str, index: int) -> None:
        """Click the `index`-th sample of a gr.Examples block (a table row, or a gallery thumbnail for one input)."""
        self.element(elem_id).locator("tbody tr, button.gallery-item").nth(index).click()
        self.wait_idle()

    def click_chat_clear(self, chatbot: str) -> None:
        """The chat's own trash icon (shown once the chat holds messages)."""
        self.element(chatbot).locator("button[aria-label=Clear]").click()
        self.wait_idle()

    def text_value(self, elem_id: str) -> str:
        return self.element(elem_id).locator("textarea, input[type=text]").first.input_value()

    def wait_text_value(self, elem_id: str, value: str, timeout_s: float = 10.0) -> str:
        """The textbox's text once it equals `value` (an example's values arrive with no spinner), else its last."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.text_value(elem_id) != value:
            time.sleep(0.2)
        return self.text_value(elem_id)

    def wait_messages(self, chatbot: str, count: int, timeout_s: float = 10.0) -> list[str]:
        """The bot messages once there are at least `count` (an unqueued event shows no spinner to wait for)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            said = self.bot_messages(chatbot)
            if len(said) >= count:
                return said
            time.sleep(0.2)
        shot = self.screenshot(ARTIFACTS / "failure.png")
        raise AssertionError(
            f"#{chatbot} shows {self.bot_messages(chatbot)}, not {count} messages (page: {shot})"
        )

    def set_number(self, elem_id: str, value: float) -> None:
        """Set a slider/number component through its number box."""
        box = self.element(elem_id).locator("input[type=number]").first
        box.fill(str(value))
        box.press("Enter")

    def ask(self, elem_id: str, text: str, send: str | None = None) -> None:
        """Type `text` into the textbox and press Enter (or click the `send` button)."""
        self.type(elem_id, text)
        if send:
            self.click(send)
        else:
            self.element(elem_id).locator("textarea, input[type=text]").first.press("Enter")

    # --- reading the page ----------------------------------------------------------------------------------
    def busy(self) -> bool:
        """True while any component shows gradio's queued/processing spinner."""
        return bool(self.page.evaluate(BUSY_JS))

    def wait_idle(self, timeout_s: float = ANSWER_TIMEOUT_S, settle_s: float = 0.3) -> None:
        """Wait until no spinner is shown (checked twice `settle_s` apart: an event may be about to start)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            time.sleep(settle_s)
            if not self.busy():
                time.sleep(settle_s)
                if not self.busy():
                    return
        shot = self.screenshot(ARTIFACTS / "failure.png")
        raise AssertionError(f"the page still shows a spinner after {timeout_s:.0f} s (page: {shot})")

    def bot_messages(self, chatbot: str) -> list[str]:
        return [text.strip() for text in self.element(chatbot).locator("[data-testid=bot]").all_inner_texts()]

    def wait_answer(
        self, chatbot: str, timeout_s: float = ANSWER_TIMEOUT_S, previous: int | None = None
    ) -> str:
        """The text of the last bot message once streaming ended (a new message beyond `previous` if given).

        Fails when no non-empty answer appears within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        time.sleep(0.3)
        self.wait_idle(timeout_s)
        while time.monotonic() < deadline:
            texts = [t for t in self.bot_messages(chatbot) if t]
            if texts and (previous is None or len(self.bot_messages(chatbot)) > previous):
                return texts[-1]
            time.sleep(0.2)
        shot = self.screenshot(ARTIFACTS / "failure.png")
        raise AssertionError(f"no answer appeared in #{chatbot} within {timeout_s:.0f} s (page: {shot})")

    def chat_images(self, chatbot: str, role: str = "bot") -> list[Image.Image]:
        """The images shown in the chat's `role` messages ("bot" or "user"), fetched as the browser sees them."""
        images = []
        for img in self.element(chatbot).locator(f"[data-testid={role}] img").all():
            src = img.get_attribute("src")
            if not src:
                continue
            response = self.page.request.get(src if "://" in src else self.url.rstrip("/") + "/" + src)
            images.append(Image.open(io.BytesIO(response.body())).convert("RGB"))
        return images

    def component_image(self, elem_id: str) -> Image.Image | None:
        """What an image component currently displays, or None when it shows no picture: no img/canvas, or one
        with almost no colour (an image editor keeps an empty white canvas, under its grey toolbars). The
        pictures of the tests are colourful (shapes world)."""
        imgs = self.element(elem_id).locator("img, canvas")
        if imgs.count() == 0 or not imgs.first.is_visible():
            return None
        shown = Image.open(io.BytesIO(imgs.first.screenshot())).convert("RGB")
        pixels = np.asarray(shown).astype(int)
        colourful = (pixels.max(axis=-1) - pixels.min(axis=-1)) > 60
        return shown if colourful.mean() > 0.02 else None

    def wait_no_image(self, elem_id: str, timeout_s: float = 5.0) -> bool:
        """True once the image component shows no picture (it may redraw a moment after the event ended)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.component_image(elem_id) is None:
                return True
            time.sleep(0.2)
        return False

    def wait_image(self, elem_id: str, timeout_s: float = 10.0) -> Image.Image | None:
        """What the image component shows once it shows a picture (None if it never does within `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            shown = self.component_image(elem_id)
            if shown is not None:
                return shown
            time.sleep(0.2)
        return None

    def placeholder(self, elem_id: str) -> str:
        return (
            self.element(elem_id).locator("textarea, input[type=text]").first.get_attribute("placeholder")
            or ""
        )

    def screenshot(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=True)
        return path


def drawn_box(
    image: Image.Image, colour: tuple[int, int, int], tolerance: int = 40
) -> tuple[int, int, int, int] | None:
    """(x1, y1, x2, y2) pixel extent of the pixels close to `colour` (a drawn box outline), or None."""
    pixels = np.asarray(image.convert("RGB")).astype(int)
    close = np.abs(pixels - np.array(colour)).max(axis=-1) <= tolerance
    rows, cols = np.flatnonzero(close.any(axis=1)), np.flatnonzero(close.any(axis=0))
    if rows.size < 4 or cols.size < 4:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def assert_not_blank(path: Path) -> None:
    pixels = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    assert len(colours) > 50, f"{path}: only {len(colours)} colours, the page looks blank"
    assert counts.max() / counts.sum() < 0.97, f"{path}: the page is almost one colour"
