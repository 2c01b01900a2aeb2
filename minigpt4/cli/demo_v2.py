"""MiniGPT-v2 chat demo (gradio 6): task shortcuts, draw-a-box for [identify], answers with coloured boxes.

    python demo_v2.py                                # the tiny model of `make quickstart`, on CPU
    python demo_v2.py --cfg-path eval_configs/minigptv2_eval.yaml --gpu-id 0 \
        --options model.llama_model=/weights/Llama-2-7b-chat-hf model.ckpt=/weights/minigptv2_checkpoint.pth

Official behaviour kept: temperature slider (0.1-1.5, default 0.6), 500 new tokens, and each stored answer
replaced by '</s>' after it is shown, so earlier answers are not fed back (official demo_v2 quirk).
Ours: a new image joins the running conversation instead of resetting it (Restart resets), bad input becomes a
chat message, and a stateless API endpoint `/answer` (image, message) -> (answer text, annotated image or None).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import tempfile
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from minigpt4.cli.demo_launch import (
    EXAMPLES_DIR,
    MAX_LENGTH,
    SHAPES_EXAMPLES_DIR,
    ChatSession,
    TinyModel,
    load_chat,
    run_demo,
)
from minigpt4.cli.gradio_parts import (
    BadUpload,
    ImageFile,
    SketchImage,
    add_answer_endpoint,
    bot_message,
    checked_image,
    escape_markdown_tags,
    generation_failed,
    image_message,
    page_header,
    read_uploaded_file,
    user_message,
    wire_restart,
)
from minigpt4.conversation.grounding_boxes import (
    answer_html,
    box_from_mask,
    draw_answer,
    draw_boxes,
    format_box,
    has_box,
)
from minigpt4.conversation.inputs import ChatInputError, check_message
from minigpt4.conversation.templates import IMAGE_MESSAGE

# The model `python demo_v2.py` opens with no arguments: change this one line if the quickstart output moves.
TINY_MODEL = TinyModel("minigpt_v2", "tiny", "outputs/quickstart/minigpt_v2_tiny/checkpoint_best.pth")

MAX_NEW_TOKENS = 500  # official demo_v2.py
TITLE = "# MiniGPT-v2 demo"
DESCRIPTION = (
    "Upload an image and chat. Start a message with a task tag for grounded answers: "
    "`[grounding]` describe with boxes, `[refer]` find an object, `[detection]` box all instances, "
    "`[identify]` name the object you draw on, `[vqa]` short answers; or no tag for free chat. "
    "[Project page](https://minigpt-v2.github.io) · [GitHub](https://github.com/Vision-CAIR/MiniGPT-4)"
)
DEFAULT_TEMPERATURE = 0.6

# (shortcut label, text put in the box, hint) as in the official demo
TASKS: list[tuple[str, str, str]] = [
    ("No Tag", "", "Chat freely about the image."),
    (
        "Grounding",
        "[grounding] describe this image in detail",
        "A detailed description with the objects boxed.",
    ),
    ("Refer", "[refer] ", "Type an object description; the answer is its box."),
    ("Detection", "[detection] ", "Type object names; the answer boxes every instance."),
    (
        "Identify",
        "[identify] what is this ",
        "Draw on the object in the image (or type a box); the answer names it.",
    ),
    ("VQA", "[vqa] ", "Ask a question that has a short answer."),
]
EXAMPLE_PROMPTS = {  # everyday scenes, for real checkpoints (the official demo's kinds of prompts)
    "shapes.png": "[grounding] describe this image in detail",
    "street.png": "[detection] cars",
    "garden.png": "[refer] the red flower",
    "kitchen.png": "[identify] what is this {<10><45><40><90>}",
    "beach.png": "[vqa] what is the weather like",
}
# held-out shapes-world scenes for the tiny quickstart model, with the kinds of prompts it was trained on
SHAPES_EXAMPLE_PROMPTS = {
    "red_circle.png": "[refer] the red circle",
    "blue_square.png": "[vqa] What color is the square?",
    "green_triangle.png": "[identify] what object is in this location {<26><34><84><92>}",
    "yellow_circle.png": "[refer] give me the location of the yellow circle",
}
NO_IMAGE_YET = "Please upload an image first (drop a picture into the upload box), then send your message."
TYPE_HERE = "Type a message; start it with a task tag ([refer], [vqa], ...) or pick a shortcut"
UPLOAD_FIRST = "Upload an image, then type here"
FORGET_LABEL = "Each message sees only the image (earlier turns forgotten)"
IDENTIFY_NEEDS_BOX = "For [identify], draw on the object in the image with the brush, or type its box as {<x1><y1><x2><y2>} (0-100)."

logger = logging.getLogger("demo_v2")


def new_state(session: ChatSession) -> dict[str, Any]:
    return {"conv": session.template.copy(), "images": [], "image_key": None, "last_image": None}


def _image_key(image: Image.Image) -> str:
    return hashlib.sha1(image.tobytes() + repr(image.size).encode()).hexdigest()


def _sketch_mask(value: dict) -> np.ndarray | None:
    """(H, W) bool mask of everything drawn on the editor layers, or None when nothing was drawn."""
    masks = [np.asarray(layer.convert("RGBA"))[..., 3] > 0 for layer in value.get("layers") or []]
    if not masks:
        return None
    mask = np.logical_or.reduce(masks)
    return mask if mask.any() else None


def _save(image: Image.Image) -> str:
    with tempfile.NamedTemporaryFile(suffix=".png", delete=False, prefix="minigptv2_") as handle:
        image.save(handle, format="PNG")
    return handle.name


def sent() -> dict:
    """The textbox once a message is sent: emptied, and the placeholder says what to type next (a fresh update
    each time: gradio may consume the dict it is given)."""
    return gr.update(value="", placeholder=TYPE_HERE)


def take_file(path: str | None, history: list) -> tuple:
    """The upload drop zone: a readable picture becomes the editor's background (earlier drawings dropped) and the
    textbox invites a message; a bad file gets a sentence in the chat. The drop zone is emptied either way."""
    picture, history = read_uploaded_file(path, history)
    if picture is None:
        return gr.update(), history, None, gr.update()
    return (
        {"background": picture, "layers": [], "composite": picture},
        history,
        None,
        gr.update(placeholder=TYPE_HERE),
    )


def display_answer(answer: str) -> str:
    """Chat text of a finished answer: grounded phrases coloured, boxes removed, malformed box text reported."""
    return answer_html(answer)


def examples_for(session: ChatSession) -> list[list[str]]:
    """(image, prompt) examples of the page: shapes-world scenes for the tiny model, everyday ones else."""
    folder, prompts = (
        (SHAPES_EXAMPLES_DIR, SHAPES_EXAMPLE_PROMPTS)
        if session.knows_only_shapes
        else (EXAMPLES_DIR, EXAMPLE_PROMPTS)
    )
    return [[str(folder / name), prompt] for name, prompt in prompts.items() if (folder / name).is_file()]


def forget_earlier_turns(session: ChatSession, state: dict) -> None:
    """Start the model's conversation over from the last image alone (the option `FORGET_LABEL`).

    The official demo_v2 keeps every earlier question in the prompt (answers become '</s>'), so a `[refer]`
    question leaves the model answering later questions with (partial) boxes; the tiny model, trained on
    single-turn prompts, does so every time. With the option on, each message is asked as a first turn."""
    if not state["images"]:
        return
    conv = session.template.copy()
    conv.append_message(conv.roles[0], IMAGE_MESSAGE)
    state["conv"], state["images"] = conv, state["images"][-1:]


def respond(
    session: ChatSession,
    editor: Any,
    text: str,
    state: dict | None,
    history: list,
    temperature: float,
    forget: bool = False,
):
    """Send: take a new image if the editor holds one, add the [identify] box, stream the answer, draw its boxes."""
    history = list(history or [])
    state = state or new_state(session)
    try:
        message = check_message(text)
        background = editor.get("background") if isinstance(editor, dict) else editor
        if isinstance(background, BadUpload) or background is not None:
            picture = checked_image(background)
            key = _image_key(picture)
            if key != state["image_key"]:
                session.add_image(picture, state["conv"], state["images"])
                state.update(image_key=key, last_image=picture)
                history.append(image_message(_save(picture)))
        if not state["images"]:
            raise ChatInputError(NO_IMAGE_YET)
        if "[identify]" in message and not has_box(message):
            mask = _sketch_mask(editor) if isinstance(editor, dict) else None
            box = box_from_mask(mask) if mask is not None else None
            if box is None:
                raise ChatInputError(IDENTIFY_NEEDS_BOX)
            message = f"{message} {format_box(box)}"
            preview = draw_boxes(state["last_image"], format_box(box))
            if preview is not None:
                history.append(image_message(_save(preview)))
    except ChatInputError as error:
        yield text, [*history, bot_message(str(error))], state
        return

    chat = session.chat
    if forget:
        forget_earlier_turns(session, state)
    chat.ask(message, state["conv"])
    history += [user_message(escape_markdown_tags(message)), bot_message("")]
    answer = ""
    try:
        for partial in chat.stream_answer_text(
            state["conv"],
            state["images"],
            max_new_tokens=MAX_NEW_TOKENS,
            max_length=MAX_LENGTH,
            temperature=float(temperature),
        ):
            answer = partial
            history[-1] = bot_message(escape_markdown_tags(answer))
            yield sent(), history, state
    except Exception as error:  # keep serving: the failure becomes a chat message
        history[-1] = bot_message(generation_failed(logger, error))
        state["conv"].messages[-1][1] = "</s>"
        yield sent(), history, state
        return
    state["conv"].messages[-1][1] = "</s>"  # official demo_v2: earlier answers are not fed back
    history[-1] = bot_message(display_answer(answer))
    annotated = draw_answer(state["last_image"], answer)
    if annotated is not None:
        history.append(image_message(_save(annotated), role="assistant"))
    yield sent(), history, state


def answer_once(session: ChatSession, image: Any, message: str) -> tuple[str, Image.Image | None]:
    """Stateless API `/answer`: (image, message) -> (answer text, the image with the answer's boxes or None)."""
    try:
        picture = checked_image(image)
        question = check_message(message)
        if "[identify]" in question and not has_box(question):
            raise ChatInputError(
                IDENTIFY_NEEDS_BOX.replace("draw on the object in the image with the brush, or ", "")
            )
    except ChatInputError as error:
        return str(error), None
    answer = session.answer_one_image(
        picture,
        question,
        max_new_tokens=MAX_NEW_TOKENS,
        max_length=MAX_LENGTH,
        temperature=DEFAULT_TEMPERATURE,
    )
    return answer, draw_answer(picture, answer)


def pick_task(index: int) -> tuple[str, str]:
    _, prefix, hint = TASKS[index]
    return prefix, f"**{TASKS[index][0]}**: {hint}"


def build_demo(session: ChatSession) -> gr.Blocks:
    with gr.Blocks(title="MiniGPT-v2") as demo:
        page_header(TITLE, DESCRIPTION, session.model_note())
        state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1):
                editor = SketchImage(
                    type="pil",
                    label="Image (draw on an object for [identify])",
                    brush=gr.Brush(default_size=20, colors=["#ff0000"], color_mode="fixed"),
                    height=360,
                    # no upload of its own: the editor drops a non-image silently in the browser; the drop
                    # zone below lets the server say what is wrong with a bad file
                    sources=[],
                    elem_id="image",
                )
                image_file = ImageFile(elem_id="image_file")
                temperature = gr.Slider(
                    0.1,
                    1.5,
                    value=DEFAULT_TEMPERATURE,
                    step=0.1,
                    interactive=True,
                    label="Temperature",
                    elem_id="temperature",
                )
                forget = gr.Checkbox(
                    value=session.knows_only_shapes,
                    label=FORGET_LABEL,
                    info="Off: the official demo_v2 behaviour (earlier questions stay in the prompt).",
                    elem_id="forget",
                )
                clear = gr.Button("Restart", elem_id="restart")
            with gr.Column(scale=2):
                chatbot = gr.Chatbot(label="MiniGPT-v2", height=520, elem_id="chatbot")
                shortcuts = gr.Dataset(
                    components=[gr.Textbox(visible=False)],
                    samples=[[label] for label, _, _ in TASKS],
                    type="index",
                    label="Task Shortcuts",
                )
                hint = gr.Markdown("")
                with gr.Row():
                    textbox = gr.Textbox(
                        label="Message",
                        show_label=False,
                        placeholder=UPLOAD_FIRST,
                        scale=6,
                        elem_id="textbox",
                    )
                    send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
        examples = examples_for(session)
        if examples:
            gr.Examples(
                examples,
                inputs=[editor, textbox],
                label="Examples",
                elem_id="examples",
            )

        image_file.upload(
            take_file,
            [image_file, chatbot],
            [editor, chatbot, image_file, textbox],
            api_visibility="private",
            queue=False,
        )
        shortcuts.click(pick_task, shortcuts, [textbox, hint], api_visibility="private")
        for trigger, name in ((textbox.submit, "ask"), (send.click, "send")):
            trigger(
                functools.partial(respond, session),
                [editor, textbox, state, chatbot, temperature, forget],
                [textbox, chatbot, state],
                api_name=name,
                concurrency_id="model",
                api_visibility="undocumented",
            )

        def restart():
            return None, [], gr.update(value="", placeholder=UPLOAD_FIRST), ""

        wire_restart(clear, restart, [state, chatbot, textbox, hint])
        # the editor is emptied in the browser: a server reply emptying it, once the server had set its picture
        # (upload box, example), left its spinner running until the next Send (issue #25)
        clear.click(None, None, editor, js="() => null", api_visibility="private")
        # the chat's own trash icon empties the view: the model's conversation goes with it
        chatbot.clear(lambda: None, None, state, api_visibility="private", queue=False)

        # stateless endpoint for scripts: Client(url).predict(handle_file(path), "[refer] ...", api_name="/answer")
        add_answer_endpoint(
            functools.partial(answer_once, session),
            lambda: [
                gr.Textbox(),
                gr.Image(type="pil", format="png"),
            ],  # answer text, the image with its boxes
        )
    return demo


def main(argv: list[str] | None = None) -> int:
    return run_demo(
        "demo_v2.py", "MiniGPT-v2 chat demo", functools.partial(load_chat, tiny=TINY_MODEL), build_demo, argv
    )
