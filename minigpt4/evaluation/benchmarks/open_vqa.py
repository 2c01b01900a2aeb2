"""Open-ended VQA benchmarks: OKVQA and VQAv2 (official VQA accuracy), GQA (exact match), VizWiz (min(n/3, 1))."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from minigpt4.common.errors import DataError
from minigpt4.evaluation.benchmarks.benchmark import Benchmark, EvalSample, ScoreResult, percent
from minigpt4.evaluation.postprocess import (
    VIZWIZ_GENERATE_KWARGS,
    VIZWIZ_PROMPT,
    VQA_PROMPT,
    gqa_correct,
    gqa_saved_answer,
    okvqa_saved_answer,
    strip_unk,
    vizwiz_accuracy,
    vizwiz_gt_answers,
)
from minigpt4.evaluation.vqa_scoring import evaluate_vqa


def _free_form_parsable(raw: str) -> bool:
    return strip_unk(raw) != ""


class OKVQA(Benchmark):
    """`eval_file_path/okvqa_test_split.json` (questions), scored with the official VQA evaluator against
    `mscoco_val2014_annotations_clean.json` (+ the questions file); images `img_path/{image_id:012d}.jpg`."""

    name = "okvqa"
    splits = ("test",)
    split_file = "okvqa_test_split.json"
    annotation_file = "mscoco_val2014_annotations_clean.json"
    questions_file = "OpenEnded_mscoco_val2014_questions_clean.json"
    image_pattern = "{image_id:0>12}.jpg"

    def _questions(self) -> tuple[list[Mapping[str, Any]], Path]:
        path = self.eval_file_path / self.block.get("split_file", self.split_file)
        return self._load_json(path, "question split"), path

    def _annotations(self) -> list[Mapping[str, Any]]:
        path = self.eval_file_path / self.block.get("annotation_file", self.annotation_file)
        data = self._load_json(path, "VQA annotation file")
        self._file(
            self.eval_file_path / self.block.get("questions_file", self.questions_file), "VQA questions file"
        )
        if not isinstance(data, Mapping) or "annotations" not in data:
            raise DataError(
                f"{self.dataset}: {path} must be a VQA annotation file with an 'annotations' list"
            )
        return data["annotations"]

    def load(self, split: str) -> list[EvalSample]:
        questions, path = self._questions()
        annotations = {ann["question_id"]: ann for ann in self._annotations()}
        question_ids = [self._field(q, "question_id", path, i) for i, q in enumerate(questions)]
        if set(question_ids) != set(annotations):
            # the official loadRes asserts this after all the generation; we check before any model work
            raise DataError(
                f"{self.dataset}: the {len(set(question_ids))} questions of {path.name} and the {len(annotations)} "
                "annotated questions differ; the official VQA evaluator needs the same question ids"
            )
        pattern = self.block.get("image_pattern", self.image_pattern)
        samples = []
        for index, question in enumerate(questions):
            image_id = self._field(question, "image_id", path, index)
            samples.append(
                EvalSample(
                    index=index,
                    key=str(question["question_id"]),
                    image_path=self.img_path / pattern.format(image_id=image_id),
                    instruction=VQA_PROMPT.format(self._field(question, "question", path, index)),
                    target=annotations[question["question_id"]],
                )
            )
        return samples

    def record(self, sample: EvalSample, output: Any) -> dict[str, Any]:
        return {
            "index": sample.index,
            "key": sample.key,
            "question_id": sample.target["question_id"],
            "raw": output,
            "answer": okvqa_saved_answer(output),
            "parsable": _free_form_parsable(output),
        }

    def score(self, samples: Sequence[EvalSample], records: Sequence[Mapping[str, Any]]) -> ScoreResult:
        annotations = [sample.target for sample in samples]
        result = evaluate_vqa(annotations, {r["question_id"]: r["answer"] for r in records})
        majority = _majority_answer(annotations)
        chance = evaluate_vqa(annotations, {ann["question_id"]: majority for ann in annotations}).overall
        extra = {
            "per_answer_type": result.per_answer_type,
            "per_question_type": result.per_question_type,
            "chance_baseline": f"every answer {majority!r} (the most frequent ground-truth answer)",
        }
        unparsable = sum(not r["parsable"] for r in records)
        return ScoreResult(result.overall, len(records), unparsable, chance, extra)


def _majority_answer(annotations: Sequence[Mapping[str, Any]]) -> str:
    counts = Counter(item["answer"] for ann in annotations for item in ann["answers"])
    return counts.most_common(1)[0][0] if counts else ""


class VQAv2(OKVQA):
    """VQAv2-style scoring (the official repo has none): official VQA files in `eval_file_path`
    (`v2_OpenEnded_mscoco_val2014_questions.json`, `v2_mscoco_val2014_annotations.json`); the questions file
    lists the samples; images `img_path/COCO_val2014_{image_id:012d}.jpg`; OKVQA's prompt and scoring."""

    name = "vqav2"
    splits = ("val",)
    annotation_file = "v2_mscoco_val2014_annotations.json"
    questions_file = "v2_OpenEnded_mscoco_val2014_questions.json"
    image_pattern = "COCO_val2014_{image_id:0>12}.jpg"

    def _questions(self) -> tuple[list[Mapping[str, Any]], Path]:
        path = self.eval_file_path / self.block.get("questions_file", self.questions_file)
        data = self._load_json(path, "VQA questions file")
        if not isinstance(data, Mapping) or "questions" not in data:
            raise DataError(f"{self.dataset}: {path} must be a VQA questions file with a 'questions' list")
        return data["questions"], path


