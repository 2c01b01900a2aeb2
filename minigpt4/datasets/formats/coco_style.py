"""LAVIS-style annotation lists (`build_info.annotations.train.storage` + `build_info.images.storage`):
coco_caption (Karpathy), coco_vqa (VQAv2, LAVIS json), ok_vqa, aok_vqa and gqa.

The builder passes `vis_root = images.storage/train` (the official builder appends the split name).
Official quirks kept: coco_caption keeps only records whose `image` contains "train"; COCO-VQA, OK-VQA and
A-OKVQA drop records whose image file is missing. The official code drops them silently; we count and log
them (`dropped_missing_images`).
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

from minigpt4.datasets.files import check_records, load_json_list
from minigpt4.datasets.formats.annotation_dataset import RecordDataset
from minigpt4.datasets.instructions import CAPTION_POOL, CAPTION_TEMPLATE, VQA_POOL, wrap_image

logger = logging.getLogger(__name__)


def load_annotation_lists(
    paths: list[str | Path], what: str, layout: str, required: tuple[str, ...]
) -> list[Any]:
    """Concatenate the JSON lists (or the `annotations` of JSON objects) of `paths`, checking keys."""
    records: list[Any] = []
    for path in paths:
        part = load_json_list(path, what, layout, list_key="annotations")
        check_records(part, required, path, what, layout)
        records.extend(part)
    return records


def weighted_answer(answers: list[str]) -> str:
    """One answer drawn with probability proportional to its frequency (official VQA answer sampling)."""
    weights: dict[str, float] = {}
    for answer in answers:
        weights[answer] = weights.get(answer, 0.0) + 1 / len(answers)
    return random.choices(list(weights), weights=list(weights.values()), k=1)[0]


class LavisAnnotationDataset(RecordDataset):
    REQUIRED: tuple[str, ...] = ()
    DROP_MISSING_IMAGES = False

    def __init__(self, vis_processor, text_processor, vis_root, ann_paths, name: str = "") -> None:
        name = name or type(self).__name__
        records = load_annotation_lists(list(ann_paths), name, self.LAYOUT, self.REQUIRED)
        super().__init__(vis_processor, text_processor, vis_root, self.filter_records(records), name)
        self.dropped_missing_images = 0
        if self.DROP_MISSING_IMAGES:
            self._drop_missing_images()

    def filter_records(self, records: list[Any]) -> list[Any]:
        return records

    def image_file(self, record: dict[str, Any]) -> str:
        return str(record["image"]).split("/")[-1]

    def _drop_missing_images(self) -> None:
        kept = [record for record in self.records if (self.vis_root / self.image_file(record)).is_file()]
        self.dropped_missing_images = len(self.records) - len(kept)
        if self.dropped_missing_images:
            example = next(r for r in self.records if not (self.vis_root / self.image_file(r)).is_file())
            logger.warning(
                "%s: dropped %d of %d annotations whose image is missing under %s (official behaviour, which "
                "drops them silently), e.g. %s",
                self.name,
                self.dropped_missing_images,
                len(self.records),
                self.vis_root,
                self.vis_root / self.image_file(example),
            )
        self.records = kept


class CocoCaptionDataset(LavisAnnotationDataset):
    LAYOUT = (
        "annotations: Karpathy JSON list of {image: 'train2014/COCO_train2014_<12 digits>.jpg', caption, "
        "image_id}; images: <images.storage>/train/<basename of image>"
    )
    REQUIRED = ("image", "caption")

    def filter_records(self, records: list[Any]) -> list[Any]:
        # official: only Karpathy records of train images are used
        kept = [record for record in records if "train" in str(record["image"])]
        logger.info(
            "%s: kept %d of %d caption records (official: only images with 'train' in the path)",
            type(self).__name__,
            len(kept),
            len(records),
        )
        return kept

    def sample(self, record: dict[str, Any]) -> dict[str, Any]:
        image, _ = self.load_image(self.image_file(record))
        caption = self.text_processor(record["caption"])
        instruction = wrap_image(CAPTION_TEMPLATE.format(random.choice(CAPTION_POOL)))
        return {"image": image, "answer": caption, "instruction_input": instruction}


class CocoVQADataset(LavisAnnotationDataset):
    """coco_vqa and ok_vqa (LAVIS json: question_id, question, answer list, image)."""

    LAYOUT = (
        "annotations: JSON list of {question_id, question, answer: [str, ...], image: "
        "'<folder>/<file>.jpg'}; images: <images.storage>/train/<basename of image>"
    )
    REQUIRED = ("question_id", "question", "answer", "image")
    DROP_MISSING_IMAGES = True

    def sample(self, record: dict[str, Any]) -> dict[str, Any]:
        image, _ = self.load_image(self.image_file(record))
        question = self.text_processor(record["question"])
        answer = weighted_answer(record["answer"])
        instruction = wrap_image(random.choice(VQA_POOL).format(question))
        return {
            "image": image,
            "question_id": record["question_id"],
            "instruction_input": instruction,
            "answer": self.text_processor(answer),
        }


class AOKVQADataset(LavisAnnotationDataset):
    LAYOUT = (
        "annotations: JSON list of {question_id, question, direct_answers: [str, ...], choices, image: "
        "'train2017/<file>.jpg'}; images: <images.storage>/train/<basename of image>"
    )
    REQUIRED = ("question", "direct_answers", "image")
    DROP_MISSING_IMAGES = True

    def sample(self, record: dict[str, Any]) -> dict[str, Any]:
        image, _ = self.load_image(self.image_file(record))
        # official: the question goes through the text processor twice (get_data, then __getitem__)
        question = self.text_processor(self.text_processor(record["question"]))
        answer = weighted_answer(record["direct_answers"])
        instruction = wrap_image(random.choice(VQA_POOL).format(question))
        return {"image": image, "instruction_input": instruction, "answer": self.text_processor(answer)}


class GQADataset(LavisAnnotationDataset):
    LAYOUT = (
        "annotations: JSON list of {image: '<file>.jpg', question, answer}; images: "
        "<images.storage>/train/<image>"
    )
    REQUIRED = ("image", "question", "answer")

    def image_file(self, record: dict[str, Any]) -> str:
        return str(record["image"])  # official: joined as-is, not the basename

    def sample(self, record: dict[str, Any]) -> dict[str, Any]:
        image, _ = self.load_image(self.image_file(record))
        question = self.text_processor(record["question"])
        instruction = wrap_image(random.choice(VQA_POOL).format(question))
        return {
            "image": image,
            "instruction_input": instruction,
            "answer": self.text_processor(record["answer"]),
        }
