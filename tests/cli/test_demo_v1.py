"""demo.py end to end through gradio_client: upload, ask, streamed answer, bad input, the /answer endpoint."""

from __future__ import annotations

import pytest
from gradio_client import Client, handle_file

from minigpt4.cli import demo_v1 as demo
from minigpt4.cli.demo_launch import TinyModel, build_parser, load_chat
from minigpt4.common.errors import CheckpointError
from tests.cli.conftest import chat_texts, forced_answer, make_session, serving


@pytest.fixture(scope="module")
def session():
    return make_session("minigpt4", "tiny_vicuna0")


@pytest.fixture(scope="module")
def client(session):
    with serving(demo, session) as url:
        yield Client(url, verbose=False)


def test_answer_endpoint(client, session, uploads):
    with forced_answer(session, "a red square###Human: more"):
        answer = client.predict(handle_file(str(uploads / "red.png")), "what is this?", api_name="/answer")
    assert answer == "a red square"  # cut at the template's "###" as the official Chat.answer does


def test_ui_flow_upload_ask_stream(client, session, uploads):
    _, history = client.predict("hello", [], 1, 1.0, api_name="/ask")
    assert chat_texts(history) == [demo.NO_IMAGE_YET]
    history, textbox = client.predict(handle_file(str(uploads / "red.png")), [], api_name="/upload")
    assert textbox["interactive"] is True
    assert history[0]["content"][0]["type"] == "file"
    with forced_answer(session, "it is red"):
        cleared, history = client.predict("what colour is it?", [], 1, 0.7, api_name="/ask")
    assert cleared == ""
    assert chat_texts(history)[-2:] == ["what colour is it?", "it is red"]
    with forced_answer(session, "still red"):
        _, history = client.predict("and with beams?", [], 3, 1.0, api_name="/ask")
    assert chat_texts(history)[-1] == "still red"


@pytest.mark.parametrize(
    ("upload", "message", "expected"),
    [
        ("bad.png", "what?", "not a readable image"),
        ("corrupt.png", "what?", "not a readable image"),
        ("huge.png", "what?", "the limit is 50 megapixels"),
        ("red.png", "   ", "it is empty"),
        ("red.png", "why " * 600, "the limit is 2000"),
    ],
)
def test_bad_input_gets_a_readable_answer_and_the_server_keeps_serving(
    client, session, uploads, upload, message, expected
):
    reply = client.predict(handle_file(str(uploads / upload)), message, api_name="/answer")
    assert expected in reply
    with forced_answer(session, "fine"):
        assert client.predict(handle_file(str(uploads / "red.png")), "ok?", api_name="/answer") == "fine"


def test_bad_upload_in_the_ui_is_a_chat_message(client, uploads):
    history, _ = client.predict(handle_file(str(uploads / "corrupt.png")), [], api_name="/upload")
    assert "not a readable image" in chat_texts(history)[-1]


def test_cli_defaults_bind_localhost():
    args = build_parser("x").parse_args([])
    assert (args.host, args.share, args.cfg_path, args.port) == ("127.0.0.1", False, None, 7860)
    args = build_parser("x").parse_args(
        ["--share", "--host", "0.0.0.0", "--device", "cpu", "--options", "a=1"]
    )
    assert (args.host, args.share, args.device, args.options) == ("0.0.0.0", True, "cpu", ["a=1"])


def test_missing_tiny_checkpoint_says_make_quickstart(tmp_path, capsys, monkeypatch):
    missing = TinyModel("minigpt4", "tiny_vicuna0", str(tmp_path / "nope.pth"))
    with pytest.raises(CheckpointError, match="make quickstart"):
        load_chat(build_parser("x").parse_args([]), missing)
    monkeypatch.setattr(demo, "TINY_MODEL", missing)
    assert demo.main([]) == 2
    assert "make quickstart" in capsys.readouterr().err


def test_placeholder_paths_of_official_configs_are_reported(capsys):
    assert demo.main(["--cfg-path", "eval_configs/minigpt4_eval.yaml"]) == 2
    assert "model.ckpt is still the placeholder" in capsys.readouterr().err
    options = ["--options", "model.ckpt=/nonexistent/ckpt.pth", "model.llama_model=/nonexistent/llm"]
    assert demo.main(["--cfg-path", "eval_configs/minigpt4_eval.yaml", *options]) == 2
    assert "model.ckpt = /nonexistent/ckpt.pth does not exist" in capsys.readouterr().err
