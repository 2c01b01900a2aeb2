"""`make quickstart`, MiniGPT-5 part: a tiny MiniGPT-5 learns to draw the shapes world, and a judge that never saw
the generator scores what it draws.

1. Parts from the quickstart's MiniGPT-4 run: its tiny LLM (frozen there, as Vicuna is) saved as an HF folder
   `minigpt5_llm/`, and its trained Q-Former + llama_proj as `minigpt5_parts.pth` (MiniGPT-5 starts from a
   MiniGPT-4 checkpoint, as the official one does from `prerained_minigpt4_7b.pth`).
2. The stand-in for SD-2.1-base: a tiny diffusers stack pretrained on the world's CC3M-format caption -> image
   pairs (`runners/sd_recipe.py`), then frozen: `tiny_sd_shapes/`.
3. Stage 1 on the CC3M-format shapes, stage 2 on the VIST-format stories, through train.py
   (`train_configs/shapes/minigpt5_stage{1,2}.yaml`).
4. Generation for held-out prompts through the evaluation's generation (`evaluation/minigpt5_eval.py`), unforced
   (no `[IMG0]` boost), greedy text; the images are scored by `evaluation/shapes_judge.py` (the world's rendering
   rules read back from pixels).

Run alone on an existing quickstart output folder: `python -m minigpt4.quickstart --only minigpt5`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from minigpt4.cli.quickstart import build_trained, output_root, say, train_stage, world_root
from minigpt4.datasets.formats.cc3m_tsv import cc3m_records
from minigpt4.datasets.formats.minigpt5 import Minigpt5Record
from minigpt4.datasets.formats.vist import vist_records
from minigpt4.evaluation.minigpt5_eval import first_images
from minigpt4.evaluation.shapes_judge import chance_levels, judge_targets
from minigpt4.processors.image import Minigpt5InputImageProcessor
from minigpt4.runners.checkpointing import atomic_torch_save
from minigpt4.runners.sd_recipe import SdRecipe, pretrain_tiny_sd

logger = logging.getLogger("minigpt4.quickstart")
LLM_FOLDER = "minigpt5_llm"
PARTS_FILE = "minigpt5_parts.pth"
SD_FOLDER = "tiny_sd_shapes"
STAGES = (
    ("train_configs/shapes/minigpt5_stage1.yaml", "minigpt5_stage1"),
    ("train_configs/shapes/minigpt5_stage2.yaml", "minigpt5_stage2"),
)
TARGETS = {"colour_acc": 0.90, "shape_acc": 0.80, "story_acc": 0.70, "voken_rate": 0.95}
# greedy text (the judge scores the model, not a sampling draw), no [IMG0] boost (voken_rate counts it
# unforced); the SD part at the guidance and step count the tiny stack was measured with
GENERATION = {
    "max_new_tokens": 12,
    "do_sample": False,
    "repetition_penalty": 1.0,
    "force_generation": False,
    "guidance_scale": 2.0,
    "num_inference_steps": 15,
}
INPUT_IMAGE_SIZE = 112  # the shapes configs' minigpt5_input_image size (the tiny encoder's)


def prepare_parts(minigpt4_checkpoint: Path) -> None:
    """Write the MiniGPT-4 run's LLM (HF folder) and its trained image-side tensors, for the MiniGPT-5 configs."""
    write_parts(build_trained(minigpt4_checkpoint)[0])


def write_parts(minigpt4_model) -> None:
    folder = output_root() / LLM_FOLDER
    model = minigpt4_model
    model.llama_model.save_pretrained(str(folder))
    model.llama_tokenizer.save_pretrained(str(folder))
    # the encoder comes from its own file (model.vit_ckpt), the LLM from the folder above
    parts = {
        key: tensor
        for key, tensor in model.state_dict().items()
        if not key.startswith(("llama_model.", "visual_encoder."))
    }
    atomic_torch_save({"model": parts}, output_root() / PARTS_FILE)


