"""demo_minigpt5.py in a real browser (headless Chromium through tests/cli/browser.py): the user types a scene,
the answer's text and then its picture appear in the conversation; the screenshot is kept in tests/artifacts/.

Which model answers: the quickstart's trained tiny MiniGPT-5 when `make quickstart` has run (its screenshot,
tests/artifacts/demo_minigpt5.png, is the README's docs/demo_minigpt5_screenshot.png), else the tiny random model
with *Always draw a picture* on (demo_minigpt5_random.png), so CI checks the page without training."""

from __future__ import annotations

import argparse

import pytest

from minigpt4.cli import demo_minigpt5
from minigpt4.common.errors import CheckpointError
from tests.cli.browser import ARTIFACTS, DemoPage, assert_not_blank
from tests.cli.conftest import serving
from tests.cli.test_demo_minigpt5 import make_session

pytestmark = pytest.mark.slow


def story_session():
    """(session, trained): the quickstart model as `python demo_minigpt5.py` opens it, else the random one."""
    try:
        args = argparse.Namespace(cfg_path=None, options=None, device="cpu", gpu_id=0)
        return demo_minigpt5.load_session(args), True
    except CheckpointError:
        session = make_session("story")
        session.defaults.update(force_image=True, num_inference_steps=4)
        return session, False


def test_a_story_message_gets_text_and_a_picture_in_the_conversation(browser):
    session, trained = story_session()
    with serving(demo_minigpt5, session) as url, DemoPage.open(browser, url) as page:
        page.upload("image", "examples/shapes_world/red_circle.png")
        page.ask("textbox", "there is a red circle.")
        assert "Scene added" in page.wait_answer("chatbot")
        page.ask("textbox", "next comes a blue square.")  # the shapes world's own story wording
        page.wait_answer("chatbot", previous=2)
        page.wait_idle()
        drawn = page.chat_images("chatbot", role="bot")
        assert len(drawn) == 1 and drawn[0].size[0] > 0
        assert len(page.chat_images("chatbot", role="user")) == 1
        shot = page.screenshot(ARTIFACTS / f"demo_minigpt5{'' if trained else '_random'}.png")
    assert_not_blank(shot)
