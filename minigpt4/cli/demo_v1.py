"""MiniGPT-4 chat demo (gradio 6).

    python demo.py                                   # the tiny model of `make quickstart`, on CPU
    python demo.py --cfg-path eval_configs/minigpt4_eval.yaml --gpu-id 0 \
        --options model.llama_model=/weights/vicuna model.ckpt=/weights/pretrained_minigpt4.pth

Official features (image upload, chat, beam-search and temperature sliders, restart) plus streamed answers,
example images, several images per conversation, a readable chat message for every bad input, and a stateless
API endpoint `/answer` (image, message) -> answer text for scripts (`gradio_client`).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import gradio as gr

from minigpt4.cli.demo_launch import MAX_LENGTH, ChatSession, TinyModel, load_chat, run_demo
from minigpt4.cli.gradio_parts import (
    ImageFile,
    UploadImage,
    add_answer_endpoint,
    bot_message,
    checked_image,
    generation_failed,
    image_message,
    page_header,
    read_uploaded_file,
    user_message,
    wire_restart,
)
from minigpt4.conversation.inputs import ChatInputError, check_message

# The model `python demo.py` opens with no arguments: change this one line if the quickstart output moves.
TINY_MODEL = TinyModel("minigpt4", "tiny_vicuna0", "outputs/quickstart/minigpt4_tiny/checkpoint_best.pth")

MAX_NEW_TOKENS = 300  # official demo.py

TITLE = "# MiniGPT-4 demo"
DESCRIPTION = (
    "Upload an image (or pick an example), press **Upload & Start Chat**, then ask about it. You can add more images to the same "
    "conversation; **Restart** starts over. [Project page](https://minigpt-4.github.io) · "
    "[GitHub](https://github.com/Vision-CAIR/MiniGPT-4) · [Paper](https://arxiv.org/abs/2304.10592)"
)
UPLOAD_FIRST = "Please upload your image first"
NO_IMAGE_YET = "Please upload an image and press **Upload & Start Chat** first."

logger = logging.getLogger("demo")


def new_state(session: ChatSession) -> dict[str, Any]:
    return {"conv": session.template.copy(), "images": []}


def add_image(session: ChatSession, image: Any, state: dict | None, history: list) -> tuple:
    """Upload & Start Chat: add the image to the conversation (a new conversation if none)."""
    history = list(history or [])
    try:
        picture = checked_image(image)
    except ChatInputError as error:
        return state, [*history, bot_message(str(error))], gr.update()
    state = state or new_state(session)
    session.add_image(picture, state["conv"], state["images"])
    count = len(state["images"])
    history += [image_message(image), bot_message(f"Image {count} received. Ask me about it.")]
    return state, history, gr.update(interactive=True, placeholder="Type a question and press Enter")


def take_file(path: str | None, history: list) -> tuple:
    """The upload drop zone: a readable picture goes into the image box, a bad file gets a sentence in the chat;
    the drop zone is emptied either way, ready for the next file."""
    picture, history = read_uploaded_file(path, history)
    return (picture if picture is not None else gr.update()), history, None


def respond(
    session: ChatSession,
    text: str,
    state: dict | None,
    history: list,
    num_beams: int,
    temperature: float,
):
    """Ask and stream the answer into the chat (beam search > 1 cannot stream: the answer comes at once)."""
    history = list(history or [])
    try:
        message = check_message(text)
        if state is None or not state["images"]:
            raise ChatInputError(NO_IMAGE_YET)
    except ChatInputError as error:
        yield text, [*history, bot_message(str(error))], state
        return
    chat = session.chat
    chat.ask(message, state["conv"])
    history += [user_message(message), bot_message("")]
    kwargs = dict(
        num_beams=int(num_beams),
        temperature=float(temperature),
        max_new_tokens=MAX_NEW_TOKENS,
        max_length=MAX_LENGTH,
    )
    try:
        if int(num_beams) == 1:
            for partial in chat.stream_answer_text(state["conv"], state["images"], **kwargs):
                history[-1] = bot_message(partial)
                yield "", history, state
        else:
            answer, _ = chat.answer(state["conv"], state["images"], **kwargs)
            history[-1] = bot_message(answer)
    except Exception as error:  # keep serving: the failure becomes a chat message
        state["conv"].messages[-1][1] = ""
        history[-1] = bot_message(generation_failed(logger, error))
    yield "", history, state


def answer_once(session: ChatSession, image: Any, message: str) -> str:
    """Stateless API `/answer`: one image, one question, the answer text (or a readable error sentence)."""
    try:
        picture = checked_image(image)
        question = check_message(message)
    except ChatInputError as error:
        return str(error)
    return session.answer_one_image(picture, question, max_new_tokens=MAX_NEW_TOKENS, max_length=MAX_LENGTH)


def build_demo(session: ChatSession) -> gr.Blocks:
    with gr.Blocks(title="MiniGPT-4") as demo:
        page_header(TITLE, DESCRIPTION, session.model_note())
        state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1):
                # shows the picture only: uploads go through the drop zone below, which reports bad files
                image = UploadImage(
                    type="filepath", label="Image", height=300, interactive=False, elem_id="image"
                )
                image_file = ImageFile(elem_id="image_file")
                upload_button = gr.Button("Upload & Start Chat", variant="primary", elem_id="upload")
                clear = gr.Button("Restart", elem_id="restart")
                num_beams = gr.Slider(1, 10, value=1, step=1, interactive=True, label="beam search numbers")
                temperature = gr.Slider(
                    0.1,
                    2.0,
                    value=1.0,
                    step=0.1,
                    interactive=True,
                    label="Temperature",
                    elem_id="temperature",
                )
                examples = session.example_images()
                if examples:
                    gr.Examples(
                        [[str(p)] for p in examples],
                        inputs=[image],
                        label="Example images",
                        elem_id="examples",
                    )
            with gr.Column(scale=2):
                chatbot = gr.Chatbot(label="MiniGPT-4", height=520, elem_id="chatbot")
                textbox = gr.Textbox(
                    label="User",
                    placeholder=UPLOAD_FIRST,
                    interactive=False,
                    elem_id="textbox",
                )

        image_file.upload(
            take_file,
            [image_file, chatbot],
            [image, chatbot, image_file],
            api_visibility="private",
            queue=False,
        )
        upload_button.click(
            functools.partial(add_image, session),
            [image, state, chatbot],
            [state, chatbot, textbox],
            api_name="upload",
            concurrency_id="model",
            api_visibility="undocumented",
        )
        textbox.submit(
            functools.partial(respond, session),
            [textbox, state, chatbot, num_beams, temperature],
            [textbox, chatbot, state],
            api_name="ask",
            concurrency_id="model",
            api_visibility="undocumented",
        )

        def restart():
            return None, [], None, gr.update(interactive=False, placeholder=UPLOAD_FIRST, value="")

        wire_restart(clear, restart, [state, chatbot, image, textbox])
        # the chat's own trash icon empties the view: the model's conversation goes with it (as Restart)
        chatbot.clear(restart, None, [state, chatbot, image, textbox], api_visibility="private", queue=False)

        # stateless endpoint for scripts: Client(url).predict(handle_file(path), "question", api_name="/answer")
        add_answer_endpoint(functools.partial(answer_once, session), lambda: gr.Textbox())
    return demo


def main(argv: list[str] | None = None) -> int:
    return run_demo(
        "demo.py", "MiniGPT-4 chat demo", functools.partial(load_chat, tiny=TINY_MODEL), build_demo, argv
    )
