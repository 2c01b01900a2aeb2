"""Per-benchmark prompts and answer handling of the official `eval_scripts/eval_vqa.py`.

Each benchmark saves a cleaned prediction but (except OKVQA) compares the *raw* answer, exactly as the official
script does; pinned by the `eval_postprocess` parity family. README quirk 10:
* VizWiz: `gt.lower() == raw.lower()` per annotator answer (answers joined and re-split on `_`), min(n/3, 1);
* GQA: `raw.lower() == label` (no strip, no `<unk>` removal);
* VSR: `raw.lower() == label.lower()` with label 'true'/'false';
* HM: only `raw.lower().strip()` in {yes, no} maps to 1/0; anything else stays a string and is wrong;
* OKVQA: the saved `raw.lower().replace('<unk>','').strip()` goes through the official VQA evaluator;
* IconVQA: choices joined and re-split on `_`, padded with 'none', losses beyond `num_cand` set to 9999,
  candidates ranked by a stable argsort (ties go to the lowest index).
"""

from __future__ import annotations

from collections.abc import Sequence

# the prompts and answer texts are shared with the training builders, so they live on the data side
from minigpt4.datasets.benchmark_prompts import (  # noqa: F401 (re-exported: the evaluation's names)
    CAPTION_PROMPT,
    HM_PROMPT,
    ICONVQA_TEMPLATE,
    VIZWIZ_PROMPT,
    VQA_PROMPT,
    VSR_PROMPT,
    vizwiz_answer_texts,
)

ICONVQA_PAD_CHOICE = "none"
VIZWIZ_GENERATE_KWARGS = {"repetition_penalty": 1.0}


def strip_unk(answer: str) -> str:
    return answer.replace("<unk>", "").strip()


# --- OKVQA / VQAv2 -----------------------------------------------------------------------------------------------


def okvqa_saved_answer(raw: str) -> str:
    """What the official OKVQA block saves and scores: lowercased, `<unk>` removed, stripped."""
    return raw.lower().replace("<unk>", "").strip()


# --- VizWiz --------------------------------------------------------------------------------------------------------


def vizwiz_gt_answers(answers: Sequence[dict | str]) -> list[str]:
    """The annotator answers as the official code sees them: joined with `_`, then split on `_`."""
    return "_".join(vizwiz_answer_texts(answers)).split("_")


def vizwiz_accuracy(raw: str, gt_answers: Sequence[str]) -> float:
    """min(#case-insensitive exact matches of the raw answer / 3, 1); no VQA normalisation (official)."""
    count = sum(gt.lower() == raw.lower() for gt in gt_answers)
    return min(count / 3.0, 1.0)


# --- GQA / VSR -----------------------------------------------------------------------------------------------------


def gqa_saved_answer(raw: str) -> str:
    return raw.lower().replace("<unk>", "").strip()


def gqa_correct(raw: str, label: str) -> bool:
    return raw.lower() == label


def vsr_label(label: int | bool) -> str:
    return "true" if label == 1 else "false"


def vsr_correct(raw: str, label_text: str) -> bool:
    return raw.lower() == label_text.lower()


def vsr_parsable(raw: str) -> bool:
    return raw.lower().strip() in ("true", "false")


# --- Hateful Memes -------------------------------------------------------------------------------------------------


def hm_prediction(raw: str) -> int | str:
    """1 for "yes", 0 for "no" (after lower+strip); any other answer is kept as the raw string (official)."""
    text = raw.lower().strip()
    if text == "yes":
        return 1
    if text == "no":
        return 0
    return raw


def hm_correct(prediction: int | str, label: int) -> bool:
    return isinstance(prediction, int) and prediction == int(label)


# --- IconVQA -------------------------------------------------------------------------------------------------------


def iconvqa_candidates(choices_per_sample: Sequence[Sequence[str]]) -> tuple[list[list[str]], list[int]]:
    """Official candidate packing for a batch.

    Returns (candidates by slot: slot k holds the k-th choice of every sample, padded with 'none'; num_cand per
    sample). Choices are joined and re-split on `_`, so a choice "red_blue" counts as two candidates.
    """
    split = ["_".join(choices).split("_") for choices in choices_per_sample]
    num_cand = [len(choices) for choices in split]
    width = max(num_cand)
    padded = [choices + [ICONVQA_PAD_CHOICE] * (width - len(choices)) for choices in split]
    return [list(slot) for slot in zip(*padded)], num_cand


def iconvqa_correct(ranks: Sequence[int], answer: int) -> bool:
    return ranks[0] == int(answer)
