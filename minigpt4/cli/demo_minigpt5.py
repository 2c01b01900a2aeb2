"""MiniGPT-5 demo (gradio 6): a story or a dialogue in which the model answers with text and pictures.

    python demo_minigpt5.py                          # the tiny MiniGPT-5 of `make quickstart`, on CPU
    python demo_minigpt5.py --cfg-path eval_configs/minigpt5_eval.yaml --device cuda \
        --options model.llama_model=/weights/vicuna-7b model.sd_model=/weights/stable-diffusion-2-1-base

The official repository has no demo (only `examples/playground.py`); this page follows the conventions of demo.py
and demo_v2.py: 127.0.0.1 by default, `--cfg-path` / `--options` / `--device`, bad input becomes a sentence in the
chat and the server keeps serving, and a stateless endpoint `/answer` (image or None, message) -> (text, image or
None). The text of an answer appears first; the picture follows when the image decoder is done (a progress bar
counts the denoising steps). Options: guidance scale, denoising steps, seed (same seed -> same answer and image),
the official sampling settings, and "always draw" (official `force_generation`).

Styles: "story" prompts in the official VIST format (each message is the next scene; an uploaded picture with its
text sets a scene), "dialogue" in the official MMDialog one (messages with any number of pictures).
"""

from __future__ import annotations

import argparse
import functools
import logging
import re
import tempfile
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

from minigpt4.cli.demo_launch import choose_device, run_demo
from minigpt4.conversation.inputs import ChatInputError, check_message
from minigpt4.conversation.minigpt5_chat import Minigpt5Chat, Minigpt5Conversation, Minigpt5Settings

logger = logging.getLogger("demo_minigpt5")

# The tiny quickstart model answers best as it is evaluated there (VIST-format story, guidance 3, 15 steps);
# real checkpoints get the official defaults.
TINY_DEFAULTS = {"guidance_scale": 3.0, "num_inference_steps": 15, "max_new_tokens": 24}
ASKS_FOR_IMAGE = re.compile(r"\b(draw|paint|sketch|generate|show|picture|image|photo|illustrat\w*)\b", re.I)
SCENE_ADDED = "Scene added to the story; type the next scene and I will draw it."


@dataclass
class Minigpt5Session:
    """What the page needs: the chat driver, the default style and answer options of the loaded model."""

    chat: Minigpt5Chat
    device: torch.device
    style: str = "dialogue"
    defaults: dict[str, Any] = field(default_factory=dict)

    def settings(self) -> Minigpt5Settings:
        return Minigpt5Settings().with_overrides(**self.defaults)


def load_session(args: argparse.Namespace) -> Minigpt5Session:
    """--cfg-path: that config's model (official keys); none: the quickstart's tiny MiniGPT-5 on CPU."""
    from minigpt4.api.minigpt5 import build_run_model, input_processor, quickstart_minigpt5_dir

    tiny = args.cfg_path is None
    device = choose_device(args, tiny)
    if tiny:
        model = build_run_model(quickstart_minigpt5_dir(), device)
        style, defaults = "story", dict(TINY_DEFAULTS)
    else:
        from minigpt4.common.config import Config
        from minigpt4.common.registry import registry

        cfg = Config(argparse.Namespace(cfg_path=args.cfg_path, options=args.options or []), purpose="chat")
        model_cfg = cfg.model_cfg
        model = registry.get_model_class(model_cfg.arch).from_config(model_cfg).to(device).eval()
        model.minigpt4_config = model_cfg
        style = str(cfg.config.get("chat", {}).get("style", "dialogue"))
        defaults = {}
    chat = Minigpt5Chat(model, input_processor(model), device=device)
    return Minigpt5Session(chat, device, style, defaults)


DISPLAY_MIN = 256  # small pictures (the tiny model draws 32 px) are shown enlarged, pixels kept sharp


