"""`build_info.image_path` + `build_info.ann_path` families: TextCaps, OCR-VQA, the three Flickr30k grounded
sets, the three LLaVA instruct sets and the multi-task conversation set.

Each class reads its annotation file once at build time, checks every record has the keys it needs (so a
malformed record fails at build, naming its index), and produces the official sample dict per item.
The official Flickr detection datasets print every sample; we do not.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any

from minigpt4.common.errors import DataError
from minigpt4.datasets.files import check_records, load_json, load_json_list
from minigpt4.datasets.formats.annotation_dataset import RecordDataset
from minigpt4.datasets.instructions import (
    CAPTION_POOL,
    CAPTION_TEMPLATE,
    CONNECT_SYM,
    DETECTION_POOL,
    GROUNDING_POOL,
    VQA_POOL,
    wrap_image,
)

logger = logging.getLogger(__name__)


class ImageAnnDataset(RecordDataset):
    """Reads `ann_path` (a JSON list unless `read_records` says otherwise); images under `vis_root`."""

    REQUIRED: tuple[str, ...] = ()

    def __init__(self, vis_processor, text_processor, vis_root, ann_path, name: str = "") -> None:
        name = name or type(self).__name__
        records = self.read_records(Path(ann_path), name)
        super().__init__(vis_processor, text_processor, vis_root, records, name)

    def read_records(self, ann_path: Path, name: str) -> list[Any]:
        records = load_json_list(ann_path, name, self.LAYOUT)
        check_records(records, self.REQUIRED, ann_path, name, self.LAYOUT)
        return records


class TextCapsDataset(ImageAnnDataset):
    LAYOUT = (
        "ann_path: TextCaps JSON {data: [{image_id, caption_str, ...}]}; images: <image_path>/<image_id>.jpg"
    )
    REQUIRED = ("image_id", "caption_str")

    def read_records(self, ann_path: Path, name: str) -> list[Any]:
        records = load_json_list(ann_path, name, self.LAYOUT, list_key="data")
        check_records(records, self.REQUIRED, ann_path, name, self.LAYOUT)
        return records

    def sample(self, record: dict[str, Any]) -> dict[str, Any]:
        image, _ = self.load_image(f"{record['image_id']}.jpg")
        caption = self.text_processor(record["caption_str"])
        instruction = wrap_image(CAPTION_TEMPLATE.format(random.choice(CAPTION_POOL)))
        return {
            "image": image,
            "instruction_input": instruction,
            "answer": caption,
            "data_type": "bbox",  # official keys, kept for batch compatibility
            "question_split": True,
        }


class OCRVQADataset(ImageAnnDataset):
    LAYOUT = (
        "ann_path: OCR-VQA dataset.json {<image id>: {imageURL, questions: [...], answers: [...], title, genre, "
        "split: 1 train | 2 val | 3 test}}; images: <image_path>/<image id><extension of imageURL>"
    )
    REQUIRED = ("imageURL", "questions", "answers", "split")

    def read_records(self, ann_path: Path, name: str) -> list[Any]:
        data = load_json(ann_path, name, self.LAYOUT)
        if not isinstance(data, dict):
            raise DataError(
                f"{name}: {ann_path} holds a JSON {type(data).__name__}, expected an object. "
                f"Expected layout: {self.LAYOUT}"
            )
        entries = list(data.values())
        check_records(entries, self.REQUIRED, ann_path, name, self.LAYOUT)
        records = []
        for image_id, entry in data.items():
            if entry["split"] != 1:  # official: 1 is training
                continue
            if len(entry["questions"]) != len(entry["answers"]):
                raise DataError(
                    f"{name}: entry {image_id!r} of {ann_path} has {len(entry['questions'])} questions "
                    f"but {len(entry['answers'])} answers"
                )
            image_file = image_id + os.path.splitext(entry["imageURL"])[1]
            for question, answer in zip(entry["questions"], entry["answers"]):
                records.append(
                    {
                        "question": question,
                        "answer": answer,
                        "image_path": image_file,
                        "image_id": image_id,
                        "title": entry.get("title"),
                        "genre": entry.get("genre"),
                    }
                )
        logger.info(
            "%s: %d questions from %d of %d images (official: split 1 = training only)",
            name,
            len(records),
            len({r["image_id"] for r in records}),
            len(data),
        )
        return records

    def sample(self, record: dict[str, Any]) -> dict[str, Any]:
        image, _ = self.load_image(record["image_path"])
        question = self.text_processor(record["question"])
        answer = self.text_processor(record["answer"])
        instruction = wrap_image(random.choice(VQA_POOL).format(question))
        return {
            "image": image,
            "instruction_input": instruction,
            "answer": answer,
            "image_id": record["image_id"],
        }


class FlickrDataset(ImageAnnDataset):
    LAYOUT_IMAGES = "images: <image_path>/<image_id>.jpg"

    def image_sample(self, record: dict[str, Any], instruction: str, answer: str) -> dict[str, Any]:
        image, _ = self.load_image(f"{record['image_id']}.jpg")
        return {
            "image": image,
            "instruction_input": wrap_image(instruction),
            "answer": answer,
            "image_id": record["image_id"],
        }


class GroundedCaptionDataset(FlickrDataset):
    LAYOUT = "ann_path: JSON list of {image_id, grounded_caption}; " + FlickrDataset.LAYOUT_IMAGES
    REQUIRED = ("image_id", "grounded_caption")

    def sample(self, record: dict[str, Any]) -> dict[str, Any]:
        return self.image_sample(record, random.choice(GROUNDING_POOL), record["grounded_caption"])


class CaptionToPhraseDataset(FlickrDataset):
    LAYOUT = "ann_path: JSON list of {image_id, caption, output}; " + FlickrDataset.LAYOUT_IMAGES
    REQUIRED = ("image_id", "caption", "output")

    def sample(self, record: dict[str, Any]) -> dict[str, Any]:
        return self.image_sample(
            record, random.choice(DETECTION_POOL).format(record["caption"]), record["output"]
        )


class PhraseToObjectDataset(FlickrDataset):
    LAYOUT = (
        "ann_path: JSON list of {image_id, phrase, bbox: '{<x1><y1><x2><y2>}'}; "
        + FlickrDataset.LAYOUT_IMAGES
    )
    REQUIRED = ("image_id", "phrase", "bbox")

    def sample(self, record: dict[str, Any]) -> dict[str, Any]:
        phrase = record["phrase"]
        answer = "<p>" + phrase + "</p> " + record["bbox"]
        return self.image_sample(record, random.choice(DETECTION_POOL).format(phrase), answer)


class ConversationRecords(ImageAnnDataset):
    """LLaVA-style records {id, conversations: [{from, value}, ...]}; image <image_path>/COCO_train2014_<id>.jpg."""

    LAYOUT = (
        "ann_path: JSON list of {id, conversations: [{from: human, value: '<image>\\n...'}, {from: gpt, value}, "
        "...]}; images: <image_path>/COCO_train2014_<id>.jpg"
    )
    REQUIRED = ("id", "conversations")
    MIN_TURNS = 2

    def read_records(self, ann_path: Path, name: str) -> list[Any]:
        records = super().read_records(ann_path, name)
        for index, record in enumerate(records):
            turns = record["conversations"]
            if (
                not isinstance(turns, list)
                or len(turns) < self.MIN_TURNS
                or not all(isinstance(turn, dict) and "value" in turn for turn in turns)
            ):
                raise DataError(
                    f"{name}: record {index} (id {record['id']!r}) of {ann_path} needs a list of at "
                    f"least {self.MIN_TURNS} turns with a 'value'. Expected layout: {self.LAYOUT}"
                )
        return records

    def first_instruction(self, record: dict[str, Any]) -> str:
        return record["conversations"][0]["value"].replace("<image>", "").replace("\n", "").strip()

    def coco_image(self, record: dict[str, Any]) -> Any:
        image, _ = self.load_image(f"COCO_train2014_{record['id']}.jpg")
        return image


class LlavaSingleTurnDataset(ConversationRecords):
    """llava_detail and llava_reason: the first human turn (text-processed) -> the first answer (raw)."""

    def sample(self, record: dict[str, Any]) -> dict[str, Any]:
        image = self.coco_image(record)
        instruction = wrap_image(self.text_processor(self.first_instruction(record)))
        return {
            "image": image,
            "instruction_input": instruction,
            "answer": record["conversations"][1]["value"],
            "image_id": record["id"],
        }


class MultiTurnConversationDataset(ConversationRecords):
    """llava_conversation and multitask_conversation: turns joined with `!@#` into conv_q / conv_a (raw text)."""

    def sample(self, record: dict[str, Any]) -> dict[str, Any]:
        image = self.coco_image(record)
        questions = [wrap_image(self.first_instruction(record))]
        answers = []
        for position, turn in enumerate(record["conversations"][1:]):
            if position % 2 == 0:
                answers.append(turn["value"])
            else:
                questions.append(turn["value"] + " ")
        return {
            "image": image,
            "conv_q": CONNECT_SYM.join(questions),
            "conv_a": CONNECT_SYM.join(answers),
            "image_id": record["id"],
            "connect_sym": CONNECT_SYM,
        }
