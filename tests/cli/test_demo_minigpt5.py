"""demo_minigpt5.py through gradio_client on a tiny random MiniGPT-5: /answer gives text and a picture for a
request for one, the chat streams text then the picture, bad input becomes a sentence and the server keeps
serving; without the quickstart model the command says to run `make quickstart`."""

from __future__ import annotations

import pytest
import torch
from gradio_client import Client, handle_file
from PIL import Image

from minigpt4.cli import demo_minigpt5
from minigpt4.cli.demo_minigpt5 import Minigpt5Session
from minigpt4.conversation.minigpt5_chat import Minigpt5Chat
from tests.cli.conftest import serving
from tests.conversation.tiny_minigpt5 import tiny_minigpt5

FAST = {"num_inference_steps": 3, "max_new_tokens": 8, "guidance_scale": 3.0}


def make_session(style: str = "dialogue") -> Minigpt5Session:
    model, processor = tiny_minigpt5()
    return Minigpt5Session(
        Minigpt5Chat(model, processor, device="cpu"), torch.device("cpu"), style, dict(FAST)
    )


@pytest.fixture(scope="module")
def client():
    with serving(demo_minigpt5, make_session()) as url:
        yield Client(url, verbose=False)


def test_answer_endpoint_returns_text_and_a_picture_for_an_image_request(client):
    text, picture = client.predict(None, "Please draw a red circle", api_name="/answer")
    assert isinstance(text, str)
    assert picture is not None and Image.open(picture).size == (32, 32)


def test_answer_endpoint_with_an_uploaded_image(client, uploads):
    text, picture = client.predict(
        handle_file(str(uploads / "red.png")), "show me a bigger one", api_name="/answer"
    )
    assert isinstance(text, str) and picture is not None


@pytest.mark.parametrize(
    ("upload", "message", "expected"),
    [("bad.png", "draw it", "not a readable image"), (None, "   ", "Please type a message")],
)
def test_bad_input_is_a_sentence_and_the_server_keeps_serving(client, uploads, upload, message, expected):
    image = handle_file(str(uploads / upload)) if upload else None
    text, picture = client.predict(image, message, api_name="/answer")
    assert expected in text and picture is None
    assert client.predict(None, "draw a square", api_name="/answer")[1] is not None


def test_chat_streams_text_then_the_picture():
    session = make_session()
    history, state = [], None
    steps = []
    updates, shown = [], []
    for update in demo_minigpt5.respond(
        session, Image.new("RGB", (40, 40), (0, 0, 200)), "draw it bigger", state, history, "Dialogue",
        3.0, 3, 5, 1.0, 0.9, 2.0, True, 8, progress=lambda value, desc: steps.append(value),
    ):  # fmt: skip
        updates.append(update)
        shown.append(str(update[2][-1]["content"]))  # what the page shows at each yield
    final_history = updates[-1][2]
    kinds = [type(m["content"]).__name__ for m in final_history]
    assert kinds == ["dict", "str", "str", "dict"]  # user picture, user text, answer text, drawn picture
    assert final_history[-1]["role"] == "assistant"
    assert any("drawing" in text for text in shown)  # shown while denoising
    assert steps and steps[-1][0] == steps[-1][1]
    state = updates[-1][3]
    assert len(state.images) == 2  # the upload and the drawn picture


def test_story_upload_sets_a_scene():
    session = make_session("story")
    updates = list(demo_minigpt5.respond(session, Image.new("RGB", (40, 40)), "there is a red circle.", None, [],
                                         "Story", 3.0, 3, 0, 1.0, 0.9, 2.0, True, 8))  # fmt: skip
    state = updates[-1][3]
    assert (
        state.captions == ["there is a red circle."]
        and demo_minigpt5.SCENE_ADDED in updates[-1][2][-1]["content"]
    )


def test_without_quickstart_model_the_command_says_what_to_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINIGPT4_QUICKSTART", str(tmp_path / "none"))
    assert demo_minigpt5.main([]) == 2
    assert "run `make quickstart` first" in capsys.readouterr().err
