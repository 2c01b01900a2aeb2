"""Both demos driven in headless Chromium through the page's own controls (issue #20 item 6, issue #25 item 6).

upload -> ask -> the streamed answer is checked against the example's truth (examples/shapes_world/truth.json);
for demo_v2 a [refer] answer's box, as drawn on the image shown in the chat, must overlap the object (IoU > 0.5);
Restart leaves no spinner, an empty chat and an empty image box. The tests set the temperature slider to 0.1
(the chat always samples, as the official one; the trained tiny models are reliably right only at low temperature).

Which model answers: the trained quickstart models when `make quickstart` has run (outputs/quickstart), else
the random-weight tiny models made to answer the truth through a hook on the LM head (`forced_answer`), so CI
checks the page without training. The `*_catches_*` tests force wrong answers and check that the same checks
fail. Screenshots go to tests/artifacts/; with the trained models they are the README's docs/demo*_screenshot.png.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import pytest

from minigpt4.cli import demo_v1, demo_v2
from minigpt4.cli.demo_launch import SHAPES_EXAMPLES_DIR, TinyModel, load_chat
from minigpt4.common.errors import CheckpointError
from minigpt4.conversation.grounding_boxes import PALETTE
from tests.cli.browser import ARTIFACTS, DemoPage, assert_not_blank, drawn_box, iou
from tests.cli.conftest import forced_answer, free_port, make_session, serving

pytestmark = pytest.mark.slow

WORLD = SHAPES_EXAMPLES_DIR
# the chat always samples (official); the trained tiny models are right at low temperature, not always at 1.0
LOW_TEMPERATURE = 0.1
TRUTH = json.loads((WORLD / "truth.json").read_text())


def _trained(tiny: TinyModel):
    """The quickstart model's ChatSession, or None when `make quickstart` has not produced it."""
    try:
        _ = tiny.checkpoint_path
    except CheckpointError:
        return None
    args = argparse.Namespace(cfg_path=None, options=None, device="cpu", gpu_id=0)
    return load_chat(args, tiny)


@pytest.fixture(scope="module")
def v1_session():
    trained = _trained(demo_v1.TINY_MODEL)
    return trained or make_session("minigpt4", "tiny_vicuna0"), trained is not None


@pytest.fixture(scope="module")
def v2_session():
    trained = _trained(demo_v2.TINY_MODEL)
    return trained or make_session("minigpt_v2", "tiny"), trained is not None


def _answering(session, trained: bool, text: str):
    """Nothing to do for a trained model; the random model is made to answer `text`."""
    return contextlib.nullcontext() if trained else forced_answer(session, text)


def check_caption(answer: str, truth: dict) -> None:
    obj = truth["objects"][0]
    words = answer.lower()
    assert obj["color"] in words and obj["shape"] in words, f"answer {answer!r} does not name the {obj}"


def check_box(chat_image, truth: dict) -> None:
    """The first palette colour (the first phrase's box) drawn on the chat's image overlaps the object."""
    assert chat_image is not None, "no image with a box in the chat"
    box = drawn_box(chat_image, PALETTE[0])
    assert box is not None, "no box drawn on the image in the chat"
    scale = chat_image.width / truth["width"]
    x, y, w, h = (v * scale for v in truth["objects"][0]["bbox_xywh"])
    overlap = iou(box, (x, y, x + w, y + h))
    assert overlap > 0.5, (
        f"drawn box {box} overlaps the {truth['objects'][0]} at {(x, y, x + w, y + h)} by IoU {overlap:.2f}"
    )


def _screenshot(page: DemoPage, name: str, trained: bool) -> Path:
    path = page.screenshot(ARTIFACTS / f"{name}{'' if trained else '_random'}.png")
    assert_not_blank(path)
    return path


