"""Training files of the shapes world, one writer per official file layout (all 25 builders).

Each writer gets the world folder, the scenes and their encoded images, writes its files and returns the
builder's `build_info` with paths relative to the world folder (`world.py` prefixes the root).
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from minigpt4.datasets.box_text import box_string
from minigpt4.datasets.shapes.scene import (
    COLORS,
    NUMBER_WORDS,
    Scene,
    absent_shape,
    horizontal_pairs,
    side_items,
    vqa_items,
    yesno_item,
)

Images = dict[int, bytes]  # image_id -> JPEG bytes


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=None))


def write_images(folder: Path, scenes: list[Scene], images: Images, name: Any) -> None:
    """One file per scene, `name(scene)` its file name."""
    folder.mkdir(parents=True, exist_ok=True)
    for scene in scenes:
        (folder / name(scene)).write_bytes(images[scene.image_id])


def train(scenes: list[Scene]) -> list[Scene]:
    return [scene for scene in scenes if scene.split == "train"]


def box(scene: Scene, obj: Any) -> str:
    return box_string(obj.bbox, scene.width, scene.height)


# -- webdataset shards (laion, cc_sbu) ------------------------------------------------------------


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644  # fixed metadata: same bytes on every run
    tar.addfile(info, io.BytesIO(data))


def write_shards(
    root: Path, folder: str, scenes: list[Scene], images: Images, num_shards: int
) -> dict[str, Any]:
    """webdataset shards: per sample <key>.jpg, <key>.json {caption, url, key, width, height}, <key>.txt."""
    out = root / folder
    out.mkdir(parents=True, exist_ok=True)
    chosen = train(scenes)
    for shard in range(num_shards):
        with tarfile.open(out / f"{shard:05d}.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
            for scene in chosen[shard::num_shards]:
                key = f"{scene.image_id:09d}"
                meta = {
                    "caption": scene.caption(),
                    "url": f"https://shapes.world/{scene.image_id}.jpg",
                    "key": key,
                    "width": scene.width,
                    "height": scene.height,
                }
                _add_member(tar, f"{key}.jpg", images[scene.image_id])
                _add_member(tar, f"{key}.json", json.dumps(meta).encode())
                _add_member(tar, f"{key}.txt", scene.caption().encode())
    return {"storage": f"{folder}/{{00000..{num_shards - 1:05d}}}.tar"}


# -- cc_sbu_align ---------------------------------------------------------------------------------


def write_align_layout(folder: Path, scenes: list[Scene], images: Images) -> None:
    """The cc_sbu_align layout: filter_cap.json ({annotations: [{image_id, caption}]}) + image/<id>.jpg."""
    write_images(folder / "image", scenes, images, lambda s: f"{s.image_id}.jpg")
    annotations = [
        {"image_id": str(s.image_id), "caption": f"The image shows {s.caption()} on a white background."}
        for s in scenes
    ]
    write_json(folder / "filter_cap.json", {"annotations": annotations})


def write_cc_sbu_align(root: Path, scenes: list[Scene], images: Images) -> dict[str, Any]:
    write_align_layout(root / "cc_sbu_align", train(scenes), images)
    return {"storage": "cc_sbu_align"}


def write_two_object_captions(root: Path, pair_scenes: list[Scene], images: Images) -> None:
    """two_object_captions/, the cc_sbu_align layout over the two-object training scenes ("... a red circle and
    a blue square ...", left to right). No builder reads it: the quickstart's encoder pretraining does, beside
    cc_sbu_align, so the encoder learns which object is on which side while MiniGPT-4 keeps one-object captions."""
    write_align_layout(root / "two_object_captions", train(pair_scenes), images)


# -- COCO images + LAVIS-style annotations --------------------------------------------------------


def write_coco_images(root: Path, scenes: list[Scene], images: Images) -> None:
    """All scenes (train and held-out, as in COCO train2014) in coco/train/COCO_train2014_<id>.jpg."""
    write_images(root / "coco" / "train", scenes, images, lambda s: s.coco_file)


def write_coco_caption(root: Path, scenes: list[Scene]) -> dict[str, Any]:
    records = []
    for (
        scene
    ) in scenes:  # held-out scenes appear as val2014 records, which the builder filters out (official)
        image = (
            f"train2014/{scene.coco_file}"
            if scene.split == "train"
            else f"val2014/COCO_val2014_{scene.image_id:012d}.jpg"
        )
        records.append({"image": image, "caption": scene.sentence(), "image_id": f"coco_{scene.image_id}"})
    write_json(root / "coco_caption" / "coco_karpathy_train.json", records)
    return {
        "annotations": {"train": {"storage": "coco_caption/coco_karpathy_train.json"}},
        "images": {"storage": "coco"},
    }


def _vqa_records(scenes: list[Scene], kinds: set[str], rng: np.random.Generator, first_id: int) -> list[dict]:
    records = []
    for scene in train(scenes):
        for item in vqa_items(scene, rng):
            if item["kind"] in kinds:
                records.append(
                    {
                        "question_id": first_id + len(records),
                        "question": item["question"],
                        "answer": [item["answer"]] * 10,
                        "image": f"train2014/{scene.coco_file}",
                        "dataset": "vqa",
                    }
                )
    return records


def write_coco_vqa(root: Path, scenes: list[Scene], rng: np.random.Generator) -> dict[str, Any]:
    write_json(root / "vqav2" / "vqa_train.json", _vqa_records(scenes, {"color", "shape"}, rng, 1_000_000))
    write_json(root / "vqav2" / "vqa_val.json", _vqa_records(scenes, {"count", "yesno"}, rng, 2_000_000))
    return {
        "annotations": {"train": {"storage": ["vqav2/vqa_train.json", "vqav2/vqa_val.json"]}},
        "images": {"storage": "coco"},
    }


def write_ok_vqa(root: Path, scenes: list[Scene], rng: np.random.Generator) -> dict[str, Any]:
    write_json(root / "okvqa" / "okvqa_train.json", _vqa_records(scenes, {"color"}, rng, 3_000_000))
    return {"annotations": {"train": {"storage": ["okvqa/okvqa_train.json"]}}, "images": {"storage": "coco"}}


def write_aok_vqa(root: Path, scenes: list[Scene], rng: np.random.Generator) -> dict[str, Any]:
    records = []
    for scene in train(scenes):
        obj = scene.objects[int(rng.integers(len(scene.objects)))]
        others = [color for color in COLORS if color != obj.color]
        choices = [obj.color, *others[:3]]
        order = rng.permutation(len(choices))
        choices = [choices[int(i)] for i in order]
        records.append(
            {
                "split": "train",
                "image_id": scene.image_id,
                "question_id": f"aok{scene.image_id}",
                "question": f"Which color does the {obj.shape} have?",
                "choices": choices,
                "correct_choice_idx": choices.index(obj.color),
                "direct_answers": [obj.color] * 10,
                "difficult_direct_answer": False,
                "rationales": [f"The {obj.shape} is {obj.color}."],
                "image": f"train2014/{scene.coco_file}",
            }
        )
    write_json(root / "aokvqa" / "aokvqa_v1p0_train.json", records)
    return {
        "annotations": {"train": {"storage": ["aokvqa/aokvqa_v1p0_train.json"]}},
        "images": {"storage": "coco"},
    }


def write_gqa(
    root: Path,
    scenes: list[Scene],
    images: Images,
    rng: np.random.Generator,
    pair_scenes: list[Scene],
    pair_images: Images,
) -> dict[str, Any]:
    """gqa/train_balanced_questions.json: the short-answer questions of the training scenes, then where things
    are in the two-object training scenes (`side_items`); images gqa/train/<id>.jpg."""
    chosen, pairs = train(scenes), train(pair_scenes)
    write_images(
        root / "gqa" / "train", chosen + pairs, {**images, **pair_images}, lambda s: f"{s.image_id}.jpg"
    )
    asked = [(scene, vqa_items(scene, rng)) for scene in chosen]
    asked += [(scene, side_items(scene)) for scene in pairs]
    records = []
    for scene, items in asked:
        for item in items:
            records.append(
                {
                    "image": f"{scene.image_id}.jpg",
                    "question": item["question"],
                    "answer": item["answer"],
                    "question_id": f"gqa{len(records)}",
                    "fullAnswer": f"The answer is {item['answer']}.",
                }
            )
    write_json(root / "gqa" / "train_balanced_questions.json", records)
    return {
        "annotations": {"train": {"storage": ["gqa/train_balanced_questions.json"]}},
        "images": {"storage": "gqa"},
    }


# -- image_path + ann_path families ---------------------------------------------------------------


def write_textcaps(root: Path, scenes: list[Scene], images: Images) -> dict[str, Any]:
    chosen = train(scenes)
    write_images(root / "textcaps" / "train_images", chosen, images, lambda s: f"{s.image_id:016x}.jpg")
    data = [
        {
            "image_id": f"{s.image_id:016x}",
            "image_name": f"{s.image_id:016x}",
            "caption_id": index,
            "caption_str": s.sentence(),
            "image_path": f"train/{s.image_id:016x}.jpg",
            "set_name": "train",
            "image_width": s.width,
            "image_height": s.height,
            "reference_strs": [s.sentence()],
        }
        for index, s in enumerate(chosen)
    ]
    write_json(
        root / "textcaps" / "TextCaps_0.1_train.json",
        {"dataset_type": "train", "dataset_name": "textcaps", "dataset_version": "0.1", "data": data},
    )
    return {"image_path": "textcaps/train_images", "ann_path": "textcaps/TextCaps_0.1_train.json"}


def write_ocrvqa(root: Path, scenes: list[Scene], images: Images) -> dict[str, Any]:
    chosen = train(scenes)
    write_images(root / "ocrvqa" / "images", chosen, images, lambda s: f"B{s.image_id:09d}.jpg")
    data = {}
    for scene in scenes:  # held-out scenes are split 2 (validation), which the builder skips (official)
        title = scene.caption().title()
        first = scene.objects[0]
        data[f"B{scene.image_id:09d}"] = {
            "imageURL": f"http://ecx.images-amazon.com/images/I/B{scene.image_id:09d}.jpg",
            "questions": [
                "What is the title of this book?",
                f"What color is the {first.shape} on this cover?",
            ],
            "answers": [title, first.color],
            "title": title,
            "authorName": "Shapes World",
            "genre": "Shapes",
            "split": 1 if scene.split == "train" else 2,
        }
    write_json(root / "ocrvqa" / "dataset.json", data)
    return {"image_path": "ocrvqa/images", "ann_path": "ocrvqa/dataset.json"}


def _turn(speaker: str, value: str) -> dict[str, str]:
    return {"from": speaker, "value": value}


def llava_detail(scene: Scene) -> str:
    count = len(scene.objects)
    noun = "object" if count == 1 else "objects"
    return (
        f"The image shows {NUMBER_WORDS[count]} {noun} on a plain white background. From left to right "
        f"there is {scene.caption()}."
    )


def write_llava(root: Path, scenes: list[Scene]) -> dict[str, dict[str, Any]]:
    chosen = train(scenes)
    detail, reason, conversation = [], [], []
    for scene in chosen:
        llava_id = f"{scene.image_id:012d}"
        detail.append(
            {
                "id": llava_id,
                "image": f"{llava_id}.jpg",
                "conversations": [
                    _turn("human", "<image>\nDescribe the image in detail."),
                    _turn("gpt", llava_detail(scene)),
                ],
            }
        )
        left = scene.objects[0]
        reason.append(
            {
                "id": llava_id,
                "image": f"{llava_id}.jpg",
                "conversations": [
                    _turn("human", "What is the color of the leftmost object?\n<image>"),
                    _turn("gpt", f"The leftmost object is a {left.phrase}, so its color is {left.color}."),
                ],
            }
        )
        turns = [
            _turn("human", f"<image>\nWhat shape is the {scene.objects[0].color} object?"),
            _turn("gpt", f"It is a {scene.objects[0].shape}."),
        ]
        for obj in scene.objects[1:]:
            turns += [
                _turn("human", f"What color is the {obj.shape}?"),
                _turn("gpt", f"The {obj.shape} is {obj.color}."),
            ]
        turns += [
            _turn("human", "How many objects are there?"),
            _turn("gpt", f"There are {len(scene.objects)}."),
        ]
        conversation.append({"id": llava_id, "image": f"{llava_id}.jpg", "conversations": turns})
    folder = root / "llava"
    write_json(folder / "detail_23k.json", detail)
    write_json(folder / "complex_reasoning_77k.json", reason)
    write_json(folder / "conversation_58k.json", conversation)
    return {
        "llava_detail": {"image_path": "coco/train", "ann_path": "llava/detail_23k.json"},
        "llava_reason": {"image_path": "coco/train", "ann_path": "llava/complex_reasoning_77k.json"},
        "llava_conversation": {"image_path": "coco/train", "ann_path": "llava/conversation_58k.json"},
    }


def write_multitask_conversation(root: Path, scenes: list[Scene]) -> dict[str, Any]:
    records = []
    for scene in train(scenes):
        first, last = scene.objects[0], scene.objects[-1]
        turns = [
            _turn("human", f"<image>\n[vqa] What color is the {first.shape}?"),
            _turn("gpt", first.color),
            _turn("human", f"[refer] give me the location of the {last.phrase}"),
            _turn("gpt", box(scene, last)),
            _turn("human", f"[identify] what object is in this location {box(scene, first)}"),
            _turn("gpt", first.phrase),
        ]
        records.append({"id": f"{scene.image_id:012d}", "conversations": turns})
    write_json(root / "multitask_conversation" / "multitask_conversation.json", records)
    return {"image_path": "coco/train", "ann_path": "multitask_conversation/multitask_conversation.json"}


def write_unnatural(root: Path, scenes: list[Scene], rng: np.random.Generator) -> dict[str, Any]:
    """Two text-only yes/no questions per training scene, asked of its description: "The image shows a red
    circle. Is there a blue circle?" -> "no". The text form of the VQA yes/no question: it teaches a tiny random
    LLM to compare words before it has to compare words with images."""
    records = []
    for scene in train(scenes):
        for _ in range(2):
            item = yesno_item(scene, rng)
            instance = {
                "instruction_with_input": f"The image shows {scene.caption()}. {item['question']}",
                "input": scene.sentence(),
                "constraints": None,  # the VQA prompts carry no "Answer yes or no." either
                "output": item["answer"],
            }
            records.append(
                {
                    "instruction": "Answer a yes/no question about a description of an image.",
                    "instances": [instance],
                }
            )
    write_json(root / "unnatural_instructions" / "filtered_unnatural_instruction.json", records)
    return {"ann_path": "unnatural_instructions/filtered_unnatural_instruction.json"}


def missing_shape_question(scene: Scene) -> tuple[str, str]:
    """A VizWiz-style question: about a missing shape -> 'unanswerable', else the colour of a present one."""
    shape = absent_shape(scene)
    if shape is not None and scene.image_id % 3 == 0:
        return f"What color is the {shape}?", "unanswerable"
    obj = scene.objects[0]
    return f"What color is the {obj.shape}?", obj.color


def vizwiz_row(scene: Scene, split: str) -> dict[str, Any]:
    """A VizWiz annotation record ({image, question, 10 answers, answer_type, answerable}) of the scene."""
    question, answer = missing_shape_question(scene)
    return {
        "image": f"VizWiz_{split}_{scene.image_id:08d}.jpg",
        "question": question,
        "answers": [{"answer": answer, "answer_confidence": "yes"} for _ in range(10)],
        "answer_type": "unanswerable" if answer == "unanswerable" else "other",
        "answerable": int(answer != "unanswerable"),
    }


def write_vizwiz(root: Path, scenes: list[Scene], images: Images) -> dict[str, Any]:
    """vizwiz/train.json over the training scenes; images vizwiz/train/VizWiz_train_<8 digits>.jpg."""
    chosen = train(scenes)
    write_images(root / "vizwiz" / "train", chosen, images, lambda s: f"VizWiz_train_{s.image_id:08d}.jpg")
    write_json(root / "vizwiz" / "train.json", [vizwiz_row(scene, "train") for scene in chosen])
    return {"image_path": "vizwiz/train", "ann_path": "vizwiz/train.json"}


# -- VSR and Hateful Memes (ours: builders `vsr`, `hateful_memes`) -----------------------------------------


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def vsr_row(scene: Scene, true_relation: bool) -> dict[str, Any]:
    """A VSR record about the scene's first (left, right) pair: stated the right way round or swapped."""
    left, right = horizontal_pairs(scene.objects)[0]
    subj, obj = (left, right) if true_relation else (right, left)
    return {
        "image": f"{scene.image_id:012d}.jpg",
        "caption": f"The {subj.phrase} is left of the {obj.phrase}.",
        "label": int(true_relation),
        "relation": "left of",
        "subj": subj.phrase,
        "obj": obj.phrase,
    }


def write_vsr(root: Path, pair_scenes: list[Scene], images: Images) -> dict[str, Any]:
    """vsr/train.jsonl: each two-object training scene stated both ways; images vsr/images/<12 digits>.jpg."""
    chosen = train(pair_scenes)
    write_images(root / "vsr" / "images", chosen, images, lambda s: f"{s.image_id:012d}.jpg")
    write_jsonl(root / "vsr" / "train.jsonl", [vsr_row(s, truth) for s in chosen for truth in (True, False)])
    return {"image_path": "vsr/images", "ann_path": "vsr/train.jsonl"}


def hm_rows(scenes: list[Scene]) -> list[dict[str, Any]]:
    """Hateful-Memes records; label 1 ('hateful') when the text is another scene's caption (a synthetic proxy:
    the text does not describe the image). Every second scene gets the next scene's caption."""
    rows = []
    for index, scene in enumerate(scenes):
        text_scene = scenes[(index + 1) % len(scenes)] if index % 2 == 1 else scene
        mismatched = text_scene.caption() != scene.caption()
        rows.append(
            {
                "id": scene.image_id,
                "img": f"img/{scene.image_id:05d}.png",
                "label": int(mismatched),
                "text": text_scene.caption(),
            }
        )
    return rows


def write_hateful_memes(root: Path, scenes: list[Scene], pngs: Images) -> dict[str, Any]:
    """hm/train.jsonl over the training scenes; images hm/img/<5 digits>.png (the official layout)."""
    chosen = train(scenes)
    write_images(root / "hm" / "img", chosen, pngs, lambda s: f"{s.image_id:05d}.png")
    write_jsonl(root / "hm" / "train.jsonl", hm_rows(chosen))
    return {"image_path": "hm", "ann_path": "hm/train.jsonl"}
