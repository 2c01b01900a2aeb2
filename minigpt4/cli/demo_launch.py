"""Command line, model loading and launch shared by the demo pages (demo.py, demo_v2.py; demo_minigpt5.py loads
its own model but parses, launches and reports errors here).

With `--cfg-path` the demo loads that eval config (official keys; `low_resource: True` means 8-bit on GPU).
Without it, it opens the tiny model `make quickstart` trains, on CPU, from a config built in memory.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from PIL import Image

from minigpt4.common.config import Config, load_yaml, model_default_path
from minigpt4.common.errors import CheckpointError, MiniGPTError
from minigpt4.common.paths import REPO_ROOT
from minigpt4.common.warnings_filter import quiet_known_warnings
from minigpt4.conversation.chat import Chat
from minigpt4.conversation.templates import Conversation, template_for

logger = logging.getLogger(__name__)

PLACEHOLDER_PREFIX = "please set this value"
EXAMPLES_DIR = REPO_ROOT / "examples"  # the example images both demos offer to real checkpoints
SHAPES_EXAMPLES_DIR = EXAMPLES_DIR / "shapes_world"  # held-out shapes-world scenes, for the tiny models
MAX_LENGTH = 2000  # official demo.py and demo_v2.py: the context is cut on the left beyond this many tokens


@dataclass(frozen=True)
class TinyModel:
    """The quickstart model a demo opens with no arguments; `checkpoint` is relative to the repository.

    It may name a checkpoint file (`{"model": tensors}`), a training run folder (its `checkpoint_best.pth`, else
    its newest `checkpoint_*.pth`) or a saved model folder (`minigpt4_config.yaml`, see `minigpt4.api.hub`).
    """

    arch: str
    model_type: str
    checkpoint: str

    @property
    def location(self) -> Path:
        path = Path(self.checkpoint)
        return path if path.is_absolute() else REPO_ROOT / path

    @property
    def is_saved_model_folder(self) -> bool:
        from minigpt4.api.hub import is_pretrained_dir

        return self.location.is_dir() and is_pretrained_dir(self.location)

    @property
    def checkpoint_path(self) -> Path:
        """The checkpoint file to load (for a run folder: best, else newest); raises when there is none."""
        location = self.location
        if location.is_dir():
            best = location / "checkpoint_best.pth"
            found = sorted(location.glob("checkpoint_*.pth"), key=lambda p: p.stat().st_mtime)
            if best.is_file() or found:
                return best if best.is_file() else found[-1]
        elif location.is_file():
            return location
        raise CheckpointError(
            f"{location}: the tiny {self.arch} model the demo opens by default is missing. "
            "Run `make quickstart` first (it trains it in a few minutes on CPU), or pass --cfg-path "
            "eval_configs/<name>_eval.yaml --options model.ckpt=<your checkpoint> for the real model."
        )


@dataclass
class ChatSession:
    """What a demo needs: the Chat driver, a fresh-copy template and the device it runs on."""

    chat: Chat
    template: Conversation
    device: torch.device
    arch: str
    model_type: str

    @property
    def knows_only_shapes(self) -> bool:
        """The tiny models (`make quickstart`): they learned the shapes world and nothing else."""
        return self.model_type.startswith("tiny")

    def model_note(self) -> str:
        """One line for the page saying what the model is and what it knows."""
        if self.knows_only_shapes:
            return (
                f"**Model: tiny {self.arch} from `make quickstart`** (trained on CPU in minutes, not the 7B "
                "MiniGPT). It knows only the synthetic shapes world: one red, green, blue or yellow circle, "
                "square or triangle on white. The examples are held-out scenes of that world."
            )
        return f"**Model:** {self.arch} / {self.model_type}."

    def example_images(self) -> list[Path]:
        """The example images the page shows: shapes-world scenes for the tiny models, everyday scenes else."""
        folder = SHAPES_EXAMPLES_DIR if self.knows_only_shapes else EXAMPLES_DIR
        return sorted(folder.glob("*.png")) if folder.is_dir() else []

    def add_image(self, picture: Image.Image, conv: Conversation, images: list) -> None:
        """Upload a decoded image into a conversation and encode it at once (both demos)."""
        self.chat.upload_img(picture, conv, images)
        self.chat.encode_img(images)

    def answer_one_image(self, picture: Image.Image, question: str, **options: Any) -> str:
        """A fresh conversation: one image, one question, the cleaned answer (the demos' `/answer` endpoint).
        options: `Chat.answer` keywords (max_new_tokens, max_length, temperature, ...)."""
        conv, images = self.template.copy(), []
        self.add_image(picture, conv, images)
        self.chat.ask(question, conv)
        answer, _ = self.chat.answer(conv, images, **options)
        return answer


def build_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--cfg-path",
        default=None,
        help="eval config, e.g. eval_configs/minigpt4_eval.yaml (default: the tiny quickstart model on CPU)",
    )
    parser.add_argument("--gpu-id", type=int, default=0, help="GPU to use (official flag); see also --device")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (overrides --gpu-id)")
    parser.add_argument(
        "--options",
        nargs="+",
        default=None,
        help="override config keys, e.g. --options model.ckpt=/weights/pretrained_minigpt4.pth",
    )
    parser.add_argument("--port", type=int, default=7860, help="port to serve on")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    return parser


def choose_device(args: argparse.Namespace, tiny: bool) -> torch.device:
    """--device wins; the tiny model runs on CPU; a real config runs on cuda:<gpu-id> when CUDA exists."""
    if args.device:
        return torch.device(args.device)
    if tiny or not torch.cuda.is_available():
        if not tiny:
            logger.warning("CUDA is not available: running on CPU (slow for a 7B model)")
        return torch.device("cpu")
    return torch.device(f"cuda:{args.gpu_id}")


def tiny_config_file(tiny: TinyModel) -> Path:
    """Write the eval config of the tiny model (the same keys as eval_configs/*.yaml) to a temporary file."""
    checkpoint = tiny.checkpoint_path
    model_defaults = load_yaml(model_default_path(tiny.arch, tiny.model_type))
    image_size = OmegaConf.select(model_defaults, "preprocess.vis_processor.eval.image_size", default=None)
    image_size = image_size or OmegaConf.select(model_defaults, "model.image_size", default=224)
    model = {"arch": tiny.arch, "model_type": tiny.model_type}
    run_config = Path(checkpoint).parent / "config.yaml"
    if run_config.is_file():  # a training run folder: the model exactly as it was trained (sizes included)
        model = OmegaConf.to_container(OmegaConf.load(run_config).model, resolve=True)
    config = {
        "model": {**model, "low_resource": False, "ckpt": str(checkpoint)},
        "datasets": {
            "cc_sbu_align": {
                "vis_processor": {"train": {"name": "blip2_image_eval", "image_size": int(image_size)}},
                "text_processor": {"train": {"name": "blip_caption"}},
            }
        },
        "run": {"task": "image_text_pretrain"},
    }
    with tempfile.NamedTemporaryFile("w", suffix=f"_{tiny.arch}_chat.yaml", delete=False) as handle:
        handle.write(OmegaConf.to_yaml(OmegaConf.create(config)))
    return Path(handle.name)


def check_config_paths(cfg: Config) -> None:
    """Placeholders of the official eval configs and missing weight paths are reported before any model is built
    (building a 7B LLM first would make the user wait minutes for the same message)."""
    from minigpt4.models.options import resolve_path

    for key in ("ckpt", "llama_model"):
        value = cfg.model_cfg.get(key)
        if not isinstance(value, str) or not value:
            continue
        hint = f"--options model.{key}=/path/to/{'checkpoint.pth' if key == 'ckpt' else 'llm_weights_dir'}"
        if value.startswith(PLACEHOLDER_PREFIX):
            raise CheckpointError(
                f"{cfg.cfg_path}: model.{key} is still the placeholder {value!r}; set it in the YAML or with {hint}"
            )
        path = resolve_path(value)
        if path is not None and not path.exists():
            raise CheckpointError(
                f"{cfg.cfg_path}: model.{key} = {value} does not exist; fix the path or use {hint}"
            )


def load_chat(args: argparse.Namespace, tiny: TinyModel) -> ChatSession:
    """Build the model, the image processor and a Chat from the CLI arguments (official demo steps)."""
    from minigpt4.common.registry import registry

    use_tiny = args.cfg_path is None
    if use_tiny and tiny.is_saved_model_folder:
        return load_saved_folder(args, tiny)
    cfg_path = tiny_config_file(tiny) if use_tiny else args.cfg_path
    cfg = Config(argparse.Namespace(cfg_path=str(cfg_path), options=args.options or []), purpose="chat")
    check_config_paths(cfg)
    device = choose_device(args, use_tiny)

    model_cfg = cfg.model_cfg
    model_cfg.device_8bit = device.index if device.type == "cuda" and device.index is not None else 0
    model_cls = registry.get_model_class(model_cfg.arch)
    logger.info("building %s/%s on %s", model_cfg.arch, model_cfg.model_type, device)
    model = model_cls.from_config(model_cfg)
    # official: the whole model is moved, 8-bit LLM included (nn.Module.to reaches its Int8 params directly)
    model = model.to(device).eval()

    vis_cfg = cfg.datasets_cfg.cc_sbu_align.vis_processor.train
    vis_processor = registry.get_processor_class(vis_cfg.name).from_config(vis_cfg)
    template = template_for(str(model_cfg.arch), str(model_cfg.model_type))
    chat = Chat(model, vis_processor, device=device)
    return ChatSession(chat, template, device, str(model_cfg.arch), str(model_cfg.model_type))


def load_saved_folder(args: argparse.Namespace, tiny: TinyModel) -> ChatSession:
    """A saved model folder (`save_pretrained`): its config and processors travel with the weights."""
    from minigpt4.api.hub import from_pretrained
    from minigpt4.common.registry import registry

    device = choose_device(args, tiny=True)
    model = from_pretrained(tiny.location, device=device)
    preprocess = model.minigpt4_preprocess
    vis_cfg = preprocess.vis_processor.eval if preprocess is not None else None
    if vis_cfg is None:
        raise CheckpointError(f"{tiny.location}: the saved model has no preprocess.vis_processor.eval config")
    vis_processor = registry.get_processor_class(vis_cfg.name).from_config(vis_cfg)
    arch, model_type = str(model.minigpt4_config.arch), str(model.minigpt4_config.model_type)
    chat = Chat(model, vis_processor, device=device)
    return ChatSession(chat, template_for(arch, model_type), device, arch, model_type)


def run_demo(
    script: str,
    description: str,
    load_session: Callable[[argparse.Namespace], Any],
    build_demo: Callable[[Any], Any],
    argv: list[str] | None = None,
) -> int:
    """The `main` of every demo page: quiet known warnings, parse the shared flags (`build_parser`), load the
    session (a MiniGPTError is one line on stderr and exit code 2), build the page, serve it on --host
    (127.0.0.1 by default)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quiet_known_warnings()
    args = build_parser(description).parse_args(argv)
    try:
        session = load_session(args)
    except MiniGPTError as error:
        print(f"{script}: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    from minigpt4.cli.gradio_parts import serve  # gradio is imported only by the demos

    serve(build_demo(session), args)
    return 0
