"""`generate_world`: write every training and evaluation format of one seeded shapes world, plus
`datasets.yaml` (builder `build_info`s and `evaluation_datasets` entries pointing into the world) and
`truth.json` (every image and object)."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from minigpt4.datasets.shapes import eval_files, grounding_files, minigpt5_files, train_files
from minigpt4.datasets.shapes.scene import WorldConfig, draw, encode, make_pair_scenes, make_scenes

logger = logging.getLogger(__name__)

ENV_ROOT = "${oc.env:SHAPES_WORLD,outputs/shapes_world}"
"""How configs find the world: the SHAPES_WORLD environment variable, else outputs/shapes_world."""

VIS_SIZE_NOTE = "image_size in vis_processor is yours to choose; the world's images are {size} px"


@dataclass
class WorldInfo:
    root: Path
    config: WorldConfig
    scenes: list[Any]
    pair_scenes: list[Any]  # the two-object scenes of the VSR files
    datasets_yaml: Path
    truth_json: Path
    build_infos: dict[str, dict[str, Any]]  # relative paths
    eval_entries: dict[str, dict[str, Any]]  # relative paths
    seconds: float

    def scene(self, image_id: int) -> Any:
        return next(scene for scene in self.scenes + self.pair_scenes if scene.image_id == image_id)


def _prefix(
    value: Any,
    root: str,
    keys: tuple[str, ...] = ("storage", "image_path", "ann_path", "data_dir", "eval_file_path", "img_path"),
) -> Any:
    """Prefix every path value of a build_info / eval entry with `root`."""
    if isinstance(value, dict):
        return {k: (_join(root, v) if k in keys else _prefix(v, root, keys)) for k, v in value.items()}
    return value


def _join(root: str, value: Any) -> Any:
    if isinstance(value, list):
        return [f"{root}/{item}" for item in value]
    return f"{root}/{value}"


def datasets_section(build_infos: dict[str, dict[str, Any]], root: str) -> dict[str, Any]:
    """`datasets:` entries (data_type + build_info) for every builder, paths under `root`."""
    return {
        name: {
            "data_type": "text" if name == "unnatural_instruction" else "images",
            "build_info": _prefix(info, root),
        }
        for name, info in build_infos.items()
    }


def evaluation_section(eval_entries: dict[str, dict[str, Any]], root: str) -> dict[str, Any]:
    return {name: _prefix(entry, root) for name, entry in eval_entries.items()}


def write_files(root: Path, config: WorldConfig) -> tuple[list[Any], list[Any], dict, dict]:
    """Scenes, two-object (VSR) scenes, builder build_infos and evaluation entries."""
    scenes = make_scenes(config)
    pair_scenes = make_pair_scenes(config)
    drawn = {scene.image_id: draw(scene) for scene in scenes}
    pair_jpegs = {scene.image_id: encode(draw(scene), "JPEG") for scene in pair_scenes}
    jpegs = {image_id: encode(image, "JPEG") for image_id, image in drawn.items()}
    pngs = {image_id: encode(image, "PNG") for image_id, image in drawn.items()}
    rng = np.random.default_rng(config.seed + 1)  # questions; separate stream so scenes do not depend on it

    infos: dict[str, dict[str, Any]] = {}
    infos["laion"] = train_files.write_shards(root, "laion", scenes, jpegs, config.num_shards)
    infos["cc_sbu"] = train_files.write_shards(root, "cc_sbu", scenes, jpegs, config.num_shards)
    infos["cc_sbu_align"] = train_files.write_cc_sbu_align(root, scenes, jpegs)
    train_files.write_coco_images(root, scenes, jpegs)
    infos["coco_caption"] = train_files.write_coco_caption(root, scenes)
    infos["coco_vqa"] = train_files.write_coco_vqa(root, scenes, rng)
    infos["ok_vqa"] = train_files.write_ok_vqa(root, scenes, rng)
    infos["aok_vqa"] = train_files.write_aok_vqa(root, scenes, rng)
    infos["gqa"] = train_files.write_gqa(root, scenes, jpegs, rng, pair_scenes, pair_jpegs)
    infos["textcaps_caption"] = train_files.write_textcaps(root, scenes, jpegs)
    infos["ocrvqa"] = train_files.write_ocrvqa(root, scenes, jpegs)
    infos.update(grounding_files.write_refcoco(root, scenes))
    infos["refvg"] = grounding_files.write_visual_genome(root, scenes, jpegs)
    infos.update(grounding_files.write_flickr(root, scenes, jpegs))
    infos.update(train_files.write_llava(root, scenes))
    infos["multitask_conversation"] = train_files.write_multitask_conversation(root, scenes)
    # own stream: the text-only questions do not shift the question draws of the files written after them
    infos["unnatural_instruction"] = train_files.write_unnatural(
        root, scenes, np.random.default_rng(config.seed + 3)
    )
    infos["vsr"] = train_files.write_vsr(root, pair_scenes, pair_jpegs)
    train_files.write_two_object_captions(root, pair_scenes, pair_jpegs)
    infos["hateful_memes"] = train_files.write_hateful_memes(root, scenes, pngs)
    infos["vizwiz"] = train_files.write_vizwiz(root, scenes, jpegs)
    # MiniGPT-5 (one object per image, their own scenes and random streams)
    infos.update(minigpt5_files.write_minigpt5(root, config))

    evals: dict[str, dict[str, Any]] = {}
    evals.update(eval_files.write_refcoco_eval(root, scenes))
    evals["okvqa"] = eval_files.write_okvqa_eval(root, scenes, jpegs, rng)
    evals["vizwiz"] = eval_files.write_vizwiz_eval(root, scenes, jpegs)
    evals["iconvqa"] = eval_files.write_iconqa_eval(root, scenes, pngs, rng)
    evals["gqa"] = eval_files.write_gqa_eval(root, scenes, jpegs, rng)
    evals["vsr"] = eval_files.write_vsr_eval(root, pair_scenes, pair_jpegs, rng)
    evals["hm"] = eval_files.write_hm_eval(root, scenes, pngs)
    evals["vqav2"] = eval_files.write_vqav2_eval(root, scenes, jpegs, rng)
    evals["coco_caption"] = eval_files.write_caption_eval(root, scenes)
    return scenes, pair_scenes, infos, evals


def generate_world(
    out_dir: str | Path,
    size: str = "small",
    seed: int = 0,
    image_size: int | None = None,
    num_train: int | None = None,
    num_heldout: int | None = None,
    min_objects: int | None = None,
    max_objects: int | None = None,
    num_shards: int | None = None,
) -> WorldInfo:
    """Write the world under `out_dir` and return its description. A world already there (it has truth.json) is
    removed first, so no file of a differently sized world lingers; other existing files are overwritten."""
    start = time.perf_counter()
    config = WorldConfig.from_size(
        size,
        seed=seed,
        image_size=image_size,
        num_train=num_train,
        num_heldout=num_heldout,
        min_objects=min_objects,
        max_objects=max_objects,
        num_shards=num_shards,
    )
    root = Path(out_dir).resolve()
    if (root / "truth.json").is_file():
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    scenes, pair_scenes, infos, evals = write_files(root, config)

    section = {
        "datasets": datasets_section(infos, str(root)),
        "evaluation_datasets": evaluation_section(evals, str(root)),
    }
    datasets_yaml = root / "datasets.yaml"
    header = (
        f"# Shapes world ({config.size}, seed {config.seed}, {config.image_size} px): paste `datasets:` into a "
        f"train config (add batch_size, sample_ratio,\n# vis_processor, text_processor) and "
        f"`evaluation_datasets:` into an eval config.\n"
    )
    datasets_yaml.write_text(header + OmegaConf.to_yaml(OmegaConf.create(section)))
    truth = {
        "config": asdict(config),
        "colors": list(train_files.COLORS),
        "shapes": list(eval_files.SHAPES),
        "images": [scene.to_json() for scene in scenes],
        "pair_images": [scene.to_json() for scene in pair_scenes],
    }
    truth_json = root / "truth.json"
    truth_json.write_text(json.dumps(truth))
    seconds = time.perf_counter() - start
    logger.info(
        "shapes world (%s, %d images) written to %s in %.1f s",
        config.size,
        len(scenes) + len(pair_scenes),
        root,
        seconds,
    )
    return WorldInfo(root, config, scenes, pair_scenes, datasets_yaml, truth_json, infos, evals, seconds)


def shapes_default_yamls() -> dict[str, str]:
    """Text of `configs/datasets/<builder>/shapes.yaml` for every builder (`type: shapes` in a config):
    the small world's build_info under ${oc.env:SHAPES_WORLD,outputs/shapes_world}. Pinned by a test."""
    config = WorldConfig.from_size("small")
    with tempfile.TemporaryDirectory() as tmp:
        _, _, infos, _ = write_files(Path(tmp), config)
    texts = {}
    for name, node in datasets_section(infos, ENV_ROOT).items():
        body = OmegaConf.to_yaml(OmegaConf.create({"datasets": {name: node}}))
        texts[name] = (
            f"# Builder `{name}` reading the shapes world (`python -m minigpt4.datasets.shapes --out DIR`),\n"
            f"# found through SHAPES_WORLD (default outputs/shapes_world). Select with `type: shapes`.\n"
            + body
        )
    return texts


def load_truth(root: str | Path) -> dict[str, Any]:
    return json.loads((Path(root) / "truth.json").read_text())
