"""Parity family `ref_eval`: RefCOCO answer cleaning, parsing, rescaling, IoU, counting, and the official loop."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from minigpt4.conversation.templates import CONV_VISION_minigptv2, prepare_texts
from minigpt4.evaluation.ref_official import official_ref_predictions
from minigpt4.evaluation.ref_scoring import (
    accuracy_by_expression,
    accuracy_by_img_id,
    counts_as_correct,
    refer_question,
    score_ref_answer,
)
from minigpt4.tools.parity.report import FamilyReport

FLOAT_REL = 1e-9
PRINTED_LINE = re.compile(r"^(?P<dataset>\S+) (?P<split>\S+): (?P<score>\S+)$")


def _template():
    conv = CONV_VISION_minigptv2.copy()
    conv.system = ""
    return conv


def _printed_scores(printed: str) -> list[tuple[str, str, float]]:
    rows = []
    for line in printed.splitlines():
        match = PRINTED_LINE.match(line.strip())
        if match:
            rows.append((match["dataset"], match["split"], float(match["score"])))
    return rows


def _check_cases(report: FamilyReport, cases: list[dict[str, Any]]) -> None:
    for index, case in enumerate(cases):
        name = f"case {index} {case['raw_answer']!r}"
        score = score_ref_answer(case["raw_answer"], case["item"])
        report.exact(f"{name}: cleaned", case["cleaned_answer"], score.cleaned_answer)
        report.exact(f"{name}: regex_match", case["regex_match"], score.parsable)
        report.exact(f"{name}: integers", case["integers"], score.integers)
        report.close(f"{name}: pred_bbox_px", case["pred_bbox_px"], score.pred_box, FLOAT_REL)
        if "gt_bbox_xyxy" in case:
            report.close(f"{name}: gt_bbox_xyxy", case["gt_bbox_xyxy"], score.gt_box, FLOAT_REL)
        if "iou" in case:
            expected, got = case["iou"], score.iou
            same_sign = got is not None and math.copysign(1, expected) == math.copysign(1, got)
            report.record(
                same_sign and abs(expected - got) <= FLOAT_REL * max(1.0, abs(expected)),
                f"{name}: iou",
                expected,
                got,
            )
        if "score_error" in case:
            report.exact(
                f"{name}: score_error type",
                case["score_error"].split(":")[0],
                (score.error or "").split(":")[0],
            )
        else:
            report.exact(f"{name}: no score error", None, score.error)
        report.exact(f"{name}: correct", case["correct"], score.correct)
        report.exact(f"{name}: counted", case["counts_in_script_without_resample"], counts_as_correct(score))


class _ScriptedModel:
    """Stands in for `model.generate`: answers each prompt from `answers_by_try[sentence]` by retry count."""

    def __init__(self, answers_by_try: dict[str, list[str]]) -> None:
        self.answers_by_try = answers_by_try
        self.tries: dict[str, int] = {}
        self.calls: list[list[str]] = []

    def _sentence(self, prompt: str) -> str:
        found = [key for key in self.answers_by_try if key in prompt]
        return max(found, key=len)

    def __call__(self, batch, questions: list[str]) -> list[str]:
        prompts = prepare_texts(questions, _template())
        self.calls.append(prompts)
        answers = []
        for prompt in prompts:
            key = self._sentence(prompt)
            options = self.answers_by_try[key]
            attempt = self.tries.get(key, 0)
            self.tries[key] = attempt + 1
            answers.append(options[min(attempt, len(options) - 1)])
        return answers


def _check_script_run(
    report: FamilyReport, run: dict[str, Any], cases: list[dict[str, Any]], batch_size: int
) -> None:
    # the recorded items carry no sentence; the prompt text does not change what the stub answers
    records = [{"sents": f"object number {index}", **case["item"]} for index, case in enumerate(cases)]
    answers = [case["raw_answer"] for case in cases]
    printed = _printed_scores(run["printed"])
    in_order = iter(answers)  # the first round sees the records in file order
    accepted = official_ref_predictions(
        records, lambda batch, qs: [next(in_order) for _ in batch], batch_size
    )
    report.exact("script_run: saved predictions (last split)", run["saved_predictions_last_split"], accepted)
    score, correct, _ = accuracy_by_expression(records, answers)
    report.exact("script_run: count (per expression)", run["expected_count"], correct)
    report.exact("script_run: total", run["total"], len(records))
    official_score = accuracy_by_img_id(records, accepted)
    for dataset, split, value in printed:
        report.close(f"script_run: {dataset} {split} (per expression)", value, score, FLOAT_REL)
        report.close(f"script_run: {dataset} {split} (img_id keyed)", value, official_score, FLOAT_REL)
    splits = max(1, len(printed))
    expected_calls = splits * math.ceil(len(records) / batch_size)
    report.exact("script_run: generate calls", run["n_generate_calls"], expected_calls)
    sentence = run["example_prompt"].split("give me the location of ", 1)[-1].rsplit(" [/INST]", 1)[0]
    report.exact(
        "script_run: example prompt",
        run["example_prompt"],
        prepare_texts([refer_question(sentence)], _template())[0],
    )


def _check_resample_run(report: FamilyReport, run: dict[str, Any]) -> int:
    records = run["items"]
    batch_size = len(run["generate_calls"][0]["texts"])
    printed = _printed_scores(run["printed"])
    calls: list[list[str]] = []
    accepted: dict[str, list[str]] = {}
    # the official script repeats the loop per split; the stub's retry counters start afresh for each
    for dataset, split, value in printed:
        model = _ScriptedModel(run["answers_by_try"])
        accepted = official_ref_predictions(records, model, batch_size, resample=True)
        calls += model.calls
        report.close(
            f"resample_run: {dataset} {split} score", value, accuracy_by_img_id(records, accepted), FLOAT_REL
        )
    expected_calls = [call["texts"] for call in run["generate_calls"]]
    report.exact("resample_run: number of generate calls", len(expected_calls), len(calls))
    for index, (expected, got) in enumerate(zip(expected_calls, calls)):
        report.exact(f"resample_run: generate call {index} prompts", expected, got)
    report.exact(
        "resample_run: saved predictions (last split)", run["saved_predictions_last_split"], accepted
    )
    return batch_size


def check(path: Path) -> FamilyReport:
    report = FamilyReport("ref_eval")
    data = json.loads(Path(path).read_text())
    _check_cases(report, data["cases"])
    batch_size = _check_resample_run(report, data["resample_run"]) if "resample_run" in data else 4
    if "script_run" in data:
        _check_script_run(report, data["script_run"], data["cases"], batch_size)
    return report
