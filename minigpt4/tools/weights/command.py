"""`python -m minigpt4.tools.weights <command>`: prepare, inspect and convert weights offline."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from minigpt4.common.errors import MiniGPTError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m minigpt4.tools.weights", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    delta = commands.add_parser(
        "apply-delta", help="Vicuna v0 = LLaMA + delta (official recipe, no FastChat)"
    )
    delta.add_argument("--base", required=True, help="local LLaMA directory in HF format (e.g. llama-13b-hf)")
    delta.add_argument("--delta", required=True, help="local Vicuna v0 delta directory (vicuna-13b-delta-v0)")
    delta.add_argument("--target", required=True, help="new directory for the Vicuna weights")
    delta.add_argument(
        "--max-shard-size", default=None, help="output shard size, e.g. 2GB (default: largest input file)"
    )
    delta.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])

    inspect = commands.add_parser(
        "inspect", help="keys, shapes, dtypes and the model/variant a checkpoint fits"
    )
    inspect.add_argument(
        "path", help="a .pth/.bin/.safetensors file, an HF directory, or a folder of checkpoints"
    )
    inspect.add_argument("--keys", action="store_true", help="list every tensor with shape and dtype")
    inspect.add_argument("--json", action="store_true", help="print JSON instead of text")
    inspect.add_argument(
        "--vit-width", type=int, default=None, help="EVA width, to resolve projection-only files"
    )
    inspect.add_argument("--qformer-width", type=int, default=None, help="Q-Former width, same purpose")

    convert = commands.add_parser(
        "convert", help="official .pth checkpoint -> .safetensors (model tensors only)"
    )
    convert.add_argument("src")
    convert.add_argument("dst", nargs="?", default=None, help="default: SRC with the .safetensors suffix")

    merge = commands.add_parser(
        "merge-lora", help="merge a MiniGPT-v2 LoRA into the LLM, save a plain HF dir"
    )
    merge.add_argument("--ckpt", required=True, help="MiniGPT-v2 checkpoint (.pth or .safetensors)")
    merge.add_argument(
        "--llm", required=True, help="the LLM directory it was trained on (Llama-2-7b-chat-hf)"
    )
    merge.add_argument("--out", required=True, help="new directory for the merged LLM")
    merge.add_argument("--lora-alpha", type=float, default=None, help="default: checkpoint config, else 16")
    merge.add_argument("--max-shard-size", default=None)
    merge.add_argument(
        "--projection-out", default=None, help="also save llama_proj.* to this .safetensors file"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "apply-delta":
            from minigpt4.tools.weights.delta import apply_delta

            report = apply_delta(args.base, args.delta, args.target, args.max_shard_size, args.dtype)
            print(
                f"{report.target_dir}: {report.num_tensors} tensors, {len(report.shards)} shard(s), vocab {report.vocab_size}"
            )
        elif args.command == "inspect":
            from minigpt4.tools.weights.inspection import format_summary, inspect_path

            summaries = inspect_path(args.path, args.vit_width, args.qformer_width)
            if args.json:
                print(json.dumps([s.to_dict(with_keys=args.keys) for s in summaries], indent=1))
            else:
                print("\n\n".join(format_summary(s, with_keys=args.keys) for s in summaries))
        elif args.command == "convert":
            from minigpt4.tools.weights.convert import convert_to_safetensors

            print(convert_to_safetensors(args.src, args.dst))
        elif args.command == "merge-lora":
            from minigpt4.tools.weights.lora_merge import merge_lora

            report = merge_lora(
                args.ckpt, args.llm, args.out, args.lora_alpha, args.max_shard_size, args.projection_out
            )
            print(
                f"{report.out_dir}: merged {len(report.merged_keys)} LoRA weights (r={report.rank}, alpha={report.alpha:g})"
            )
    except MiniGPTError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0
