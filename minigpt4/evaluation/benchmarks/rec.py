"""RefCOCO, RefCOCO+, RefCOCOg: referring expression comprehension, Acc@0.5."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from minigpt4.evaluation.benchmarks.benchmark import Benchmark, EvalSample, ScoreResult, percent
from minigpt4.evaluation.ref_scoring import (
    DEFAULT_RES,
    accuracy_by_img_id,
    counts_as_correct,
    refer_question,
    score_ref_answer,
)

WHOLE_IMAGE_ANSWER = "{<0><0><100><100>}"
REC_FIELDS = ("img_id", "sents", "bbox", "height", "width")


class RefCOCO(Benchmark):
    """Files `eval_file_path/<ds>/<ds>_<split>.json` (official layout) or `eval_file_path/<ds>_<split>.json`;
    images `img_path/<img_id[:27]>.jpg`. Every expression is scored against its own box; the option
    `official_img_id_keying: true` scores as the official script (boxes keyed by img_id)."""

    name = "refcoco"
    splits = ("val", "testA", "testB")

    @property
    def res(self) -> float:
        return float(self.block.get("res", DEFAULT_RES))

    def load(self, split: str) -> list[EvalSample]:
        nested = self.eval_file_path / self.dataset / f"{self.dataset}_{split}.json"
        flat = self.eval_file_path / f"{self.dataset}_{split}.json"
        path = nested if nested.is_file() or not flat.is_file() else flat
        records = self._load_json(path, f"{self.dataset} {split} expressions ({nested.name})")
        samples = []
        for index, record in enumerate(records):
            for key in REC_FIELDS:
                self._field(record, key, path, index)
            samples.append(
                EvalSample(
                    index=index,
                    key=str(index),
                    image_path=self.img_path / f"{record['img_id'][:27]}.jpg",
                    instruction=refer_question(record["sents"]),
                    target=record,
                )
            )
        return samples

    def record(self, sample: EvalSample, output: Any) -> dict[str, Any]:
        score = score_ref_answer(output, sample.target, self.res)
        return {
            "index": sample.index,
            "key": sample.key,
            "img_id": sample.target["img_id"],
            "sents": sample.target["sents"],
            "answer": output,
            "cleaned": score.cleaned_answer,
            "pred_box": score.pred_box if score.error is None else None,
            "gt_box": score.gt_box,
            "iou": score.iou,
            "parsable": score.parsable,
            "correct": counts_as_correct(score),
        }

    def score(self, samples: Sequence[EvalSample], records: Sequence[Mapping[str, Any]]) -> ScoreResult:
        targets = [sample.target for sample in samples]
        correct = sum(bool(record["correct"]) for record in records)
        unparsable = sum(not record["parsable"] for record in records)
        extra: dict[str, Any] = {"iou_threshold": 0.5, "res": self.res}
        accepted: dict[str, list[str]] = {}
        for record in records:
            if record["parsable"]:
                accepted.setdefault(record["img_id"], []).append(record["cleaned"])
        official = accuracy_by_img_id(targets, accepted, self.res) if targets else 0.0
        extra["official_img_id_keyed_score"] = official
        score = (
            official if self.block.get("official_img_id_keying", False) else percent(correct, len(records))
        )
        chance = percent(
            sum(
                counts_as_correct(score_ref_answer(WHOLE_IMAGE_ANSWER, target, self.res))
                for target in targets
            ),
            len(targets),
        )
        extra["chance_baseline"] = f"every answer {WHOLE_IMAGE_ANSWER} (the whole image)"
        return ScoreResult(score, len(records), unparsable, chance, extra)


class RefCOCOPlus(RefCOCO):
    name = "refcoco+"


class RefCOCOg(RefCOCO):
    name = "refcocog"
    splits = ("val", "test")
