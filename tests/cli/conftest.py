"""Launch a demo on a free local port around a chat session of a real tiny model (random weights)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import torch

from minigpt4.cli.demo_launch import ChatSession
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