def run_v1(browser, session, trained: bool, example: str, forced: str) -> str:
    """upload, Upload & Start Chat, ask for a description; returns the answer as shown."""
    with serving(demo_v1, session) as url, DemoPage.open(browser, url) as page:
        page.set_number("temperature", LOW_TEMPERATURE)
        page.upload("image", WORLD / example)
        page.click("upload")
        page.wait_answer("chatbot")
        assert page.placeholder("textbox") == "Type a question and press Enter"
        with _answering(session, trained, forced):
            page.ask("textbox", "Describe this image in detail.")
            answer = page.wait_answer("chatbot")
        _screenshot(page, "demo", trained)
    return answer


def test_demo_v1_answers_an_example(browser, v1_session):
    session, trained = v1_session
    truth = TRUTH["red_circle.png"]
    check_caption(run_v1(browser, session, trained, "red_circle.png", "The image shows a red circle."), truth)


def test_demo_v1_check_catches_a_wrong_answer(browser):
    session = make_session("minigpt4", "tiny_vicuna0")
    answer = run_v1(browser, session, False, "red_circle.png", "The image shows a blue square.")
    with pytest.raises(AssertionError):
        check_caption(answer, TRUTH["red_circle.png"])


def run_v2(browser, session, trained: bool, forced_box: str) -> dict:
    """Upload, a [refer] question, then a [vqa] one, Restart. Returns what was seen."""
    seen: dict = {}
    with serving(demo_v2, session) as url, DemoPage.open(browser, url) as page:
        page.set_number("temperature", LOW_TEMPERATURE)
        page.upload("image", WORLD / "red_circle.png")
        assert page.component_image("image") is not None, "the uploaded image is not shown in the image box"
        with _answering(session, trained, forced_box):
            page.ask("textbox", "[refer] the red circle", send="send")
            seen["refer"] = page.wait_answer("chatbot")
        images = page.chat_images("chatbot")
        seen["box_image"] = images[-1] if images else None
        before = len(page.bot_messages("chatbot"))
        with _answering(session, trained, "red"):
            page.ask("textbox", "[vqa] What color is the circle?", send="send")
            seen["vqa"] = page.wait_answer("chatbot", previous=before)
        seen["images_after_vqa"] = len(page.chat_images("chatbot"))
        seen["screenshot"] = _screenshot(page, "demo_v2", trained)

        page.click("restart")
        started = time.monotonic()
        page.wait_idle(timeout_s=5)
        seen["restart_s"] = time.monotonic() - started
        seen["after_restart"] = (page.bot_messages("chatbot"), page.wait_no_image("image"))
    return seen


def test_demo_v2_boxes_the_right_object_and_restarts_clean(browser, v2_session):
    session, trained = v2_session
    truth = TRUTH["red_circle.png"]
    seen = run_v2(browser, session, trained, "{<30><42><81><93>}")
    assert "malformed" not in seen["refer"], seen["refer"]
    check_box(seen["box_image"], truth)
    # the [refer] turn does not pull the next answer into a box
    assert "red" in seen["vqa"].lower() and "{" not in seen["vqa"] and "malformed" not in seen["vqa"], seen[
        "vqa"
    ]
    messages, image_gone = seen["after_restart"]
    assert messages == [] and image_gone, f"Restart left {messages} / an image in the image box"


def test_demo_v2_check_catches_a_box_on_the_wrong_object(browser):
    seen = run_v2(browser, make_session("minigpt_v2", "tiny"), False, "{<0><0><25><25>}")
    with pytest.raises(AssertionError, match="IoU"):
        check_box(seen["box_image"], TRUTH["red_circle.png"])


def test_spinner_check_catches_a_slow_handler(browser):
    """What `wait_idle` relies on: a handler still running shows gradio's spinner, which `busy` sees."""
    import gradio as gr

    with gr.Blocks() as app:
        out = gr.Textbox(elem_id="out")
        button = gr.Button("go", elem_id="go")
        button.click(lambda: time.sleep(4) or "done", None, out)
    app.queue()
    _, url, _ = app.launch(
        server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True
    )
    try:
        with DemoPage.open(browser, url) as page:
            page.click("go")
            time.sleep(1)
            assert page.busy()
            with pytest.raises(AssertionError, match="spinner"):
                page.wait_idle(timeout_s=1.5)
    finally:
        app.close()