def first_images_of(model, records: list[Minigpt5Record], seed: int = 0) -> list[Image.Image | None]:
    """The first image each record's prompt produced (None: no `[IMG0]`), through the evaluation's generation
    (`minigpt5_eval.first_images`) with the quickstart's options; batches of 50 share one generator."""
    processor = Minigpt5InputImageProcessor(image_size=INPUT_IMAGE_SIZE)
    generator = torch.Generator().manual_seed(seed)
    return first_images(model, records, processor, GENERATION, batch_size=50, generator=generator)


def heldout_records(fmt: str) -> tuple[list[Minigpt5Record], dict[str, dict]]:
    """Held-out generation records of the world's CC3M or VIST file (test mode: what a user would prompt), and
    the truth targets by task name."""
    import json

    world = world_root()
    if fmt == "cc3m":
        data = world / "cc3m" / "cc3m_val.tsv"
        records, _, _ = cc3m_records(data, world / "cc3m", test=True)
    else:
        data = world / "vist" / "val_cleaned.json"
        records, _, _ = vist_records(data, world / "vist", test=True)
    truth = json.loads((data.parent / f"{data.stem}_truth.json").read_text())
    return records, {target["task_name"]: target for target in truth["targets"]}


def load_stage(checkpoint: Path, key: str):
    """The model of a quickstart MiniGPT-5 run folder with its checkpoint as `model.<key>`, for inference."""
    from omegaconf import OmegaConf

    from minigpt4.common.registry import registry

    config = OmegaConf.load(checkpoint.parent / "config.yaml")
    config.model[key] = str(checkpoint)
    return registry.get_model_class(config.model.arch).from_config(config.model).eval()


def evaluate_minigpt5(stage1_checkpoint: Path, stage2_checkpoint: Path) -> dict[str, Any]:
    """colour/shape accuracy on CC3M-format prompts with the stage-1 (CC3M) model, as the official CC3M figures
    come from the CC3M checkpoint (seen pairs scored, unseen pairs reported apart); story accuracy on the
    VIST-format scenes that recall an earlier object with the stage-2 (VIST) model; voken rate over all."""
    caption_model = load_stage(stage1_checkpoint, "stage1_ckpt")
    model = load_stage(stage2_checkpoint, "stage2_ckpt")

    captions, caption_truth = heldout_records("cc3m")
    caption_targets = [caption_truth[record.task_name] for record in captions]
    stories, story_truth = heldout_records("vist")
    stories = [r for r in stories if r.task_name.endswith("-gen") and story_truth[r.task_name]["recall"]]
    story_targets = [story_truth[record.task_name] for record in stories]

    caption_images = first_images_of(caption_model, captions)
    story_images = first_images_of(model, stories)
    seen = [i for i, target in enumerate(caption_targets) if target["seen_pair"]]
    unseen = [i for i, target in enumerate(caption_targets) if not target["seen_pair"]]
    seen_scores = judge_targets([caption_images[i] for i in seen], [caption_targets[i] for i in seen])
    unseen_scores = judge_targets([caption_images[i] for i in unseen], [caption_targets[i] for i in unseen])
    story_scores = judge_targets(story_images, story_targets)
    produced = [image is not None for image in caption_images + story_images]
    chance = chance_levels()
    return {
        "colour_acc": seen_scores["colour_acc"],
        "colour_acc_chance": chance["colour_acc"],
        "shape_acc": seen_scores["shape_acc"],
        "shape_acc_chance": chance["shape_acc"],
        "story_acc": story_scores["both_acc"],
        "story_acc_chance": chance["both_acc"],
        "voken_rate": sum(produced) / max(len(produced), 1),
        "voken_rate_chance": 1 / len(model.llama_tokenizer),  # a uniform first token is [IMG0]
        "unseen_pairs": {
            "colour_acc": unseen_scores["colour_acc"],
            "shape_acc": unseen_scores["shape_acc"],
            "count": len(unseen),
        },
        "story_by": {
            by: judge_targets(
                [story_images[i] for i, t in enumerate(story_targets) if t["asks_by"] == by],
                [t for t in story_targets if t["asks_by"] == by],
            )["both_acc"]
            for by in ("shape", "color")
        },
        "counts": {"caption_prompts": len(seen), "story_prompts": len(stories)},
        "targets": TARGETS,
    }


