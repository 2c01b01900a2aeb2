"""Closed-answer benchmarks: VSR (true/false), Hateful Memes (yes/no; accuracy as the paper, plus AUROC) and
IconVQA (multiple choice ranked by candidate loss)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from minigpt4.common.errors import DataError
from minigpt4.evaluation.benchmarks.benchmark import Benchmark, EvalSample, ScoreResult, percent
from minigpt4.evaluation.caption_metrics import binary_auroc
from minigpt4.evaluation.postprocess import (
    HM_PROMPT,
    VQA_PROMPT,
    VSR_PROMPT,
    hm_correct,
    hm_prediction,
    iconvqa_correct,
    strip_unk,
    vsr_correct,
    vsr_label,
    vsr_parsable,
)

VSR_HUB_NAME = "cambridgeltl/vsr_zeroshot"


class VSR(Benchmark):
    """Zero-shot VSR from local files (not the hub): `eval_file_path` is the split's JSONL/JSON file
    (`image`, `caption`, `label`) or a folder holding `test.jsonl`; images `img_path/<image>`."""

    name = "vsr"
    splits = ("test",)

    def _path(self) -> Path:
        path = self.eval_file_path
        if path.is_dir():
            path = path / "test.jsonl"
        if not path.is_file() and str(self.block.get("eval_file_path")) == VSR_HUB_NAME:
            raise DataError(
                f"vsr: eval_file_path is the hub name {VSR_HUB_NAME!r}; evaluation reads local files only. "
                "Download the dataset's test.jsonl and set evaluation_datasets.vsr.eval_file_path to it"
            )
        return path

    def load(self, split: str) -> list[EvalSample]:
        path = self._path()
        rows = (
            self._load_jsonl(path, "VSR split")
            if path.suffix == ".jsonl"
            else self._load_json(path, "VSR split")
        )
        return [
            EvalSample(
                index=index,
                key=str(index),
                image_path=self.img_path / self._field(row, "image", path, index),
                instruction=VSR_PROMPT.format(self._field(row, "caption", path, index)),
                target=vsr_label(self._field(row, "label", path, index)),
            )
            for index, row in enumerate(rows)
        ]

    def record(self, sample: EvalSample, output: Any) -> dict[str, Any]:
        return {
            "index": sample.index,
            "key": sample.key,
            "raw": output,
            "pred": strip_unk(output),
            "gt": sample.target,
            "parsable": vsr_parsable(output),
            "correct": vsr_correct(output, sample.target),
        }

    def score(self, samples: Sequence[EvalSample], records: Sequence[Mapping[str, Any]]) -> ScoreResult:
        correct = sum(bool(r["correct"]) for r in records)
        extra = {"chance_baseline": "a uniform random true/false guess"}
        return ScoreResult(percent(correct, len(records)), len(records), _unparsable(records), 50.0, extra)


def _unparsable(records: Sequence[Mapping[str, Any]]) -> int:
    return sum(not r["parsable"] for r in records)


class HatefulMemes(Benchmark):
    """`eval_file_path`: `dev.jsonl` (`img`, `text`, `label`); images `img_path/<img>`; no task token (official)."""

    name = "hm"
    splits = ("val",)

    def load(self, split: str) -> list[EvalSample]:
        path = self.eval_file_path
        rows = self._load_jsonl(path, "Hateful Memes annotations")
        return [
            EvalSample(
                index=index,
                key=str(row.get("id", index)),
                image_path=self.img_path / str(self._field(row, "img", path, index)),
                instruction=HM_PROMPT.format(self._field(row, "text", path, index)),
                target=int(self._field(row, "label", path, index)),
            )
            for index, row in enumerate(rows)
        ]

    def record(self, sample: EvalSample, output: Any) -> dict[str, Any]:
        prediction = hm_prediction(output)
        return {
            "index": sample.index,
            "key": sample.key,
            "raw": output,
            "pred": prediction,
            "gt": sample.target,
            "parsable": isinstance(prediction, int),
            "correct": hm_correct(prediction, sample.target),
        }

    def score(self, samples: Sequence[EvalSample], records: Sequence[Mapping[str, Any]]) -> ScoreResult:
        correct = sum(bool(r["correct"]) for r in records)
        # AUROC of the hard decisions: yes = 1, no = 0, anything else 0.5 (generation gives no probabilities)
        scores = [float(r["pred"]) if isinstance(r["pred"], int) else 0.5 for r in records]
        extra = {
            "auroc": binary_auroc([r["gt"] for r in records], scores),
            "auroc_note": "from the yes/no decisions (unparsable = 0.5); the paper reports accuracy",
            "chance_baseline": "a uniform random yes/no guess",
        }
        return ScoreResult(percent(correct, len(records)), len(records), _unparsable(records), 50.0, extra)


class IconVQA(Benchmark):
    """`eval_file_path`: `choose_text_val.json` (`image_id`, `question`, `choices`, `answer` index); images
    `img_path/<image_id>/image.png`; candidates ranked by `model.multi_select` (official)."""

    name = "iconvqa"
    splits = ("val",)
    mode = "multi_select"

    def load(self, split: str) -> list[EvalSample]:
        path = self.eval_file_path
        data = self._load_json(path, "IconVQA questions")
        samples = []
        for index, item in enumerate(data):
            choices = self._field(item, "choices", path, index)
            if not choices:
                raise DataError(f"iconvqa: record {index} of {path} has no choices")
            samples.append(
                EvalSample(
                    index=index,
                    key=str(index),
                    image_path=self.img_path / str(self._field(item, "image_id", path, index)) / "image.png",
                    instruction=VQA_PROMPT.format(self._field(item, "question", path, index)),
                    target=int(self._field(item, "answer", path, index)),
                    meta={"choices": list(choices)},
                )
            )
        return samples

    def record(self, sample: EvalSample, output: Any) -> dict[str, Any]:
        ranks = list(output)
        return {
            "index": sample.index,
            "key": sample.key,
            "ranks": ranks,
            "pred": ranks[0],
            "gt": sample.target,
            "parsable": True,
            "correct": iconvqa_correct(ranks, sample.target),
        }

    def score(self, samples: Sequence[EvalSample], records: Sequence[Mapping[str, Any]]) -> ScoreResult:
        correct = sum(bool(r["correct"]) for r in records)
        # official: count / len(file) * 100.0
        num_choices = ["_".join(s.meta["choices"]).count("_") + 1 for s in samples]
        chance = sum(100.0 / n for n in num_choices) / len(num_choices) if num_choices else 0.0
        extra = {"chance_baseline": "a uniform random choice"}
        return ScoreResult(percent(correct, len(records)), len(records), 0, chance, extra)
