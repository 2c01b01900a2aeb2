"""Command line of eval_scripts/eval_ref.py and eval_scripts/eval_vqa.py (official flags, plus ours).

    torchrun --nproc-per-node N eval_scripts/eval_vqa.py --cfg-path eval_configs/minigptv2_benchmark_evaluation.yaml \
        --dataset okvqa,gqa [--options run.save_path=out/eval]

Every file and image of the selected benchmarks is checked before the model is built. Results go to
`run.save_path`: per-split JSON with every prediction, `summary.json` and `summary.md` (also printed).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from minigpt4.common.dist import get_rank, init_distributed_mode, is_main_process
from minigpt4.common.errors import ConfigError, MiniGPTError
from minigpt4.common.logging import setup_logger
from minigpt4.common.warnings_filter import quiet_known_warnings
from minigpt4.evaluation.benchmarks import REC_BENCHMARKS, VQA_BENCHMARKS
from minigpt4.evaluation.sharded_runs import evaluate_jobs, model_source, prepare_jobs
from minigpt4.evaluation.summary import markdown_table, update_summary

logger = logging.getLogger(__name__)


def eval_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--cfg-path", required=True, help="path to the evaluation config YAML")
    parser.add_argument(
        "--dataset", default=None, help="comma-separated benchmarks (default: all of this script's)"
    )
    parser.add_argument("--options", nargs="+", default=None, help="override config keys: a.b=value ...")
    parser.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 (default: run.device, else cuda if any)"
    )
    parser.add_argument(
        "--num-workers", type=int, default=None, help="image loading workers (default run.num_workers)"
    )
    parser.add_argument(
        "--resample",
        action="store_true",
        help="accepted for compatibility; ignored: with greedy decoding the official resample loop repeats "
        "the same answers (see minigpt4/evaluation/ref_official.py for its exact behaviour)",
    )
    # official eval_parser flags, accepted so official command lines keep working
    parser.add_argument("--name", default="A2", help=argparse.SUPPRESS)
    parser.add_argument("--ckpt", default=None, help="checkpoint (overrides model.ckpt)")
    parser.add_argument("--lora_r", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--lora_alpha", type=int, default=None, help=argparse.SUPPRESS)
    return parser


def _selected(args: argparse.Namespace, evaluation_cfg, script_benchmarks: Sequence[str]) -> list[str]:
    if args.dataset:
        names = [name.strip() for name in args.dataset.split(",") if name.strip()]
    else:
        names = [
            name
            for name in evaluation_cfg
            if name in script_benchmarks or "benchmark" in evaluation_cfg[name]
        ]
    if not names:
        raise ConfigError(
            f"{args.cfg_path}: no benchmark selected; pass --dataset or add evaluation_datasets"
        )
    return names


def _device(args: argparse.Namespace, run_cfg, local_rank: int) -> torch.device:
    name = args.device or run_cfg.get("device")
    if name in (None, "", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    return torch.device(name if name not in (None, "") else "cpu")


def build_model_and_processor(cfg, device: torch.device):
    """The official init_model: model from `model.arch`, image processor from the first dataset's
    `vis_processor.train` (the eval configs give blip2_image_eval)."""
    from minigpt4.common.registry import registry

    model_cls = registry.get_model_class(cfg.model_cfg.arch)
    model = model_cls.from_config(cfg.model_cfg).to(device).eval()
    datasets = cfg.datasets_cfg if "datasets" in cfg.config else {}
    if not datasets:
        raise ConfigError(
            f"{cfg.cfg_path}: datasets.<name>.vis_processor.train is needed to preprocess images"
        )
    processor_cfg = datasets[next(iter(datasets))].vis_processor.train
    vis_processor = registry.get_processor_class(processor_cfg.name).from_config(processor_cfg)
    return model, vis_processor


def main(argv: Sequence[str] | None, script_benchmarks: Sequence[str], description: str) -> int:
    from minigpt4.common.config import Config

    args = eval_parser(description).parse_args(argv)
    quiet_known_warnings()
    setup_logger()
    try:
        options = list(args.options or [])
        if args.ckpt:
            options.append(f"model.ckpt={args.ckpt}")
        cfg = Config(argparse.Namespace(cfg_path=args.cfg_path, options=options), purpose="eval")
        info = init_distributed_mode(cfg.run_cfg)
        setup_logger()
        if args.resample:
            logger.warning("--resample is ignored: greedy decoding makes the official resample loop a no-op")
        names = _selected(args, cfg.evaluation_datasets_cfg, script_benchmarks)
        save_path = cfg.run_cfg.get("save_path")
        if not save_path:
            raise ConfigError(
                f"{args.cfg_path}: run.save_path is required (where predictions and summary go)"
            )
        jobs = prepare_jobs(cfg.evaluation_datasets_cfg, names)  # all inputs checked before the model exists
        device = _device(args, cfg.run_cfg, info.local_rank)
        model, vis_processor = build_model_and_processor(cfg, device)
        num_workers = (
            args.num_workers if args.num_workers is not None else int(cfg.run_cfg.get("num_workers", 0))
        )
        results = evaluate_jobs(
            jobs, model, vis_processor, save_path, device, num_workers, source=model_source(cfg.model_cfg)
        )
        if is_main_process():
            summary = update_summary(save_path, results)
            print(markdown_table({key: summary[key] for key in results}))
            print(f"\nsummary: {Path(save_path) / 'summary.json'}")
    except MiniGPTError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    logger.debug("rank %d done", get_rank())
    return 0


def main_ref(argv: Sequence[str] | None = None) -> int:
    return main(argv, REC_BENCHMARKS, "MiniGPT-v2 referring expression comprehension (RefCOCO/+/g), Acc@0.5")


def main_vqa(argv: Sequence[str] | None = None) -> int:
    return main(argv, VQA_BENCHMARKS, "MiniGPT-v2 VQA benchmarks (OKVQA, VizWiz, IconVQA, GQA, VSR, HM, ...)")
