"""The official VQA accuracy (the `VQAEval` copy that eval_vqa.py imports), answer normalisation included.

Facts this reproduces (pinned by the `vqa_eval` parity family):
* every answer (ground truth and prediction) has `\\n`/`\\t` replaced by spaces and is stripped;
* punctuation, digit, article and contraction normalisation runs **only when the ground-truth answers of the
  question disagree** (`len(set(answers)) > 1`), then on both sides;
* matching is case-insensitive; accuracy is the mean over the leave-one-out ground-truth subsets of
  `min(1, matches / 3)`, where "the others" excludes every answer record *equal* to the left-out one;
* results are rounded to 2 decimals per question and overall (n=2), averaging the unrounded values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

# Contractions without apostrophes -> with (the official table, its "somebody'd" -> "somebodyd" entry included).
CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
    "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm", "Ive": "I've",
    "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll", "let's": "let's",
    "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've", "mightn'tve": "mightn't've",
    "mightve": "might've", "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's",
    "shouldve": "should've", "shouldnt": "shouldn't", "shouldnt've": "shouldn't've",
    "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd", "somebodyd've": "somebody'd've",
    "somebody'dve": "somebody'd've", "somebodyll": "somebody'll", "somebodys": "somebody's",
    "someoned": "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
    "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd",
    "somethingd've": "something'd've", "something'dve": "something'd've", "somethingll": "something'll",
    "thats": "that's", "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas",
    "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't",
    "whatll": "what'll", "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's",
    "whered": "where'd", "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
    "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll",
    "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
    "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
    "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're",
    "youve": "you've",
}  # fmt: skip
NUMBER_WORDS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip
ARTICLES = frozenset({"a", "an", "the"})
PUNCTUATION = [
    ";",
    "/",
    "[",
    "]",
    '"',
    "{",
    "}",
    "(",
    ")",
    "=",
    "+",
    "\\",
    "_",
    "-",
    ">",
    "<",
    "@",
    "`",
    ",",
    "?",
    "!",
]
# The official pattern is written "(?!<=\d)": a (mis-typed) negative lookahead, kept as is.
PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
COMMA_BETWEEN_DIGITS = re.compile(r"(\d)(\,)(\d)")
# The official call passes re.UNICODE (32) positionally, i.e. as `count`: at most 32 periods are removed.
PERIOD_STRIP_COUNT = int(re.UNICODE)


def process_punctuation(text: str) -> str:
    """Official `processPunctuation`: a mark next to a space (or any digit,digit in the text) is deleted,
    otherwise replaced by a space; then periods not followed by a digit are removed (at most 32)."""
    out = text
    delete_marks = COMMA_BETWEEN_DIGITS.search(text) is not None
    for mark in PUNCTUATION:
        if delete_marks or (mark + " " in text or " " + mark in text):
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return PERIOD_STRIP.sub("", out, count=PERIOD_STRIP_COUNT)


def process_digit_article(text: str) -> str:
    """Official `processDigitArticle`: lowercase, number words -> digits, drop articles, add apostrophes."""
    words = [NUMBER_WORDS.get(word, word) for word in text.lower().split()]
    words = [CONTRACTIONS.get(word, word) for word in words if word not in ARTICLES]
    return " ".join(words)


def normalize_vqa_answer(text: str) -> str:
    """Punctuation then digit/article processing (what VQAEval applies when annotators disagree)."""
    return process_digit_article(process_punctuation(text))


def _clean_whitespace(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


def vqa_question_accuracy(prediction: str, gt_answers: Sequence[Mapping | str]) -> float:
    """Accuracy in [0, 1] of one prediction against the question's ground-truth answer records.

    gt_answers: the annotation's `answers` (dicts with at least `answer`; other fields such as `answer_id` take
    part in the official "other annotators" comparison) or plain strings. Inputs are not mutated.
    """
    # Plain strings get distinct answer ids, as real annotation records have (otherwise equal answers would
    # all be excluded together from "the other annotators").
    records = [
        dict(item) if isinstance(item, Mapping) else {"answer": item, "answer_id": index + 1}
        for index, item in enumerate(gt_answers)
    ]
    if not records:
        raise ValueError("a VQA question needs at least one ground-truth answer")
    for record in records:
        record["answer"] = _clean_whitespace(record["answer"])
    prediction = _clean_whitespace(prediction)
    if len({record["answer"] for record in records}) > 1:
        for record in records:
            record["answer"] = normalize_vqa_answer(record["answer"])
        prediction = normalize_vqa_answer(prediction)
    prediction = prediction.lower()
    per_subset = []
    for left_out in records:
        others = [record for record in records if record != left_out]
        matches = sum(record["answer"].lower() == prediction for record in others)
        per_subset.append(min(1, float(matches) / 3))
    return float(sum(per_subset)) / len(per_subset)


@dataclass
class VQAAccuracy:
    """What the official `VQAEval.evaluate()` fills: `overall`, per question/answer type, per question."""

    overall: float
    per_question_type: dict[str, float] = field(default_factory=dict)
    per_answer_type: dict[str, float] = field(default_factory=dict)
    per_question: dict[int, float] = field(default_factory=dict)


def _round_percent(values: Sequence[float], digits: int) -> float:
    return round(100 * float(sum(values)) / len(values), digits)


def evaluate_vqa(
    annotations: Iterable[Mapping], predictions: Mapping[int, str], digits: int = 2
) -> VQAAccuracy:
    """Official VQA evaluation over annotation records (`question_id`, `answers`, `question_type`,
    `answer_type`) and predictions keyed by question id; every annotated question must have a prediction."""
    annotations = list(annotations)
    missing = [ann["question_id"] for ann in annotations if ann["question_id"] not in predictions]
    extra = set(predictions) - {ann["question_id"] for ann in annotations}
    if missing or extra:
        raise ValueError(
            "results do not correspond to the VQA annotation set: "
            f"{len(missing)} annotated questions without a prediction (e.g. {missing[:3]}), "
            f"{len(extra)} predictions for unknown questions (e.g. {sorted(extra)[:3]})"
        )
    overall, by_qtype, by_atype, per_question = [], {}, {}, {}
    for ann in annotations:
        accuracy = vqa_question_accuracy(predictions[ann["question_id"]], ann["answers"])
        overall.append(accuracy)
        by_qtype.setdefault(ann.get("question_type"), []).append(accuracy)
        by_atype.setdefault(ann.get("answer_type"), []).append(accuracy)
        per_question[ann["question_id"]] = round(100 * accuracy, digits)
    if not overall:
        raise ValueError("no annotated questions to evaluate")
    return VQAAccuracy(
        overall=_round_percent(overall, digits),
        per_question_type={key: _round_percent(values, digits) for key, values in by_qtype.items()},
        per_answer_type={key: _round_percent(values, digits) for key, values in by_atype.items()},
        per_question=per_question,
    )
