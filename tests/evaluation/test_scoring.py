"""The scoring functions: official quirks on hand-picked inputs, the real RefCOCO files, and the parity families."""

from __future__ import annotations

import importlib
import json

import pytest
import torch

from minigpt4.evaluation.caption_metrics import binary_auroc
from minigpt4.evaluation.postprocess import (
    hm_prediction,
    iconvqa_candidates,
    vizwiz_accuracy,
)
from minigpt4.evaluation.ref_scoring import (
    accuracy_by_expression,
    accuracy_by_img_id,
    compute_iou,
    score_ref_answer,
)
from minigpt4.evaluation.vqa_scoring import normalize_vqa_answer, vqa_question_accuracy
from minigpt4.models.generation import rank_candidates
from tests.conftest import FIXTURES

REFCOCO_FILES = FIXTURES / "refcoco_eval"  # the first 3000 records of three real splits


def test_iou_plus_one_pixel_and_negative_union():
    assert compute_iou([0, 0, 9, 9], [0, 0, 9, 9]) == 1.0
    assert compute_iou([0, 0, 9, 9], [10, 10, 19, 19]) == 0.0  # touching boxes share no +1 pixel
    iou = compute_iou([5000.0, 75.0, 250.0, 225.0], [67, 16, 241, 175])
    assert iou == 0.0 and str(iou) == "-0.0"


def test_ref_answer_quirks():
    record = {"bbox": [50.0, 75.0, 200.0, 150.0], "width": 500, "height": 375}
    spaced = score_ref_answer(" {<10> <20> <50> <60>}", record)
    assert spaced.parsable and spaced.correct
    unclosed = score_ref_answer("{<10><20><50><60>", record)  # correct box, but the pattern rejects it
    assert not unclosed.parsable and unclosed.correct
    two_boxes = score_ref_answer("{<10><20><50><60>}{<0><0><5><5>}", record)
    assert two_boxes.parsable and not two_boxes.correct and two_boxes.error.startswith("ValueError")
    assert score_ref_answer("the man", record).error.startswith("IndexError")


def test_expression_keying_differs_from_img_id_keying_only_when_ids_repeat():
    first = {"img_id": "COCO_train2014_000000000001_1", "bbox": [0, 0, 49, 49], "width": 100, "height": 100}
    second = {**first, "bbox": [50, 50, 49, 49]}  # same id, another object
    answers = ["{<0><0><50><50>}", "{<50><50><100><100>}"]
    ours, correct, _ = accuracy_by_expression([first, second], answers)
    assert (ours, correct) == (100.0, 2)
    official = accuracy_by_img_id([first, second], {first["img_id"]: answers})
    assert official == 50.0  # both answers judged against the last record's box


@pytest.mark.parametrize("name", ["refcoco_val", "refcoco+_testB", "refcocog_test"])
def test_shipped_refcoco_files_score_identically_both_ways(name):
    records = json.loads((REFCOCO_FILES / f"{name}.json").read_text())[:3000]
    generator = torch.Generator().manual_seed(0)
    answers = []
    for record in records:  # a noisy box around the truth, in the model's 0-100 grid; some unparsable
        x, y, w, h = record["bbox"]
        grid = [
            x / record["width"],
            y / record["height"],
            (x + w) / record["width"],
            (y + h) / record["height"],
        ]
        noisy = [
            int(min(max(v * 100 + float(torch.randn(1, generator=generator)) * 12, 0), 100)) for v in grid
        ]
        answers.append("".join(["{", *(f"<{v}>" for v in noisy), "}"]) if noisy[0] % 7 else "no box")
    ours, _, unparsable = accuracy_by_expression(records, answers)
    accepted = {}
    for record, answer in zip(records, answers):
        if score_ref_answer(answer, record).parsable:
            accepted.setdefault(record["img_id"], []).append(answer)
    assert unparsable > 0 and 10 < ours < 95
    assert ours == accuracy_by_img_id(records, accepted)


def test_vqa_accuracy_normalises_only_when_annotators_disagree():
    assert vqa_question_accuracy("yes.", ["yes"] * 10) == 0.0
    assert vqa_question_accuracy("yes.", ["yes"] * 9 + ["yeah"]) == 1.0
    assert vqa_question_accuracy("Two", ["2"] * 10) == 0.0
    assert vqa_question_accuracy("red", ["red"] + ["blue"] * 9) == pytest.approx(0.3)
    assert normalize_vqa_answer("The Two dogs!") == "2 dogs"


def test_closed_answer_rules():
    assert vizwiz_accuracy("unanswerable ", ["unanswerable"] * 10) == 0.0  # raw answer, no strip (official)
    assert hm_prediction(" No ") == 0 and hm_prediction("yes.") == "yes."
    candidates, num_cand = iconvqa_candidates([["red_blue", "green"], ["a", "b", "c"]])
    assert num_cand == [3, 3] and candidates[0] == ["red", "a"]
    assert rank_candidates(torch.tensor([[1.0, 1.0, 0.5], [0.1, 0.2, 0.3]]), [2, 3]) == [[0, 1, 2], [0, 1, 2]]


def test_auroc():
    assert binary_auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert binary_auroc([0, 1], [0.5, 0.5]) == 0.5
    assert binary_auroc([1, 1], [0.2, 0.3]) is None


@pytest.mark.parametrize("family", ["ref_eval", "vqa_eval", "eval_postprocess"])
def test_parity_family_passes(parity_dir, family):
    module = importlib.import_module(f"minigpt4.tools.parity.families.{family}")
    report = module.check(parity_dir / "functions" / f"{family}.json")
    assert report.ok, report.line()