class GQA(Benchmark):
    """`eval_file_path`: a list of {image, question, answer} (LAVIS style, as the official script reads), or the
    GQA release's {question_id: {imageId, question, answer}}; images `img_path/<image>`."""

    name = "gqa"
    splits = ("val",)  # the official script prints "gqa val" whatever the file

    def load(self, split: str) -> list[EvalSample]:
        path = self.eval_file_path
        data = self._load_json(path, "GQA questions")
        if isinstance(data, Mapping):  # GQA release format
            data = [
                {
                    "image": f"{item['imageId']}.jpg",
                    "question": item["question"],
                    "answer": item["answer"],
                    "id": qid,
                }
                for qid, item in data.items()
            ]
        return [
            EvalSample(
                index=index,
                key=str(index),
                image_path=self.img_path / self._field(item, "image", path, index),
                instruction=VQA_PROMPT.format(self._field(item, "question", path, index)),
                target=self._field(item, "answer", path, index),
            )
            for index, item in enumerate(data)
        ]

    def record(self, sample: EvalSample, output: Any) -> dict[str, Any]:
        return {
            "index": sample.index,
            "key": sample.key,
            "raw": output,
            "pred": gqa_saved_answer(output),
            "gt": sample.target,
            "parsable": _free_form_parsable(output),
            "correct": gqa_correct(output, sample.target),
        }

    def score(self, samples: Sequence[EvalSample], records: Sequence[Mapping[str, Any]]) -> ScoreResult:
        correct = sum(bool(r["correct"]) for r in records)
        labels = Counter(sample.target for sample in samples)
        chance = percent(labels.most_common(1)[0][1], len(samples)) if samples else 0.0
        extra = {"chance_baseline": "every answer the most frequent label"}
        return ScoreResult(percent(correct, len(records)), len(records), _unparsable(records), chance, extra)


def _unparsable(records: Sequence[Mapping[str, Any]]) -> int:
    return sum(not r["parsable"] for r in records)


class VizWiz(Benchmark):
    """`eval_file_path`: VizWiz `val.json` (image, question, answers[{answer}]); images `img_path/<image>`."""

    name = "vizwiz"
    splits = ("val",)
    generate_kwargs: ClassVar[dict[str, Any]] = VIZWIZ_GENERATE_KWARGS

    def load(self, split: str) -> list[EvalSample]:
        path = self.eval_file_path
        data = self._load_json(path, "VizWiz annotations")
        return [
            EvalSample(
                index=index,
                key=str(index),
                image_path=self.img_path / self._field(item, "image", path, index),
                instruction=VIZWIZ_PROMPT.format(self._field(item, "question", path, index)),
                target=vizwiz_gt_answers(self._field(item, "answers", path, index)),
            )
            for index, item in enumerate(data)
        ]

    def record(self, sample: EvalSample, output: Any) -> dict[str, Any]:
        return {
            "index": sample.index,
            "key": sample.key,
            "raw": output,
            "answer": strip_unk(output),
            "accuracy": vizwiz_accuracy(output, sample.target),
            "parsable": _free_form_parsable(output),
        }

    def score(self, samples: Sequence[EvalSample], records: Sequence[Mapping[str, Any]]) -> ScoreResult:
        # official: np.average(total_acc) * 100.0 (numpy's pairwise summation, kept for identical floats)
        score = float(np.average([r["accuracy"] for r in records])) * 100.0 if records else 0.0
        majority = Counter(a for sample in samples for a in sample.target).most_common(1)
        chance = (
            float(np.average([vizwiz_accuracy(majority[0][0], s.target) for s in samples])) * 100.0
            if majority
            else 0.0
        )
        extra = {
            "chance_baseline": f"every answer {majority[0][0] if majority else ''!r} (most frequent answer)"
        }
        return ScoreResult(score, len(records), _unparsable(records), chance, extra)
