"""A tiny evaluation world on disk in every official eval file format, and a stub model that reads images.

Each image is a coloured square on white; its colour answers the VQA questions, its position the REC
expressions. `eval_config(root)` gives the `evaluation_datasets` block pointing at the files; the layout is the
one `eval_configs/shapes_benchmark_evaluation.yaml` expects under the shapes world's `eval/` folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

from minigpt4.models.generation import GenerationResult

COLORS = {"red": (220, 30, 30), "green": (30, 180, 30), "blue": (30, 30, 220)}
SIZE = 64
COUNT = 6  # samples per benchmark split


def _square(index: int) -> tuple[str, list[int]]:
    """Colour and [x, y, w, h] of sample `index` (deterministic)."""
    color = list(COLORS)[index % 3]
    x, y, w = 4 + 7 * (index % 5), 6 + 5 * (index % 4), 20 + 2 * (index % 3)
    return color, [x, y, w, w]


def _draw(path: Path, index: int, fmt: str = "JPEG") -> None:
    color, (x, y, w, h) = _square(index)
    image = Image.new("RGB", (SIZE, SIZE), (255, 255, 255))
    ImageDraw.Draw(image).rectangle([x, y, x + w - 1, y + h - 1], fill=COLORS[color])
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, fmt, quality=95) if fmt == "JPEG" else image.save(path, fmt)


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def write_eval_world(root: Path, count: int = COUNT) -> Path:
    """Write every benchmark's files under root/eval; returns that folder."""
    eval_dir = Path(root) / "eval"
    # RefCOCO family: <ds>/<ds>_<split>.json, images COCO_train2014_<12 digits>.jpg; two expressions share each id
    for index in range(count):
        _draw(eval_dir / "coco_images" / f"COCO_train2014_{index:012d}.jpg", index)
    for dataset, splits in {"refcoco": ("val", "testA", "testB"), "refcoco+": ("val", "testA", "testB"),
                            "refcocog": ("val", "test")}.items():  # fmt: skip
        for split in splits:
            records = []
            for index in range(count):
                color, bbox = _square(index)
                for sentence in (f"the {color} square", f"{color} box"):
                    records.append({"img_id": f"COCO_train2014_{index:012d}_{index}", "sents": sentence,
                                    "bbox": bbox, "height": SIZE, "width": SIZE})  # fmt: skip
            _write(eval_dir / "refcoco" / dataset / f"{dataset}_{split}.json", records)
    # OKVQA / VQAv2: official VQA annotation + questions files
    questions, annotations = [], []
    for index in range(count):
        color, _ = _square(index)
        _draw(eval_dir / "okvqa" / "images" / f"{index:012d}.jpg", index)
        _draw(eval_dir / "vqav2" / "images" / f"COCO_val2014_{index:012d}.jpg", index)
        qid = 100 + index
        questions.append({"image_id": index, "question": "What color is the square?", "question_id": qid})
        answers = [{"answer": color if k < 8 else "dark " + color, "answer_confidence": "yes", "answer_id": k + 1}
                   for k in range(10)]  # fmt: skip
        annotations.append({"question_id": qid, "image_id": index, "question_type": "what color is the",
                            "answer_type": "other", "answers": answers})  # fmt: skip
    question_file = {"info": {}, "task_type": "Open-Ended", "data_type": "mscoco", "data_subtype": "val2014",
                     "license": {}, "questions": questions}  # fmt: skip
    _write(eval_dir / "okvqa" / "okvqa_test_split.json", questions)
    _write(eval_dir / "okvqa" / "mscoco_val2014_annotations_clean.json", {"annotations": annotations})
    _write(eval_dir / "okvqa" / "OpenEnded_mscoco_val2014_questions_clean.json", question_file)
    _write(eval_dir / "vqav2" / "v2_mscoco_val2014_annotations.json", {"annotations": annotations})
    _write(eval_dir / "vqav2" / "v2_OpenEnded_mscoco_val2014_questions.json", question_file)
    vizwiz, gqa, vsr, hm, icon, captions = [], [], [], [], [], []
    for index in range(count):
        color, _ = _square(index)
        name = f"img_{index}.jpg"
        for folder in ("vizwiz", "gqa", "vsr", "coco_caption"):
            _draw(eval_dir / folder / "images" / name, index)
        _draw(eval_dir / "hm" / "img" / f"{index:05d}.png", index, "PNG")
        _draw(eval_dir / "iconvqa" / "images" / str(index) / "image.png", index, "PNG")
        vizwiz.append({"image": name, "question": "What color is this?",
                       "answers": [{"answer": color, "answer_confidence": "yes"}] * 10})  # fmt: skip
        gqa.append({"image": name, "question": "What color is the square?", "answer": color})
        other = list(COLORS)[(index + 1) % 3]
        vsr.append(
            {"image": name, "caption": f"The square is {color if index % 2 else other}.", "label": index % 2}
        )
        hm.append(
            {"id": index, "img": f"img/{index:05d}.png", "label": int(color == "red"), "text": "a meme"}
        )
        icon.append({"image_id": str(index), "question": "Which colour is shown?", "choices": list(COLORS),
                     "answer": list(COLORS).index(color)})  # fmt: skip
        captions.append({"image": name, "caption": [f"a {color} square", f"a {color} square on white"]})
    _write(eval_dir / "vizwiz" / "val.json", vizwiz)
    _write(eval_dir / "gqa" / "testdev_balanced_questions.json", gqa)
    (eval_dir / "vsr").mkdir(parents=True, exist_ok=True)
    (eval_dir / "vsr" / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in vsr))
    (eval_dir / "hm" / "dev.jsonl").write_text("".join(json.dumps(row) + "\n" for row in hm))
    _write(eval_dir / "iconvqa" / "choose_text_val.json", icon)
    _write(eval_dir / "coco_caption" / "coco_karpathy_test.json", captions)
    return eval_dir


