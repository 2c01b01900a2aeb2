"""Launch a demo on a free local port around a chat session of a real tiny model (random weights); the upload
files every demo test sends; what a chat history shows."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import pytest
import torch
from PIL import Image

from minigpt4.cli.demo_launch import ChatSession
from tests.cli.browser import browser, chromium_path  # noqa: F401 (pytest fixtures of the browser tests)
from tests.conversation.tiny import tiny_session as make_session  # noqa: F401 (re-exported for the tests)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(demo_module, session: ChatSession) -> Iterator[str]:
    """Build the demo's Blocks for `session`, serve it on 127.0.0.1:<free port>, yield its URL, close it."""
    app = demo_module.build_demo(session)
    app.queue(default_concurrency_limit=1)
    _, url, _ = app.launch(
        server_name="127.0.0.1",
        server_port=free_port(),
        prevent_thread_lock=True,
        quiet=True,
        show_error=True,
    )
    try:
        yield url
    finally:
        app.close()


@contextlib.contextmanager
def forced_answer(session: ChatSession, text: str) -> Iterator[None]:
    """Make the model answer exactly `text` then EOS, whatever the sampling (a hook on the LM head)."""
    tokenizer = session.chat.model.llama_tokenizer
    target = [*tokenizer(text, add_special_tokens=False).input_ids, tokenizer.eos_token_id]
    lm_head = session.chat.model.llama_model.get_output_embeddings()
    step = {"n": 0}

    def hook(module, inputs, logits):
        token = target[min(step["n"], len(target) - 1)]
        step["n"] += 1
        forced = torch.full_like(logits, -1e4)
        forced[..., token] = 1e4
        return forced

    handle = lm_head.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@pytest.fixture(scope="session")
def uploads(tmp_path_factory):
    """A folder of upload files for the demo tests: pictures and the bad uploads each page must turn into a
    sentence."""
    folder = tmp_path_factory.mktemp("uploads")
    Image.new("RGB", (64, 48), (220, 30, 30)).save(folder / "red.png")
    Image.new("RGB", (200, 100), (240, 240, 240)).save(folder / "grey.png")
    Image.new("RGB", (80, 80), (0, 0, 200)).save(folder / "blue.png")
    sketch = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    sketch.paste((255, 0, 0, 255), (50, 25, 150, 75))  # drawn over the middle half of grey.png
    sketch.save(folder / "sketch.png")
    (folder / "bad.png").write_text("this is text, not a picture")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    Image.new("L", (9000, 6000)).save(folder / "huge.png")  # 54 MP, above the 50 MP limit
    return folder


def chat_texts(history: list) -> list[str]:
    """The text parts of a chat history as gradio_client returns it."""
    return [part["text"] for message in history for part in message["content"] if part.get("type") == "text"]


def chat_files(history: list) -> list[str]:
    """The file parts (pictures) of a chat history as gradio_client returns it."""
    return [part["file"] for message in history for part in message["content"] if part.get("type") == "file"]