def run_only_minigpt5(options: list[str]) -> dict[str, Any]:
    """`--only minigpt5`: the MiniGPT-5 part on an existing quickstart output folder; its entry replaces the
    `minigpt5` one of results.json (the other figures stay those of the run that wrote them)."""
    import json

    checkpoint = output_root() / "minigpt4_tiny" / "checkpoint_best.pth"
    if not checkpoint.is_file():
        raise FileNotFoundError(
            f"{checkpoint} does not exist: --only minigpt5 reuses a finished quickstart's MiniGPT-4 run "
            "(run `make quickstart` once first)"
        )
    path = output_root() / "results.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    results["minigpt5"] = run_minigpt5(checkpoint, options)
    path.write_text(json.dumps(results, indent=2))
    return results


def run_minigpt5(minigpt4_checkpoint: Path, options: list[str], sd_recipe: SdRecipe | None = None
                 ) -> dict[str, Any]:  # fmt: skip
    """The whole MiniGPT-5 part; returns the `minigpt5` entry of results.json (with the seconds of each step)."""
    seconds: dict[str, float] = {}
    start = time.time()
    say("MiniGPT-5 [1/5] parts of the MiniGPT-4 run (tiny LLM, Q-Former, llama_proj)")
    prepare_parts(minigpt4_checkpoint)
    seconds["parts"] = round(time.time() - start, 1)

    mark = time.time()
    say(f"MiniGPT-5 [2/5] pretrain the tiny Stable Diffusion stand-in -> {output_root() / SD_FOLDER}")
    report = pretrain_tiny_sd(world_root() / "cc3m" / "cc3m_train.tsv", output_root() / SD_FOLDER, sd_recipe)
    seconds["tiny_sd"] = round(time.time() - mark, 1)

    checkpoints = {}
    for index, (cfg_path, job_id) in enumerate(STAGES, start=3):
        mark = time.time()
        say(f"MiniGPT-5 [{index}/5] train {job_id} ({cfg_path})")
        checkpoints[job_id] = train_stage(cfg_path, job_id, None, options)
        seconds[job_id] = round(time.time() - mark, 1)

    mark = time.time()
    say("MiniGPT-5 [5/5] generate for held-out prompts, judge the images")
    scores = evaluate_minigpt5(checkpoints["minigpt5_stage1"], checkpoints["minigpt5_stage2"])
    seconds["evaluate"] = round(time.time() - mark, 1)
    seconds["total"] = round(time.time() - start, 1)
    return {
        **scores,
        "tiny_sd": {key: report[key] for key in ("vae_loss", "unet_loss", "scaling_factor", "pairs")},
        "seconds": seconds,
        "checkpoints": {job_id: str(path) for job_id, path in checkpoints.items()},
    }


def results_rows(entry: dict[str, Any]) -> list[str]:
    """Rows for the quickstart's results table."""
    rows = [
        ("MiniGPT-5 colour drawn as asked (seen pairs, judge)", "colour_acc"),
        ("MiniGPT-5 shape drawn as asked (seen pairs, judge)", "shape_acc"),
        ("MiniGPT-5 story: next image shows the recalled object", "story_acc"),
    ]
    lines = [f"| {label} | {entry[key]:.3f} | {entry[key + '_chance']:.3f} |" for label, key in rows]
    lines.append(
        f"| MiniGPT-5 prompts that produced [IMG0] unforced | {entry['voken_rate']:.3f} | "
        f"{entry['voken_rate_chance']:.3f} |"
    )
    unseen = entry["unseen_pairs"]
    lines.append(
        f"| MiniGPT-5 unseen pairs (no target): colour / shape | {unseen['colour_acc']:.3f} / "
        f"{unseen['shape_acc']:.3f} | {entry['colour_acc_chance']:.3f} / {entry['shape_acc_chance']:.3f} |"
    )
    lines.append(f"| MiniGPT-5 time | {entry['seconds']['total']:.0f} s | |")
    return lines
