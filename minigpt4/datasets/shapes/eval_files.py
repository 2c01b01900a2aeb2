"""Evaluation files of the shapes world, in the formats the official evaluation reads (held-out scenes only).

Returns the `evaluation_datasets` entries with paths relative to the world folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from minigpt4.datasets.shapes.grounding_files import REFER_SETS, heldout_split, refer_sentences
from minigpt4.datasets.shapes.scene import SHAPES, Scene, vqa_items
from minigpt4.datasets.shapes.train_files import (
    hm_rows,
    vizwiz_row,
    vsr_row,
    write_images,
    write_json,
    write_jsonl,
)

Images = dict[int, bytes]


def heldout(scenes: list[Scene]) -> list[Scene]:
    return [scene for scene in scenes if scene.split == "heldout"]


def _entry(eval_file_path: str, img_path: str, batch_size: int = 10) -> dict[str, Any]:
    return {
        "eval_file_path": eval_file_path,
        "img_path": img_path,
        "max_new_tokens": 20,
        "batch_size": batch_size,
    }


def write_refcoco_eval(root: Path, scenes: list[Scene]) -> dict[str, dict[str, Any]]:
    """eval/<ds>/<ds>_<split>.json: [{img_id: COCO_train2014_<12 digits>_<object id>, sents, bbox, height, width}]."""
    entries = {}
    for folder, (_, splits, _) in REFER_SETS.items():
        records: dict[str, list[dict[str, Any]]] = {split: [] for split in splits}
        for index, scene in enumerate(heldout(scenes)):
            split = heldout_split(index, splits)
            for obj in scene.objects:
                for sentence in refer_sentences(folder, obj):
                    records[split].append(
                        {
                            "img_id": f"{scene.coco_file[:-4]}_{obj.object_id}",
                            "sents": sentence,
                            "bbox": obj.bbox,
                            "height": scene.height,
                            "width": scene.width,
                        }
                    )
        for split, rows in records.items():
            write_json(root / "eval" / folder / f"{folder}_{split}.json", rows)
        entries[folder] = _entry("eval", "coco/train")
    return entries


def write_okvqa_eval(
    root: Path, scenes: list[Scene], images: Images, rng: np.random.Generator
) -> dict[str, Any]:
    folder = root / "eval" / "okvqa"
    chosen = heldout(scenes)
    write_images(folder / "images", chosen, images, lambda s: f"{s.image_id:012d}.jpg")
    questions, annotations, split = [], [], []
    kinds = {"color": "other", "shape": "other", "count": "number", "yesno": "yes/no"}
    for scene in chosen:
        for item in vqa_items(scene, rng):
            question_id = 5_000_000 + len(questions)
            questions.append(
                {"image_id": scene.image_id, "question": item["question"], "question_id": question_id}
            )
            split.append(
                {
                    "image_id": scene.image_id,
                    "question": item["question"],
                    "question_id": question_id,
                    "answer": [item["answer"]] * 10,
                }
            )
            annotations.append(
                {
                    "image_id": scene.image_id,
                    "question_id": question_id,
                    "question_type": "what",
                    "answer_type": kinds[item["kind"]],
                    "multiple_choice_answer": item["answer"],
                    "confidence": 3,
                    "answers": [
                        {
                            "answer": item["answer"],
                            "raw_answer": item["answer"],
                            "answer_confidence": "yes",
                            "answer_id": i + 1,
                        }
                        for i in range(10)
                    ],
                }
            )
    common = {
        "info": {"description": "shapes world OK-VQA-style questions"},
        "license": {"name": "CC0"},
        "data_type": "mscoco",
        "data_subtype": "val2014",
    }
    write_json(folder / "okvqa_test_split.json", split)
    write_json(
        folder / "OpenEnded_mscoco_val2014_questions_clean.json",
        {**common, "task_type": "Open-Ended", "questions": questions},
    )
    write_json(folder / "mscoco_val2014_annotations_clean.json", {**common, "annotations": annotations})
    return _entry("eval/okvqa", "eval/okvqa/images")


def write_vizwiz_eval(root: Path, scenes: list[Scene], images: Images) -> dict[str, Any]:
    folder = root / "eval" / "vizwiz"
    chosen = heldout(scenes)
    write_images(folder / "val", chosen, images, lambda s: f"VizWiz_val_{s.image_id:08d}.jpg")
    write_json(folder / "val.json", [vizwiz_row(scene, "val") for scene in chosen])
    return _entry("eval/vizwiz/val.json", "eval/vizwiz/val")


def write_iconqa_eval(
    root: Path, scenes: list[Scene], pngs: Images, rng: np.random.Generator
) -> dict[str, Any]:
    folder = root / "eval" / "iconqa"
    rows = []
    for scene in heldout(scenes):
        (folder / "images" / str(scene.image_id)).mkdir(parents=True, exist_ok=True)
        (folder / "images" / str(scene.image_id) / "image.png").write_bytes(pngs[scene.image_id])
        obj = scene.objects[int(rng.integers(len(scene.objects)))]
        choices = [SHAPES[int(i)] for i in rng.permutation(len(SHAPES))]
        rows.append(
            {
                "image_id": str(scene.image_id),
                "question": f"What shape is the {obj.color} object?",
                "choices": choices,
                "answer": choices.index(obj.shape),
                "ques_type": "choose_txt",
                "grade": "shapes",
                "label": obj.shape,
            }
        )
    write_json(folder / "choose_text_val.json", rows)
    return _entry("eval/iconqa/choose_text_val.json", "eval/iconqa/images")


def write_gqa_eval(
    root: Path, scenes: list[Scene], images: Images, rng: np.random.Generator
) -> dict[str, Any]:
    folder = root / "eval" / "gqa"
    chosen = heldout(scenes)
    write_images(folder / "images", chosen, images, lambda s: f"{s.image_id}.jpg")
    rows = []
    for scene in chosen:
        for item in vqa_items(scene, rng):
            rows.append(
                {
                    "image": f"{scene.image_id}.jpg",
                    "question": item["question"],
                    "answer": item["answer"],
                    "question_id": f"gqa-eval-{len(rows)}",
                    "fullAnswer": f"The answer is {item['answer']}.",
                }
            )
    write_json(folder / "testdev_balanced_questions.json", rows)
    return _entry("eval/gqa/testdev_balanced_questions.json", "eval/gqa/images")


def write_vsr_eval(
    root: Path, pair_scenes: list[Scene], images: Images, rng: np.random.Generator
) -> dict[str, Any]:
    """One statement per held-out two-object scene, true or swapped at random."""
    folder = root / "eval" / "vsr"
    chosen = heldout(pair_scenes)
    write_images(folder / "images", chosen, images, lambda s: f"{s.image_id:012d}.jpg")
    write_jsonl(folder / "test.jsonl", [vsr_row(scene, bool(rng.random() < 0.5)) for scene in chosen])
    return _entry("eval/vsr/test.jsonl", "eval/vsr/images")


def write_hm_eval(root: Path, scenes: list[Scene], pngs: Images) -> dict[str, Any]:
    """Hateful-Memes dev.jsonl over the held-out scenes (see `train_files.hm_rows` for the labels)."""
    folder = root / "eval" / "hm"
    chosen = heldout(scenes)
    write_images(folder / "img", chosen, pngs, lambda s: f"{s.image_id:05d}.png")
    write_jsonl(folder / "dev.jsonl", hm_rows(chosen))
    return _entry("eval/hm/dev.jsonl", "eval/hm", batch_size=100)


def write_caption_eval(root: Path, scenes: list[Scene]) -> dict[str, Any]:
    """Karpathy-style test list [{image, caption: [str], image_id}] over the held-out COCO-named images."""
    rows = [
        {"image": scene.coco_file, "caption": [scene.sentence()], "image_id": scene.image_id}
        for scene in heldout(scenes)
    ]
    write_json(root / "eval" / "coco_caption" / "coco_karpathy_test.json", rows)
    return _entry("eval/coco_caption/coco_karpathy_test.json", "coco/train")


def write_vqav2_eval(
    root: Path, scenes: list[Scene], images: Images, rng: np.random.Generator
) -> dict[str, Any]:
    """Official VQAv2 val files (questions + annotations) over held-out images named COCO_val2014_<12 digits>.jpg."""
    folder = root / "eval" / "vqav2"
    chosen = heldout(scenes)
    write_images(folder / "images", chosen, images, lambda s: f"COCO_val2014_{s.image_id:012d}.jpg")
    questions, annotations = [], []
    kinds = {"color": "other", "shape": "other", "count": "number", "yesno": "yes/no"}
    for scene in chosen:
        for item in vqa_items(scene, rng):
            question_id = 7_000_000 + len(questions)
            questions.append(
                {"image_id": scene.image_id, "question": item["question"], "question_id": question_id}
            )
            annotations.append(
                {
                    "image_id": scene.image_id,
                    "question_id": question_id,
                    "question_type": "what",
                    "answer_type": kinds[item["kind"]],
                    "multiple_choice_answer": item["answer"],
                    "answers": [
                        {"answer": item["answer"], "answer_confidence": "yes", "answer_id": i + 1}
                        for i in range(10)
                    ],
                }
            )
    common = {
        "info": {"description": "shapes world VQAv2-style questions"},
        "license": {"name": "CC0"},
        "data_type": "mscoco",
        "data_subtype": "val2014",
    }
    write_json(
        folder / "v2_OpenEnded_mscoco_val2014_questions.json",
        {**common, "task_type": "Open-Ended", "questions": questions},
    )
    write_json(folder / "v2_mscoco_val2014_annotations.json", {**common, "annotations": annotations})
    return _entry("eval/vqav2", "eval/vqav2/images")
