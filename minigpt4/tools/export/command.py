"""`python -m minigpt4.tools.export <command>`: MiniGPT models to and from other folder formats.

hf-blip2 --cfg-path <eval yaml> [--options k=v ...] --out DIR    MiniGPT-4 (Q-Former) -> transformers BLIP-2
import hf-blip2 DIR --out OURS                                   transformers BLIP-2 -> our saved folder
minigpt --cfg-path <eval yaml> [--options k=v ...] --out DIR     any model -> our saved folder (save_pretrained)
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from minigpt4.common.errors import MiniGPTError

EXPORT_OVERRIDES = {"low_resource": False}  # exports need plain (not 8-bit) weights


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m minigpt4.tools.export", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("hf-blip2", "MiniGPT-4 with Q-Former -> a Blip2ForConditionalGeneration folder"),
        (
            "minigpt",
            "any MiniGPT model -> our save_pretrained folder (the format for Llama-2 MiniGPT-4 and v2)",
        ),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument(
            "--cfg-path", required=True, help="eval YAML the model is built from (as the demo)"
        )
        command.add_argument(
            "--options", nargs="+", default=None, help="key=value overrides (model.ckpt=...)"
        )
        command.add_argument("--out", required=True, help="new folder")
        command.add_argument("--max-shard-size", default="2GB")
    back = commands.add_parser("import", help="another format -> our save_pretrained folder")
    back.add_argument("format", choices=["hf-blip2"])
    back.add_argument("src", help="a Blip2ForConditionalGeneration folder (LLaMA text model)")
    back.add_argument("--out", required=True, help="new folder for our save_pretrained layout")
    back.add_argument("--max-shard-size", default="2GB")
    return parser


def build_from_config(cfg_path: str, options: Sequence[str] | None) -> tuple[Any, Any]:
    """The model of an eval YAML with its weights (as the demo builds it, but never 8-bit), and the config."""
    from omegaconf import OmegaConf

    from minigpt4.common.config import Config
    from minigpt4.common.registry import registry

    cfg = Config.from_path(cfg_path, options, purpose="chat")
    cfg.config.model = OmegaConf.merge(cfg.model_cfg, EXPORT_OVERRIDES)
    model = registry.get_model_class(str(cfg.model_cfg.arch)).from_config(cfg.model_cfg).eval()
    return model, cfg


def chat_preprocess(cfg: Any) -> Any:
    """The eval image processor the demo uses (datasets.cc_sbu_align...train), else the model's default."""
    from omegaconf import OmegaConf

    node = OmegaConf.select(cfg.config, "datasets.cc_sbu_align.vis_processor.train")
    if node is None:
        node = OmegaConf.select(cfg.config, "preprocess.vis_processor.eval")
    return {"vis_processor": {"eval": node}} if node is not None else None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "import":
            from minigpt4.tools.export.import_blip2 import import_hf_blip2

            report = import_hf_blip2(args.src, args.out, args.max_shard_size)
            print(f"{report.out_dir}: {report.num_tensors} tensors, {len(report.shards)} shard(s)")
            return 0
        model, cfg = build_from_config(args.cfg_path, args.options)
        if args.command == "hf-blip2":
            from minigpt4.tools.export.hf_blip2 import export_hf_blip2

            report = export_hf_blip2(
                model, args.out, cfg.model_cfg, chat_preprocess(cfg), max_shard_size=args.max_shard_size
            )
            print(
                f"{report.out_dir}: {report.num_tensors} tensors, {len(report.shards)} shard(s), "
                f"image token {report.image_token_index}"
            )
        else:
            from minigpt4.api.hub import save_pretrained

            save_pretrained(
                model, args.out, cfg.model_cfg, chat_preprocess(cfg), max_shard_size=args.max_shard_size
            )
            print(args.out)
    except MiniGPTError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0
