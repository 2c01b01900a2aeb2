"""RefCOCO/RefCOCO+/RefCOCOg scoring: answer cleaning, box parsing, rescaling, IoU and Acc@0.5.

Every step follows the official `eval_scripts/eval_ref.py` and `computeIoU` (`minigpt4/common/eval_utils.py`)
operation by operation, so the floats are bit-identical (pinned by the `ref_eval` parity family):

* the answer loses every `<unk>` and every space, then `strip()`;
* it counts as a box answer when `re.match` (anchored at the start only) finds `{<d><d><d><d>}` with 1-3 digits;
* scoring takes *all* digit runs of the cleaned answer, rescales the first four by `value / res * width|height`,
  and fails (the official bare `except: continue`) when there are fewer or more than four;
* IoU uses the +1-pixel convention, correct when IoU > 0.5.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

REFER_PROMPT = "[refer] give me the location of {}"
BOX_ANSWER_PATTERN = re.compile(r"\{<\d{1,3}><\d{1,3}><\d{1,3}><\d{1,3}>\}")
DIGIT_RUN = re.compile(r"\d+")
DEFAULT_RES = 100.0
IOU_THRESHOLD = 0.5

# The messages the official code's swallowed exceptions carry (kept so reports name the failure the same way).
TOO_FEW_VALUES = "IndexError: list index out of range"
TOO_MANY_VALUES = "ValueError: too many values to unpack (expected 4)"
ZERO_UNION = "ZeroDivisionError: float division by zero"


def refer_question(sentence: str) -> str:
    """The official REC instruction (before the conversation template)."""
    return REFER_PROMPT.format(sentence)


def clean_ref_answer(answer: str) -> str:
    """Official cleaning: drop `<unk>`, drop every space, strip the rest."""
    return answer.replace("<unk>", "").replace(" ", "").strip()


def is_box_answer(cleaned_answer: str) -> bool:
    """Official acceptance test (`re.match`: anchored at the start, trailing text allowed)."""
    return BOX_ANSWER_PATTERN.match(cleaned_answer) is not None


def xywh_to_xyxy(bbox: Sequence[float]) -> list[float]:
    """Ground truth [x, y, w, h] -> [x1, y1, x2, y2] (official: x2 = x + w, no rounding)."""
    return [bbox[0], bbox[1], bbox[0] + bbox[2], bbox[1] + bbox[3]]


def compute_iou(box: Sequence[float], other: Sequence[float]) -> float:
    """IoU of two [x1, y1, x2, y2] boxes with the official +1-pixel widths and heights.

    A box far outside the other can give a negative union, hence `-0.0` (as the official code).
    Raises ZeroDivisionError when the union is exactly 0 (also official).
    """
    x1, y1, x2, y2 = box
    x3, y3, x4, y4 = other
    inter_x1, inter_y1 = max(x1, x3), max(y1, y3)
    inter_x2, inter_y2 = min(x2, x4), min(y2, y4)
    intersection = max(0, inter_x2 - inter_x1 + 1) * max(0, inter_y2 - inter_y1 + 1)
    box_area = (x2 - x1 + 1) * (y2 - y1 + 1)
    other_area = (x4 - x3 + 1) * (y4 - y3 + 1)
    union = box_area + other_area - intersection
    return intersection / union


@dataclass
class RefScore:
    """The scoring of one answer against one ground-truth record.

    `parsable`: the cleaned answer passes the official box pattern. `counted`: the answer took part in scoring
    (parsable, or force-accepted by the official resample loop). `correct` implies `counted`.
    """

    raw_answer: str
    cleaned_answer: str
    parsable: bool
    integers: list[str]
    pred_box: list[float]
    gt_box: list[float] | None
    iou: float | None
    correct: bool
    error: str | None


def rescale_digits(
    integers: Sequence[str], width: float, height: float, res: float = DEFAULT_RES
) -> tuple[list, str | None]:
    """Official rescaling, one index at a time: x/res*width, y/res*height for the first four values.

    Returns (the values after as many steps as succeeded, the official error message or None). With fewer than
    four values the official code stops at the first missing index; with more than four it rescales four and then
    fails to unpack them in `computeIoU`.
    """
    values: list = [int(number) for number in integers]
    for index, size in enumerate((width, height, width, height)):
        if index >= len(values):
            return values, TOO_FEW_VALUES
        values[index] = values[index] / res * size
    if len(values) > 4:
        return values, TOO_MANY_VALUES
    return values, None


def score_ref_answer(answer: str, record: Mapping, res: float = DEFAULT_RES) -> RefScore:
    """Score one raw model answer against one RefCOCO record (`bbox` xywh, `width`, `height`).

    Scoring runs whatever the pattern says (so callers can see what the official code would compute);
    `correct` is only True for a box whose IoU exceeds 0.5. Whether an unparsable answer may count is the
    caller's decision (official: only in the forced resample round), see `counts_as_correct`.
    """
    cleaned = clean_ref_answer(answer)
    integers = DIGIT_RUN.findall(cleaned)
    pred_box, error = rescale_digits(integers, record["width"], record["height"], res)
    gt_box = iou = None
    correct = False
    if error is None:
        gt_box = xywh_to_xyxy(record["bbox"])
        try:
            iou = compute_iou(pred_box, gt_box)
        except ZeroDivisionError:
            error = ZERO_UNION
        else:
            correct = iou > IOU_THRESHOLD
    return RefScore(answer, cleaned, is_box_answer(cleaned), integers, pred_box, gt_box, iou, correct, error)


def counts_as_correct(score: RefScore, force_accepted: bool = False) -> bool:
    """Official counting: a correct box counts when the answer was accepted (pattern match, or forced)."""
    return score.correct and (score.parsable or force_accepted)


def accuracy_by_expression(
    records: Sequence[Mapping], answers: Sequence[str], res: float = DEFAULT_RES
) -> tuple[float, int, int]:
    """Acc@0.5 (percent) scoring every expression against its own box.

    records[i] is answered by answers[i]. Returns (score, correct, unparsable). On files where every expression
    with a given img_id refers to the same box (all shipped RefCOCO files) this equals the official
    img_id-keyed count; `accuracy_by_img_id` reproduces the official keying for other files.
    """
    if len(records) != len(answers):
        raise ValueError(f"{len(records)} records but {len(answers)} answers")
    correct = unparsable = 0
    for record, answer in zip(records, answers):
        score = score_ref_answer(answer, record, res)
        unparsable += not score.parsable
        correct += counts_as_correct(score)
    return (correct / len(records) * 100 if records else 0.0), correct, unparsable


def accuracy_by_img_id(
    records: Sequence[Mapping], accepted: Mapping[str, Sequence[str]], res: float = DEFAULT_RES
) -> float:
    """The official count: predictions and boxes keyed by img_id (last record of an id wins its box).

    accepted: img_id -> the answers the official loop accepted for it (cleaned, in order). Every accepted answer
    is scored against the one kept box; the denominator is the number of records.
    """
    box_by_id: dict[str, Mapping] = {}
    for record in records:
        box_by_id[record["img_id"]] = record
    count = 0
    for img_id, record in box_by_id.items():
        for answer in accepted.get(img_id, ()):
            count += score_ref_answer(answer, record, res).correct
    return count / len(records) * 100
