"""Image-text judgements for finetuning: VSR (is the spatial statement true?) and Hateful Memes (is the meme
hateful?). Not in the official training mix, which evaluates both zero-shot; ours, so a model can be tuned on
their training splits.

The instruction is the evaluation prompt verbatim (`datasets/benchmark_prompts.py`, shared with the evaluation),
not passed through the text processor: the model learns exactly the question it is scored on, and the answer is the word the official
scorer compares ('true'/'false', 'yes'/'no').
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from minigpt4.common.errors import DataError
from minigpt4.datasets.benchmark_prompts import HM_PROMPT, VSR_PROMPT
from minigpt4.datasets.files import check_records, load_jsonl
from minigpt4.datasets.formats.image_ann import ImageAnnDataset
from minigpt4.datasets.instructions import wrap_image


class JudgementDataset(ImageAnnDataset):
    """JSONL records with a 0/1 `label`; subclasses name the image and statement keys and the two answers."""

    IMAGE_KEY = ""
    TEXT_KEY = ""
    PROMPT = ""
    ANSWERS = ("", "")  # (label 0, label 1)

    def read_records(self, ann_path: Path, name: str) -> list[Any]:
        records = load_jsonl(ann_path, name, self.LAYOUT)
        check_records(records, (self.IMAGE_KEY, self.TEXT_KEY, "label"), ann_path, name, self.LAYOUT)
        for index, record in enumerate(records):
            if record["label"] not in (0, 1):
                raise DataError(
                    f"{name}: record {index} of {ann_path} has label {record['label']!r}, expected 0 or 1. "
                    f"Expected layout: {self.LAYOUT}"
                )
        return records

    def sample(self, record: dict[str, Any]) -> dict[str, Any]:
        image, _ = self.load_image(record[self.IMAGE_KEY])
        return {
            "image": image,
            "instruction_input": wrap_image(self.PROMPT.format(record[self.TEXT_KEY])),
            "answer": self.ANSWERS[record["label"]],
        }


class VSRDataset(JudgementDataset):
    LAYOUT = (
        "ann_path: VSR JSONL, one {image: '<file>.jpg', caption, label: 1 true | 0 false} per line; "
        "images: <image_path>/<image>"
    )
    IMAGE_KEY, TEXT_KEY, PROMPT = "image", "caption", VSR_PROMPT
    ANSWERS = ("false", "true")


class HatefulMemesDataset(JudgementDataset):
    LAYOUT = (
        "ann_path: Hateful Memes JSONL (train.jsonl), one {id, img: 'img/<id>.png', text, label: 1 hateful | 0} "
        "per line; images: <image_path>/<img>"
    )
    IMAGE_KEY, TEXT_KEY, PROMPT = "img", "text", HM_PROMPT
    ANSWERS = ("no", "yes")
