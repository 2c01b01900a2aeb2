"""Parity family `vqa_eval`: the official VQA answer normalisation and accuracy (VQA/VQAEval, n=2)."""

from __future__ import annotations

import json
from pathlib import Path

from minigpt4.evaluation.vqa_scoring import (
    evaluate_vqa,
    process_digit_article,
    process_punctuation,
    vqa_question_accuracy,
)
from minigpt4.tools.parity.report import FamilyReport

FLOAT_REL = 1e-9


def check(path: Path) -> FamilyReport:
    report = FamilyReport("vqa_eval")
    data = json.loads(Path(path).read_text())

    for case in data.get("normalisation_cases", []):
        text = case["input"]
        report.exact(f"processPunctuation({text!r})", case["processPunctuation"], process_punctuation(text))
        report.exact(
            f"processDigitArticle(processPunctuation({text!r}))",
            case["processDigitArticle_of_punct"],
            process_digit_article(process_punctuation(text)),
        )
        report.exact(
            f"processDigitArticle({text!r})", case["processDigitArticle_only"], process_digit_article(text)
        )

    files = data.get("files", {})
    annotations = files.get("annotation", {}).get("annotations", [])
    answers_by_id = {ann["question_id"]: ann["answers"] for ann in annotations}
    for case in data.get("accuracy_cases", []):
        qid = case["question_id"]
        gt = answers_by_id.get(qid, case["gt_answers"])
        got = round(100 * vqa_question_accuracy(case["prediction"], gt), 2)
        report.close(f"evalQA[{qid}] {case['prediction']!r}", case["evalQA"], got, FLOAT_REL)

    if annotations and "results" in files and "overall" in data:
        predictions = {}
        for result in files["results"]:  # loadRes indexes by question id: a later duplicate wins
            predictions[result["question_id"]] = result["answer"]
        result = evaluate_vqa(annotations, predictions)
        expected = data["overall"]["accuracy"]
        report.close("accuracy overall", expected["overall"], result.overall, FLOAT_REL)
        report.close(
            "accuracy perQuestionType", expected["perQuestionType"], result.per_question_type, FLOAT_REL
        )
        report.close("accuracy perAnswerType", expected["perAnswerType"], result.per_answer_type, FLOAT_REL)
    return report
