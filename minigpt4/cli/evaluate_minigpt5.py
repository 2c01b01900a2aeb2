"""Command line of eval_scripts/eval_minigpt5.py: generate for a MiniGPT-5 test split and score it the official way.

    python eval_scripts/eval_minigpt5.py --cfg-path eval_configs/minigpt5_shapes_eval.yaml      # quickstart model, CPU
    torchrun --nproc-per-node 4 eval_scripts/eval_minigpt5.py --cfg-path eval_configs/minigpt5_vist_eval.yaml \
        --options evaluation.data_path=/data/VIST/test_cleaned.json

Config sections: `model` (`zoo: <name>`: a zoo model, every weight found by the weights lookup; or `quickstart: true`:
the quickstart's tiny MiniGPT-5; or a full `model:` block), `evaluation` (benchmark cc3m | vist | mmdialog,
data_path, split, batch_size, max_items), `generation` (`generate_answers` options; official defaults), `metrics`
(clip_model, inception, sentence_model: a weight id of the lookup or a path, "" to skip; `inception: judge` uses
the judge's features; `judge: shapes` adds the shapes judge), `run` (save_path, seed, device). Data parallel and
resumable (see minigpt4/evaluation/minigpt5_eval.py); results: `<save_path>/minigpt5-<benchmark>/<split>.json`,
`summary.json`, `summary.md` (also printed).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from minigpt4.api.locate import WeightsNotFoundError, WeightSpec, locate
from minigpt4.common.dist import init_distributed_mode, is_main_process
from minigpt4.common.errors import ConfigError, MiniGPTError
from minigpt4.common.logging import setup_logger
from minigpt4.common.paths import REPO_ROOT
from minigpt4.common.warnings_filter import quiet_known_warnings

logger = logging.getLogger(__name__)

HF = "https://huggingface.co"
METRIC_WEIGHTS = {
    spec.weight_id: spec
    for spec in (
        WeightSpec("metrics.clip_model", "clip-vit-large-patch14", "clip-vit-large-patch14",
                   "OpenAI CLIP ViT-L/14 in transformers format (CLIP-I / CLIP-T of CC3M and VIST)",
                   f"{HF}/openai/clip-vit-large-patch14 (git lfs clone)", is_dir=True),
        WeightSpec("metrics.clip_model", "clip-vit-base-patch32", "clip-vit-base-patch32",
                   "OpenAI CLIP ViT-B/32 in transformers format (MMDialog CLIP-F1)",
                   f"{HF}/openai/clip-vit-base-patch32 (git lfs clone)", is_dir=True),
        WeightSpec("metrics.inception", "inception-2015-12-05", "inception-2015-12-05.pt",
                   "the FID Inception-v3 as TorchScript (FID / IS)",
                   "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/metrics/"
                   "inception-2015-12-05.pkl is its pickle; the TorchScript file is the one clean-fid downloads: "
                   "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt"),
        WeightSpec("metrics.sentence_model", "all-MiniLM-L6-v2", "all-MiniLM-L6-v2",
                   "sentence-transformers all-MiniLM-L6-v2 (MMDialog sentence cosine)",
                   f"{HF}/sentence-transformers/all-MiniLM-L6-v2 (git lfs clone)", is_dir=True),
    )
}  # fmt: skip


def repo_path(value: str | Path) -> Path:
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def metric_weight(value: Any, family: str, missing: dict[str, str]) -> Path | None:
    """A metric weight from a path or a weight id of the lookup; None (reason in `missing`) when not found."""
    text = "" if value is None else str(value)
    if not text:
        missing[family] = "switched off in the config"
        return None
    if text in METRIC_WEIGHTS:
        try:
            return locate(METRIC_WEIGHTS[text])
        except WeightsNotFoundError as error:
            missing[family] = str(error).splitlines()[0]
            logger.warning("%s: %s", family, error)
            return None
    path = repo_path(text)
    if not path.exists():
        missing[family] = f"{path} does not exist"
        return None
    return path


def build_scorers(metrics_cfg: Any, device: torch.device):
    from minigpt4.evaluation import minigpt5_metrics as metrics
    from minigpt4.evaluation.minigpt5_eval import Scorers

    cfg = metrics_cfg or {}
    scorers = Scorers()
    clip = metric_weight(cfg.get("clip_model", "clip-vit-large-patch14"), "clip", scorers.missing)
    if clip is not None:
        scorers.clip = metrics.ClipScorer(clip, device)
    judge_name = str(cfg.get("judge", "") or "")
    if judge_name:
        if judge_name != "shapes":
            raise ConfigError(f"metrics.judge={judge_name!r}; known: shapes (or empty)")
        from minigpt4.evaluation.shapes_judge import judge_shape

        scorers.judge = judge_shape
    inception = str(cfg.get("inception", "inception-2015-12-05") or "")
    if inception == "judge":
        from minigpt4.evaluation.shapes_judge import SHAPES_SPACE, judge_shape

        scorers.fid_feature = metrics.JudgeFeatures(judge_shape, SHAPES_SPACE, "features")
        scorers.is_feature = metrics.JudgeFeatures(judge_shape, SHAPES_SPACE, "logits")
        scorers.feature_name = "shapes judge (no Inception: FID/IS are on judged colour-shape classes)"
    else:
        path = metric_weight(inception, "fid_is", scorers.missing)
        if path is not None:
            scorers.fid_feature = metrics.TorchScriptInception(path, "features")
            scorers.is_feature = metrics.TorchScriptInception(path, "logits")
    sentence = metric_weight(
        cfg.get("sentence_model", "all-MiniLM-L6-v2"), "sentence_cosine", scorers.missing
    )
    if sentence is not None:
        scorers.sentence = metrics.SentenceEmbedder(sentence, device)
    return scorers


def load_eval_model(model_cfg: DictConfig, device: torch.device) -> tuple[Any, dict[str, Any]]:
    """(model, source): a zoo name, the quickstart run, or a full model block. `source` names the model (a run with
    another source will not resume from these predictions)."""
    from minigpt4.api.minigpt5 import build_run_model, newest_checkpoint, quickstart_minigpt5_dir

    if model_cfg.get("zoo"):
        from minigpt4.api.loaders import load_zoo_model

        name = str(model_cfg.zoo)
        overrides = {k: v for k, v in OmegaConf.to_container(model_cfg, resolve=True).items() if k != "zoo"}
        return load_zoo_model(name, device=device, overrides=overrides), {"zoo": name}
    if model_cfg.get("quickstart"):
        folder = quickstart_minigpt5_dir()
        checkpoint = newest_checkpoint(folder)
        stat = checkpoint.stat()
        return build_run_model(folder, device), {"run": str(folder), "ckpt_mtime_ns": stat.st_mtime_ns}
    from minigpt4.common.registry import registry

    model = registry.get_model_class(str(model_cfg.arch)).from_config(model_cfg).to(device).eval()
    model.minigpt4_config = model_cfg
    return model, {"model": OmegaConf.to_container(model_cfg, resolve=True)}


def main(argv: Sequence[str] | None = None) -> int:
    from minigpt4.api.minigpt5 import input_processor
    from minigpt4.evaluation.minigpt5_eval import (
        Minigpt5Job,
        finish_split,
        load_records,
        markdown_table,
        run_generation,
        write_summary,
    )

    parser = argparse.ArgumentParser(description="MiniGPT-5 evaluation (CC3M, VIST, MMDialog; shapes world)")
    parser.add_argument(
        "--cfg-path", required=True, help="eval config, e.g. eval_configs/minigpt5_vist_eval.yaml"
    )
    parser.add_argument("--options", nargs="+", default=None, help="override config keys: a.b=value ...")
    parser.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 (default run.device, else cuda if any)"
    )
    args = parser.parse_args(argv)
    quiet_known_warnings()
    setup_logger()
    try:
        path = repo_path(args.cfg_path)
        if not path.is_file():
            raise ConfigError(f"{args.cfg_path}: no such eval config")
        cfg = OmegaConf.merge(OmegaConf.load(path), OmegaConf.from_dotlist(list(args.options or [])))
        run = cfg.get("run") or OmegaConf.create({})
        info = init_distributed_mode(run)
        name = args.device or run.get("device")
        if name in (None, "", "cuda") and torch.cuda.is_available():
            device = torch.device("cuda", info.local_rank)
        else:
            device = torch.device(name if name not in (None, "", "cuda") else "cpu")
        evaluation = cfg.get("evaluation")
        if evaluation is None or not evaluation.get("data_path"):
            raise ConfigError(f"{args.cfg_path}: evaluation.benchmark and evaluation.data_path are required")
        save_path = run.get("save_path")
        if not save_path:
            raise ConfigError(
                f"{args.cfg_path}: run.save_path is required (where predictions and summary go)"
            )
        save_path = repo_path(save_path)
        data_path = repo_path(evaluation.data_path)
        benchmark = str(evaluation.benchmark)
        if benchmark != "mmdialog":  # records need no tokenizer: check the data before building the model
            records = load_records(benchmark, data_path)
        model, source = load_eval_model(cfg.model, device)
        if benchmark == "mmdialog":
            records = load_records(benchmark, data_path, model.llama_tokenizer)
        if evaluation.get("max_items"):
            records = records[: int(evaluation.max_items)]
        generation = OmegaConf.to_container(cfg.get("generation") or OmegaConf.create({}), resolve=True)
        job = Minigpt5Job(benchmark, str(evaluation.get("split", "test")), records,
                          int(evaluation.get("batch_size", 4)), generation, int(run.get("seed", 0)))  # fmt: skip
        split_dir = run_generation(job, model, input_processor(model), save_path, source)
        if is_main_process():
            scores = finish_split(job, split_dir, build_scorers(cfg.get("metrics"), device))
            summary = write_summary(save_path, {job.key: scores})
            print(markdown_table({job.key: summary[job.key]}))
            print(f"\nsummary: {save_path / 'summary.json'}")
    except MiniGPTError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0
