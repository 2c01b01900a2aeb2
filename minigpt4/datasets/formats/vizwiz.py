"""VizWiz-VQA for finetuning (ours: the official mix evaluates VizWiz zero-shot): a split's annotation JSON,
a list of {image, question, answers: [{answer, answer_confidence}], answerable, answer_type}.

The instruction is the evaluation prompt verbatim, as for VSR and Hateful Memes (`judgement.py`), so the model
learns to say 'unanswerable' where the scorer expects it. The target is the annotators' most frequent answer
(the first one met on a tie), the usual single target of VizWiz training.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from minigpt4.common.errors import DataError
from minigpt4.datasets.benchmark_prompts import VIZWIZ_PROMPT, vizwiz_answer_texts
from minigpt4.datasets.formats.image_ann import ImageAnnDataset
from minigpt4.datasets.instructions import wrap_image


def most_frequent_answer(answers: list[Any]) -> str:
    return Counter(vizwiz_answer_texts(answers)).most_common(1)[0][0]


class VizWizDataset(ImageAnnDataset):
    LAYOUT = (
        "ann_path: VizWiz JSON list (train.json), [{image: 'VizWiz_train_<8 digits>.jpg', question, "
        "answers: [{answer, answer_confidence}, ...]}]; images: <image_path>/<image>"
    )
    REQUIRED = ("image", "question", "answers")

    def read_records(self, ann_path: Path, name: str) -> list[Any]:
        records = super().read_records(ann_path, name)
        for index, record in enumerate(records):
            answers = record["answers"]
            if not isinstance(answers, list) or not answers or not all(_is_answer(a) for a in answers):
                raise DataError(
                    f"{name}: record {index} of {ann_path} has answers {answers!r}, expected a non-empty list "
                    f"of {{answer: str}} objects. Expected layout: {self.LAYOUT}"
                )
        return records

    def sample(self, record: dict[str, Any]) -> dict[str, Any]:
        image, _ = self.load_image(record["image"])
        return {
            "image": image,
            "instruction_input": wrap_image(VIZWIZ_PROMPT.format(record["question"])),
            "answer": most_frequent_answer(record["answers"]),
        }


def _is_answer(item: Any) -> bool:
    return isinstance(item, str) or (isinstance(item, dict) and isinstance(item.get("answer"), str))
