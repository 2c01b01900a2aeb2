"""Gradio 6 pieces the demo pages share: upload components that report bad files, chat-history helpers, page
header, Restart wiring, the failed-generation sentence, launch.

A person uploads through `ImageFile`, a file drop zone that takes any file: the server opens it and puts either
the picture into the image box or a readable sentence into the chat. The image components themselves reject a
non-image in the browser before our code sees it (`gr.Image` with a pop-up of its own, `gr.ImageEditor`
silently), so in both demos they only show (and, in demo_v2, take the drawing).

Gradio also decodes image values before our code runs, so a corrupt file sent through the API would fail the
request. The `UploadImage` / `SketchImage` builders catch that and hand a `BadUpload` to the handler, which then
answers with the same sentence and the server keeps serving.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import Any

import gradio as gr
from PIL import Image

from minigpt4.conversation.inputs import ChatInputError, open_upload

logger = logging.getLogger(__name__)

BAD_UPLOAD_TEXT = (
    "The upload is not a readable image (corrupt or not a picture); please upload a PNG, JPEG or WebP file."
)


UPLOAD_LABEL = "Upload an image (PNG, JPEG or WebP): drop it here or click"


class BadUpload(str):
    """Handed to a handler instead of an image when gradio could not decode the upload; the text says why."""


def _tolerant(component: gr.components.Component) -> gr.components.Component:
    """Make `component` hand a `BadUpload` to handlers when gradio cannot decode the upload.

    Patched on the instance: a subclass would make gradio write a `.pyi` stub next to this file at import time.
    """
    decode = component.preprocess

    def preprocess(payload: Any) -> Any:
        try:
            return decode(payload)
        except Exception as exc:  # any decoder error: corrupt file, not an image, decompression bomb
            logger.info("rejected upload: %s", exc)
            return BadUpload(BAD_UPLOAD_TEXT)

    component.preprocess = preprocess  # type: ignore[method-assign]
    return component


def UploadImage(**kwargs: Any) -> gr.Image:
    """`gr.Image(**kwargs)` whose undecodable uploads arrive as `BadUpload` instead of failing the request."""
    return _tolerant(gr.Image(**kwargs))


def SketchImage(**kwargs: Any) -> gr.ImageEditor:
    """`gr.ImageEditor(**kwargs)` (draw a box for [identify]) with the same bad-upload handling."""
    return _tolerant(gr.ImageEditor(**kwargs))


def ImageFile(**kwargs: Any) -> gr.File:
    """The upload drop zone of both demos: any file reaches the server, which says what is wrong with a bad one."""
    return gr.File(label=UPLOAD_LABEL, file_count="single", file_types=None, height=150, **kwargs)


def read_uploaded_file(path: str | None, history: list) -> tuple[str | None, list]:
    """An `ImageFile` upload: (the path, for the image box; unchanged history) when it opens as a picture, else
    (None, history + the sentence saying why)."""
    history = list(history or [])
    if path is None:
        return None, history
    try:
        checked_image(path)
    except ChatInputError as error:
        return None, [*history, bot_message(str(error))]
    return path, history


def checked_image(value: Any) -> Image.Image:
    """A decoded RGB image from an upload component's value; raises ChatInputError for every bad case."""
    if isinstance(value, BadUpload):
        raise ChatInputError(str(value))
    return open_upload(value)


def user_message(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def bot_message(content: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


def image_message(path: str, role: str = "user") -> dict[str, Any]:
    return {"role": role, "content": {"path": path}}


def escape_markdown_tags(text: str) -> str:
    """Show `<p>`, `<delim>`, ... literally in the Chatbot's markdown (official demo_v2 escaping)."""
    return text.replace("<", "&lt;").replace(">", "&gt;")


def page_header(title: str, description: str, model_note: str) -> None:
    """The top of a chat page (inside its `gr.Blocks`): the title, how to use the page, which model answers."""
    gr.Markdown(title)
    gr.Markdown(description)
    gr.Markdown(model_note)


def wire_restart(button: gr.Button, restart: Callable[[], Any], outputs: list[Any]) -> None:
    """Restart button -> `restart` (API name `/restart`). Not queued: it must not wait behind a running answer,
    and leaves no spinner on the image box."""
    button.click(restart, None, outputs, api_name="restart", api_visibility="undocumented", queue=False)


def generation_failed(logger: logging.Logger, error: Exception) -> str:
    """Log a failed generation with its traceback and return the sentence the chat shows: the page keeps
    serving."""
    logger.exception("generation failed")
    return f"Sorry, generation failed: {type(error).__name__}: {error}"


def add_answer_endpoint(handler: Callable[..., Any], make_outputs: Callable[[], Any]) -> None:
    """The stateless API endpoint `/answer` (image file, message) -> outputs, on hidden components; call it inside
    the demo's `gr.Blocks`. make_outputs builds the output component(s) inside the hidden row."""
    with gr.Row(visible=False):
        image = UploadImage(type="filepath")
        message = gr.Textbox()
        outputs = make_outputs()
        button = gr.Button()
    button.click(handler, [image, message], outputs, api_name="answer", concurrency_id="model")


def serve(demo: gr.Blocks, args: argparse.Namespace, **launch_kwargs: Any) -> Any:
    """Launch on --host/--port (127.0.0.1 by default; --share opts into a public link)."""
    demo.queue(default_concurrency_limit=1)
    return demo.launch(server_name=args.host, server_port=args.port, share=args.share, **launch_kwargs)
