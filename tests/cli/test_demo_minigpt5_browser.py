"""demo_minigpt5.py in a real browser (headless Chromium through tests/cli/browser.py): the user types a scene,
the answer's text and then its picture appear in the conversation; the screenshot is kept in tests/artifacts/
(the README's docs/demo_minigpt5_screenshot.png is a copy of it)."""

from __future__ import annotations

import pytest

from minigpt4.cli import demo_minigpt5
from tests.cli.browser import ARTIFACTS, DemoPage, assert_not_blank
from tests.cli.conftest import serving
from tests.cli.test_demo_minigpt5 import make_session

pytestmark = pytest.mark.slow


def test_a_story_message_gets_text_and_a_picture_in_the_conversation(browser):
    session = make_session("story")
    session.defaults.update(force_image=True, num_inference_steps=4)
    with serving(demo_minigpt5, session) as url, DemoPage.open(browser, url) as page:
        page.upload("image", "examples/shapes_world/red_circle.png")
        page.ask("textbox", "there is a red circle.")
        assert "Scene added" in page.wait_answer("chatbot")
        page.ask("textbox", "then a blue square appears.")
        page.wait_answer("chatbot", previous=2)
        page.wait_idle()
        drawn = page.chat_images("chatbot", role="bot")
        assert len(drawn) == 1 and drawn[0].size[0] > 0
        assert len(page.chat_images("chatbot", role="user")) == 1
        shot = page.screenshot(ARTIFACTS / "demo_minigpt5.png")
    assert_not_blank(shot)
