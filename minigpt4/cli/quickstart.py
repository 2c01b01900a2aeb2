"""`make quickstart`: shapes world -> tiny image encoder -> tiny MiniGPT-4 (stage 1, stage 2) and MiniGPT-v2
(text-only LLM pretraining, multi-task finetune) -> evaluation -> table.

Everything runs on CPU in a few minutes and writes under `outputs/` (override with MINIGPT4_QUICKSTART
and SHAPES_WORLD). The trained checkpoints are what demo.py, demo_v2.py and the Python API open by default:
    outputs/quickstart/minigpt4_tiny/checkpoint_best.pth     (tiny MiniGPT-4, Q-Former layout)
    outputs/quickstart/minigpt_v2_tiny/checkpoint_best.pth   (tiny MiniGPT-v2)
Both read their frozen image encoder from outputs/quickstart/tiny_eva_vit.pth (see encoder.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from minigpt4.common.paths import REPO_ROOT
from minigpt4.common.warnings_filter import quiet_known_warnings
from minigpt4.evaluation.shapes_captions import caption_accuracy, caption_chance
from minigpt4.runners.encoder_recipe import EncoderRecipe, pretrain_encoder

logger = logging.getLogger("minigpt4.quickstart")
STAGES = (
    # (train config, job id, what to take as model.ckpt)
    ("train_configs/shapes/minigpt4_stage1.yaml", "minigpt4_stage1", None),
    ("train_configs/shapes/minigpt4_stage2.yaml", "minigpt4_tiny", "minigpt4_stage1"),
    ("train_configs/shapes/minigptv2_text_pretrain.yaml", "minigpt_v2_text", None),
    ("train_configs/shapes/minigptv2_finetune.yaml", "minigpt_v2_tiny", "minigpt_v2_text"),
)
# The pretrained tiny encoder, where the shapes configs' model.vit_ckpt looks for it
VIT_FILE = "tiny_eva_vit.pth"
# Python API zoo names of the trained runs (minigpt4.api.zoo looks for them in the weights folder)
ZOO_NAMES = {"minigpt4_tiny": "minigpt-4_tiny-vicuna0_shapes", "minigpt_v2_tiny": "minigpt-v2_tiny_shapes"}
CAPTION_PROMPT = "Describe this image in detail."
# One object per image and many images: what tiny random models learn on 2 CPU cores in minutes
# (multi-object scenes need far longer); the world's other defaults are unchanged.
WORLD = {"max_objects": 1, "num_train": 4000, "num_heldout": 200}


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def output_root() -> Path:
    return Path(os.environ.get("MINIGPT4_QUICKSTART", "outputs/quickstart"))


def world_root() -> Path:
    return Path(os.environ.get("SHAPES_WORLD", "outputs/shapes_world"))


def last_checkpoint(run_dir: Path) -> Path:
    epochs = sorted(run_dir.glob("checkpoint_[0-9]*.pth"), key=lambda p: int(p.stem.split("_")[1]))
    if not epochs:
        raise FileNotFoundError(f"{run_dir} has no checkpoint_<epoch>.pth")
    return epochs[-1]


def train_stage(cfg_path: str, job_id: str, init_from: str | None, extra: list[str]) -> Path:
    from minigpt4.cli.train import run_training

    options = [f"run.output_dir={output_root()}", f"run.job_id={job_id}", *extra]
    if init_from:
        options.append(f"model.ckpt={last_checkpoint(output_root() / init_from)}")
    run_training(argparse.Namespace(cfg_path=str(REPO_ROOT / cfg_path), options=options))
    run_dir = output_root() / job_id
    best = run_dir / "checkpoint_best.pth"
    shutil.copyfile(last_checkpoint(run_dir), best)
    return best


def publish_to_zoo(checkpoints: dict[str, Path]) -> list[Path]:
    """Copy each run's config.yaml + checkpoint_best.pth + its frozen encoder to the weights folder, where the
    API finds it by name; the copied config points at the copied encoder."""
    from omegaconf import OmegaConf

    from minigpt4.api.locate import weights_dir

    published = []
    for job_id, name in ZOO_NAMES.items():
        target = weights_dir() / name
        target.mkdir(parents=True, exist_ok=True)
        for old in target.glob("checkpoint_*.pth"):
            old.unlink()
        config = OmegaConf.load(checkpoints[job_id].parent / "config.yaml")
        if config.model.get("vit_ckpt"):
            shutil.copyfile(config.model.vit_ckpt, target / VIT_FILE)
            config.model.vit_ckpt = str((target / VIT_FILE).resolve())
        OmegaConf.save(config, target / "config.yaml")
        shutil.copyfile(checkpoints[job_id], target / "checkpoint_best.pth")
        published.append(target)
    return published


def pretrain_image_encoder(recipe: EncoderRecipe | None = None) -> Path:
    from minigpt4.common.config import Config

    model_cfg = Config.from_path(REPO_ROOT / STAGES[0][0], purpose="train").model_cfg
    path = output_root() / VIT_FILE
    # the two-object captions name objects left to right: what the VSR statements need the encoder to see
    folders = [world_root() / "cc_sbu_align", world_root() / "two_object_captions"]
    report = pretrain_encoder(folders, model_cfg, path, recipe or EncoderRecipe())
    say(
        f"tiny image encoder: caption words exactly right on {report['heldout_exact_match']:.1%} of held-out images"
    )
    return path


def build_trained(checkpoint: Path):
    """The model of a run directory (its resolved config.yaml) with the given checkpoint, in eval mode."""
    from omegaconf import OmegaConf

    from minigpt4.common.registry import registry

    config = OmegaConf.load(checkpoint.parent / "config.yaml")
    config.model.ckpt = str(checkpoint)
    model = registry.get_model_class(config.model.arch).from_config(config.model).eval()
    processor_cfg = config.preprocess.vis_processor.eval
    processor = registry.get_processor_class(processor_cfg.name).from_config(processor_cfg)
    return model, processor


@torch.no_grad()
def evaluate_captions(checkpoint: Path, batch_size: int = 25) -> tuple[float, float]:
    from minigpt4.conversation.templates import CONV_VISION_Vicuna0, prepare_texts
    from minigpt4.datasets.shapes import load_truth

    truth = load_truth(world_root())
    heldout = [image for image in truth["images"] if image["split"] != "train"]
    train = [image for image in truth["images"] if image["split"] == "train"]
    model, processor = build_trained(checkpoint)
    stop_ids = model.llama_tokenizer(
        "###", add_special_tokens=False
    ).input_ids  # the Vicuna v0 turn separator
    captions: list[str] = []
    for start in range(0, len(heldout), batch_size):
        chunk = heldout[start : start + batch_size]
        images = torch.stack(
            [processor(Image.open(world_root() / "coco" / "train" / i["file"]).convert("RGB")) for i in chunk]
        )
        texts = prepare_texts([CAPTION_PROMPT] * len(chunk), CONV_VISION_Vicuna0.copy())
        answers = model.generate_answers(images, texts, max_new_tokens=40, stop_words_ids=[stop_ids]).texts
        captions += [answer.split("###")[0].strip() for answer in answers]  # as Chat.answer does
    examples = [
        {"image": i["file"], "truth": i["caption"], "caption": c} for i, c in zip(heldout[:5], captions)
    ]
    logger.info("caption examples: %s", json.dumps(examples, indent=1))
    colors, shapes = truth["colors"], truth["shapes"]
    return caption_accuracy(captions, heldout, colors, shapes), caption_chance(heldout, train, colors, shapes)


def evaluate_v2(checkpoint: Path) -> dict[str, Any]:
    from minigpt4.common.config import Config
    from minigpt4.evaluation.sharded_runs import evaluate_jobs, model_source, prepare_jobs

    cfg = Config.from_path(
        REPO_ROOT / "eval_configs/shapes_benchmark_evaluation.yaml",
        [f"model.ckpt={checkpoint}"],
        purpose="eval",
    )
    model, processor = build_trained(checkpoint)
    jobs = [
        job
        for job in prepare_jobs(cfg.evaluation_datasets_cfg, ["gqa", "refcoco"])
        if job.key.startswith("gqa/") or job.key == "refcoco/val"
    ]
    scores = evaluate_jobs(jobs, model, processor, output_root() / "eval", source=model_source(cfg.model_cfg))
    return {key.split("/")[0]: score for key, score in scores.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Train and evaluate tiny MiniGPT models on the shapes world (CPU)."
    )
    parser.add_argument("--options", nargs="+", default=[], help="extra overrides for every training stage")
    parser.add_argument(
        "--only",
        choices=["minigpt4", "minigpt5"],
        help="minigpt4: only the MiniGPT-4/v2 part (world, encoder, their stages, evaluation); minigpt5: only the "
        "MiniGPT-5 part, on the outputs of an earlier full run",
    )
    args = parser.parse_args(argv)
    start = time.time()
    # absolute, so the run configs (and the demos and API that read them) work from any directory
    os.environ["SHAPES_WORLD"] = str(world_root().resolve())
    os.environ["MINIGPT4_QUICKSTART"] = str(output_root().resolve())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    quiet_known_warnings()
    torch.set_num_threads(thread_count())

    from minigpt4.cli.quickstart_minigpt5 import results_rows, run_minigpt5, run_only_minigpt5
    from minigpt4.datasets.shapes import generate_world

    if args.only == "minigpt5":
        print("\n".join(results_rows(run_only_minigpt5(list(args.options))["minigpt5"])))
        return 0
    steps = len(STAGES) + 3
    seconds: dict[str, float] = {}
    mark = time.time()
    say(f"[1/{steps}] shapes world -> {world_root()}")
    generate_world(world_root(), **WORLD)
    mark = _lap(seconds, "world", mark)
    say(f"[2/{steps}] pretrain the tiny image encoder -> {output_root() / VIT_FILE}")
    pretrain_image_encoder()
    mark = _lap(seconds, "encoder", mark)
    checkpoints = {}
    for index, (cfg_path, job_id, init_from) in enumerate(STAGES, start=3):
        say(f"[{index}/{steps}] train {job_id} ({cfg_path})")
        checkpoints[job_id] = train_stage(cfg_path, job_id, init_from, list(args.options))
        mark = _lap(seconds, job_id, mark)

    say(f"[{steps}/{steps}] evaluate on held-out shapes")
    # the evaluation runner resumes from the predictions it finds; these are new models
    shutil.rmtree(output_root() / "eval", ignore_errors=True)
    caption_acc, caption_chance_level = evaluate_captions(checkpoints["minigpt4_tiny"])
    mark = _lap(seconds, "evaluate_captions", mark)
    scores = evaluate_v2(checkpoints["minigpt_v2_tiny"])
    mark = _lap(seconds, "evaluate_v2", mark)
    vqa, grounding = scores["gqa"], scores["refcoco"]
    results = {
        "caption_acc": caption_acc,
        "caption_acc_chance": caption_chance_level,
        "vqa_acc": vqa.score / 100,
        "vqa_acc_chance": vqa.chance / 100,
        "grounding_acc50": grounding.score / 100,
        "grounding_acc50_chance": grounding.chance / 100,
        "seconds_minigpt4_v2": round(time.time() - start, 1),
        "seconds_by_step": seconds,
        "threads": torch.get_num_threads(),
        "gomp_spincount": os.environ.get("GOMP_SPINCOUNT", ""),  # set by `python -m minigpt4.quickstart`
        "checkpoints": {k: str(v) for k, v in checkpoints.items()},
    }
    if args.only != "minigpt4":
        results["minigpt5"] = run_minigpt5(checkpoints["minigpt4_tiny"], list(args.options))
    results["seconds"] = round(time.time() - start, 1)
    published = publish_to_zoo(checkpoints)
    path = output_root() / "results.json"
    path.write_text(json.dumps(results, indent=2))
    print(results_table(results))
    print(f"results: {path}   chat with them: python demo.py / python demo_v2.py")
    print(
        f"Python API: inference_model({ZOO_NAMES['minigpt_v2_tiny']!r}, image)  (copies in {published[0].parent})"
    )
    return 0


def thread_count() -> int:
    """OMP_NUM_THREADS when the user set it (on a machine shared with other jobs one thread can be several times
    faster than one per core), else one per core."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return max(1, os.cpu_count() or 1)


def _lap(seconds: dict[str, float], name: str, mark: float) -> float:
    now = time.time()
    seconds[name] = round(now - mark, 1)
    return now


def results_table(results: dict[str, Any]) -> str:
    rows = [
        ("caption accuracy (colour and shape, MiniGPT-4)", "caption_acc"),
        ("VQA accuracy (MiniGPT-v2, [vqa])", "vqa_acc"),
        ("grounding Acc@0.5 (MiniGPT-v2, [refer])", "grounding_acc50"),
    ]
    lines = ["| metric | ours | chance |", "|---|---|---|"]
    lines += [f"| {label} | {results[key]:.3f} | {results[key + '_chance']:.3f} |" for label, key in rows]
    if "minigpt5" in results:
        from minigpt4.cli.quickstart_minigpt5 import results_rows

        lines += results_rows(results["minigpt5"])
    lines.append(f"| total time | {results['seconds']:.0f} s | |")
    return "\n".join(lines)