def _save(image: Image.Image) -> str:
    if min(image.size) < DISPLAY_MIN:
        scale = -(-DISPLAY_MIN // min(image.size))
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    with tempfile.NamedTemporaryFile(suffix=".png", delete=False, prefix="minigpt5_") as handle:
        image.save(handle, format="PNG")
    return handle.name


def options_from(guidance: float, steps: float, seed: float | None, temperature: float, top_p: float,
                 repetition_penalty: float, force: bool, max_new_tokens: float) -> dict[str, Any]:  # fmt: skip
    """The page's controls as `Minigpt5Settings` fields; a seed below 0 (or empty) draws a fresh one."""
    return {
        "guidance_scale": float(guidance),
        "num_inference_steps": int(steps),
        "seed": None if seed is None or int(seed) < 0 else int(seed),
        "temperature": float(temperature),
        "top_p": float(top_p),
        "repetition_penalty": float(repetition_penalty),
        "force_image": bool(force),
        "max_new_tokens": int(max_new_tokens),
    }


def respond(session: Minigpt5Session, image: Any, text: str, state: Minigpt5Conversation | None, history: list,
            style: str, *controls: Any, progress: Any = None):  # fmt: skip
    """Send: the new picture (if any) and the message; stream the answer text, then its picture."""
    from minigpt4.cli.gradio_parts import (
        bot_message,
        checked_image,
        escape_markdown_tags,
        generation_failed,
        image_message,
        user_message,
    )

    chat = session.chat
    history = list(history or [])
    style = "story" if str(style).lower().startswith("story") else "dialogue"
    if state is None or state.style != style:
        state = chat.new_conversation(style)
    try:
        message = check_message(text)
        picture = checked_image(image) if image is not None else None
    except ChatInputError as error:
        yield image, text, [*history, bot_message(str(error))], state
        return
    if picture is not None:
        history.append(image_message(_save(picture)))
    history.append(user_message(escape_markdown_tags(message)))
    if picture is not None and style == "story":  # a scene the user gives with its picture
        chat.add_scene(message, picture, state)
        yield None, "", [*history, bot_message(SCENE_ADDED)], state
        return
    if picture is not None:
        chat.upload_img(picture, state)
    chat.ask(message, state)
    history.append(bot_message("…"))
    yield None, "", history, state

    def on_step(done: int, total: int) -> None:
        if progress is not None:
            progress((done, total), desc="drawing the image (denoising steps)")

    try:
        for event in chat.stream_answer(state, on_step=on_step, **options_from(*controls)):
            if event.kind == "text":
                history[-1] = bot_message(escape_markdown_tags(event.text) or "(no text)")
                if event.wants_image:
                    history.append(bot_message("🎨 drawing the image …"))
                yield None, "", history, state
            elif event.kind == "image":
                history[-1] = image_message(_save(event.image), role="assistant")
                yield None, "", history, state
    except Exception as error:  # keep serving: the failure becomes a chat message
        history.append(bot_message(generation_failed(logger, error)))
        yield None, "", history, state


def answer_once(session: Minigpt5Session, image: Any, message: str) -> tuple[str, Image.Image | None]:
    """Stateless API `/answer`: (image file or None, message) -> (answer text, picture or None). A message that
    asks for a picture (draw, show, image, ...) always gets one (official `force_generation`)."""
    from minigpt4.cli.gradio_parts import checked_image, generation_failed

    chat = session.chat
    try:
        question = check_message(message)
        picture = checked_image(image) if image is not None else None
    except ChatInputError as error:
        return str(error), None
    conv = chat.new_conversation(session.style)
    if picture is not None and session.style == "story":  # the picture is the scene before the one asked for
        chat.add_scene("", picture, conv)
    elif picture is not None:
        chat.upload_img(picture, conv)
    chat.ask(question, conv)
    force = session.settings().force_image or bool(ASKS_FOR_IMAGE.search(question))
    settings = {**session.defaults, "force_image": force}
    if "seed" not in settings:
        settings["seed"] = 0
    try:
        answer = chat.answer(conv, **settings)
    except Exception as error:
        return generation_failed(logger, error), None
    return answer.text, (answer.images[0] if answer.images else None)


def build_demo(session: Minigpt5Session):
    import gradio as gr

    from minigpt4.cli.gradio_parts import UploadImage, add_answer_endpoint

    defaults = session.settings()
    with gr.Blocks(title="MiniGPT-5") as demo:
        gr.Markdown("# MiniGPT-5 demo")
        gr.Markdown(
            "Tell a story or chat; the model answers with text and, when it decides to (or when *Always draw* is "
            "on), a picture. **Story**: each message is the next scene (upload a picture with its text to set a "
            "scene yourself). **Dialogue**: messages with any number of pictures. "
            "[Paper](https://arxiv.org/abs/2310.02239) · [GitHub](https://github.com/eric-ai-lab/MiniGPT-5)"
        )
        state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1):
                image = UploadImage(type="pil", label="Picture (optional)", height=240, elem_id="image",
                                    sources=["upload", "clipboard"])  # fmt: skip
                style = gr.Radio(
                    ["Story", "Dialogue"], value=session.style.capitalize(), label="Style", elem_id="style"
                )
                force = gr.Checkbox(
                    value=defaults.force_image, label="Always draw a picture", elem_id="force"
                )
                guidance = gr.Slider(
                    1.0, 15.0, value=defaults.guidance_scale, step=0.5, label="Guidance scale"
                )
                steps = gr.Slider(1, 100, value=defaults.num_inference_steps, step=1, label="Denoising steps")
                seed = gr.Number(value=0, precision=0, label="Seed (-1: random)")
                with gr.Accordion("Text sampling (official defaults)", open=False):
                    temperature = gr.Slider(
                        0.1, 2.0, value=defaults.temperature, step=0.1, label="Temperature"
                    )
                    top_p = gr.Slider(0.1, 1.0, value=defaults.top_p, step=0.05, label="Top-p")
                    repetition = gr.Slider(1.0, 3.0, value=defaults.repetition_penalty, step=0.1,
                                           label="Repetition penalty")  # fmt: skip
                    max_new = gr.Slider(8, 512, value=defaults.max_new_tokens, step=8, label="Max new tokens")
                clear = gr.Button("Restart", elem_id="restart")
            with gr.Column(scale=2):
                chatbot = gr.Chatbot(label="MiniGPT-5", height=560, elem_id="chatbot")
                with gr.Row():
                    textbox = gr.Textbox(show_label=False, placeholder="Type the next scene or a message",
                                         scale=6, elem_id="textbox")  # fmt: skip
                    send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
        controls = [guidance, steps, seed, temperature, top_p, repetition, force, max_new]

        def handler(image, text, state, history, style, guidance, steps, seed, temperature, top_p, repetition,
                    force, max_new, progress=gr.Progress()):  # noqa: B008  # fmt: skip
            controls = (guidance, steps, seed, temperature, top_p, repetition, force, max_new)
            yield from respond(session, image, text, state, history, style, *controls, progress=progress)

        for trigger, name in ((textbox.submit, "ask"), (send.click, "send")):
            trigger(
                handler,
                [image, textbox, state, chatbot, style, *controls],
                [image, textbox, chatbot, state],
                api_name=name,
                concurrency_id="model",
                api_visibility="undocumented",
            )
        clear.click(lambda: (None, [], None, ""), None, [state, chatbot, image, textbox], api_name="restart",
                    api_visibility="undocumented")  # fmt: skip
        # stateless endpoint for scripts: Client(url).predict(None, "draw a red circle", api_name="/answer")
        add_answer_endpoint(
            functools.partial(answer_once, session),
            lambda: [gr.Textbox(), gr.Image(type="pil", format="png")],
        )
    return demo


def main(argv: list[str] | None = None) -> int:
    return run_demo("demo_minigpt5.py", "MiniGPT-5 demo: stories and dialogues with pictures", load_session,
                    build_demo, argv)  # fmt: skip