def eval_config(eval_dir: Path, batch_size: int = 4, names: tuple[str, ...] | None = None) -> dict[str, dict]:
    """The `evaluation_datasets` block for the world under eval_dir."""
    e = Path(eval_dir)
    blocks = {
        "refcoco": (e / "refcoco", e / "coco_images"),
        "refcoco+": (e / "refcoco", e / "coco_images"),
        "refcocog": (e / "refcoco", e / "coco_images"),
        "okvqa": (e / "okvqa", e / "okvqa" / "images"),
        "vizwiz": (e / "vizwiz" / "val.json", e / "vizwiz" / "images"),
        "iconvqa": (e / "iconvqa" / "choose_text_val.json", e / "iconvqa" / "images"),
        "gqa": (e / "gqa" / "testdev_balanced_questions.json", e / "gqa" / "images"),
        "vsr": (e / "vsr" / "test.jsonl", e / "vsr" / "images"),
        "hm": (e / "hm" / "dev.jsonl", e / "hm"),
        "vqav2": (e / "vqav2", e / "vqav2" / "images"),
        "coco_caption": (e / "coco_caption" / "coco_karpathy_test.json", e / "coco_caption" / "images"),
    }
    return {
        name: {
            "eval_file_path": str(files),
            "img_path": str(images),
            "batch_size": batch_size,
            "max_new_tokens": 20,
        }
        for name, (files, images) in blocks.items()
        if names is None or name in names
    }


class StubModel:
    """Answers from the pixels: the square's colour and box. Squares of colour `unsure_of` get the unparsable
    answer "I cannot tell" (deterministic per sample, whatever the sharding); `fail_after` raises after that
    many calls (a killed run)."""

    def __init__(self, unsure_of: str | None = "green", fail_after: int | None = None) -> None:
        self.unsure_of = unsure_of
        self.fail_after = fail_after
        self.calls = 0
        self.rows = 0

    def _tick(self, rows: int) -> None:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("simulated kill")
        self.calls += 1
        self.rows += rows

    @staticmethod
    def _look(image: torch.Tensor) -> tuple[str, list[int]]:
        """image: (3, H, W) CLIP-normalised. Returns colour and box (0-100) of the non-white pixels."""
        mean = torch.tensor([0.48145466, 0.4578275, 0.40821073])[:, None, None]
        std = torch.tensor([0.26862954, 0.26130258, 0.27577711])[:, None, None]
        pixels = image.float() * std + mean  # (3, H, W) in [0, 1]
        mask = pixels.min(dim=0).values < 0.6  # (H, W)
        ys, xs = torch.nonzero(mask, as_tuple=True)
        height, width = mask.shape
        color_means = pixels[:, mask].mean(dim=1)
        color = ["red", "green", "blue"][int(color_means.argmax())]
        box = [int(xs.min()) * 100 // width, int(ys.min()) * 100 // height,
               (int(xs.max()) + 1) * 100 // width, (int(ys.max()) + 1) * 100 // height]  # fmt: skip
        return color, box

    def generate_answers(self, images: torch.Tensor, texts: list[str], **kwargs: Any) -> GenerationResult:
        self._tick(len(texts))
        answers = []
        for image, text in zip(images, texts):
            color, box = self._look(image)
            if "[refer]" in text:
                answer = "".join(["{", *(f"<{v}>" for v in box), "}"])
            elif "true or false" in text:
                answer = "true" if color in text else "false"
            elif "hateful" in text:
                answer = "yes" if color == "red" else "no"
            elif "[caption]" in text:
                answer = f"a {color} square"
            else:
                answer = color
            if color == self.unsure_of:
                answer = "I cannot tell"
            answers.append(answer)
        return GenerationResult(texts=answers, token_ids=[torch.zeros(0, dtype=torch.long) for _ in answers])

    def multi_select(self, images, texts, answers, num_cand=None) -> list[list[int]]:
        self._tick(len(texts))
        ranks = []
        for row, image in enumerate(images):
            color, _ = self._look(image)
            slots = [candidates[row] for candidates in answers]
            first = slots.index(color) if color in slots else 0
            ranks.append([first, *[k for k in range(len(slots)) if k != first]])
        return ranks
