"""demo_v2.py end to end through gradio_client: /answer with boxes, task shortcuts, [identify] sketches, images."""

from __future__ import annotations

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from minigpt4.cli import demo_v2
from minigpt4.conversation.grounding_boxes import PALETTE
from tests.cli.conftest import chat_files, chat_texts, forced_answer, make_session, serving


@pytest.fixture(scope="module")
def session():
    return make_session("minigpt_v2", "tiny")


@pytest.fixture(scope="module")
def client(session):
    with serving(demo_v2, session) as url:
        yield Client(url, verbose=False)


def test_refer_answer_returns_an_annotated_image(client, session, uploads):
    with forced_answer(session, "{<10><20><60><80>}"):
        text, annotated = client.predict(
            handle_file(str(uploads / "grey.png")), "[refer] the box", api_name="/answer"
        )
    assert text == "{<10><20><60><80>}"
    drawn = np.asarray(Image.open(annotated).convert("RGB"))
    assert drawn.shape == (250, 500, 3)  # display width 500, aspect kept
    assert tuple(drawn[125, 50]) == PALETTE[0]  # left edge of the box at x = 10% of 500
    assert tuple(drawn[125, 250]) == (240, 240, 240)  # inside the box: the image


def test_grounding_answer_boxes_each_phrase(client, session, uploads):
    answer = "<p>a cup</p> {<0><0><40><40>} and <p>a plate</p> {<50><50><90><90>}"
    with forced_answer(session, answer):
        text, annotated = client.predict(
            handle_file(str(uploads / "grey.png")), "[grounding] describe", api_name="/answer"
        )
    assert text == answer
    drawn = np.asarray(Image.open(annotated).convert("RGB"))
    assert tuple(drawn[200, 252]) == PALETTE[1]  # second phrase, second colour


def test_answer_without_box_has_no_image(client, session, uploads):
    with forced_answer(session, "a grey picture"):
        text, annotated = client.predict(
            handle_file(str(uploads / "grey.png")), "describe it", api_name="/answer"
        )
    assert (text, annotated) == ("a grey picture", None)


@pytest.mark.parametrize(
    ("upload", "message", "expected"),
    [
        ("bad.png", "[vqa] what?", "not a readable image"),
        ("grey.png", "[identify] what is this", "type its box"),
    ],
)
def test_bad_api_input_is_a_readable_answer(client, uploads, upload, message, expected):
    text, annotated = client.predict(handle_file(str(uploads / upload)), message, api_name="/answer")
    assert expected in text and annotated is None


def _editor(uploads, name: str, sketch: bool = False) -> dict:
    layers = [handle_file(str(uploads / "sketch.png"))] if sketch else []
    return {"background": handle_file(str(uploads / name)), "layers": layers, "composite": None}


def test_ui_identify_uses_the_drawn_box_and_images_accumulate(client, session, uploads):
    _, history = client.predict(None, "hello", [], 0.6, False, api_name="/send")
    assert chat_texts(history) == [demo_v2.NO_IMAGE_YET]
    _, history = client.predict(
        _editor(uploads, "grey.png"), "[identify] what is this", [], 0.6, False, api_name="/send"
    )
    assert chat_texts(history)[-1] == demo_v2.IDENTIFY_NEEDS_BOX
    with forced_answer(session, "a red sign"):
        _, history = client.predict(
            _editor(uploads, "grey.png", sketch=True),
            "[identify] what is this",
            [],
            0.6,
            False,
            api_name="/send",
        )
    texts = chat_texts(history)
    assert texts[-2] == "[identify] what is this {&lt;25&gt;&lt;25&gt;&lt;74&gt;&lt;74&gt;}"
    assert texts[-1] == "a red sign"
    assert len(chat_files(history)) == 1  # the drawn box's preview (the image joined on the previous send)
    with forced_answer(session, "<p>a blue square</p> {<0><0><100><100>}"):
        _, history = client.predict(
            _editor(uploads, "blue.png"), "[grounding] describe", [], 0.6, False, api_name="/ask"
        )
    assert "a blue square</span>" in chat_texts(history)[-1]
    assert len(chat_files(history)) == 2  # the new image, then the answer's boxes


def test_stored_answer_is_replaced_by_eos_as_officially(session, uploads):
    with forced_answer(session, "a grey picture"):
        *_, (_, history, state) = demo_v2.respond(
            session, {"background": Image.open(uploads / "grey.png"), "layers": []}, "describe", None, [], 0.6
        )
    assert _texts_plain(history)[-1] == "a grey picture"
    assert state["conv"].messages[-1][1] == "</s>"
    assert state["conv"].get_prompt().endswith(" [/INST]</s>")


def _texts_plain(history: list) -> list[str]:
    return [m["content"] for m in history if isinstance(m["content"], str)]


def test_task_shortcuts_fill_the_official_prefixes():
    prefixes = [demo_v2.pick_task(i)[0] for i in range(len(demo_v2.TASKS))]
    assert prefixes == [
        "",
        "[grounding] describe this image in detail",
        "[refer] ",
        "[detection] ",
        "[identify] what is this ",
        "[vqa] ",
    ]


def test_forget_option_asks_each_message_as_a_first_turn(session, uploads):
    """Official: earlier questions stay in the prompt (a [refer] turn pulls later answers into boxes); with the
    option the prompt holds the last image and the new question only."""
    editor = {"background": Image.open(uploads / "grey.png"), "layers": []}
    with forced_answer(session, "{<10><20><30><40>}"):
        *_, (_, history, state) = demo_v2.respond(session, editor, "[refer] the sign", None, [], 0.6)
    with forced_answer(session, "grey"):
        *_, (_, _, kept) = demo_v2.respond(session, editor, "[vqa] what colour", state, history, 0.6)
    assert "[refer] the sign" in kept["conv"].get_prompt()
    with forced_answer(session, "grey"):
        *_, (_, _, fresh) = demo_v2.respond(session, editor, "[vqa] what colour", kept, history, 0.6, True)
    prompt = fresh["conv"].get_prompt()
    assert "[refer]" not in prompt and prompt.count("<ImageHere>") == 1 and "[vqa] what colour" in prompt
