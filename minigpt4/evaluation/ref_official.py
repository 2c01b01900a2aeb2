"""The official REC prediction loop, `--resample` included, for faithful comparisons.

Our evaluation scores every expression against its own box (see `ref_scoring.accuracy_by_expression`); this
module reproduces what the official script *accepts and saves*, keyed by img_id, so the parity family and the
`--official-ref-keying` option can compare with it.

Official resample behaviour (README quirk 9): an unparsable answer is retried for up to 20 rounds with the
sentence wrapped in a Python list repr (nested one level deeper on each round, e.g. "['object number 1']"),
and in round index 4 any answer is accepted. With greedy decoding a retry can only differ because its prompt
changed, so the loop mostly costs time; its one visible effect is the forced acceptance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from minigpt4.evaluation.ref_scoring import REFER_PROMPT, clean_ref_answer, is_box_answer, refer_question

RESAMPLE_ROUNDS = 20
FORCED_ACCEPT_ROUND = 4
_PROMPT_PREFIX = REFER_PROMPT.format("").rstrip()  # "[refer] give me the location of"

# generate(records, questions) -> raw answers: records are the items of the batch, questions their instructions.
GenerateFn = Callable[[Sequence[Mapping[str, Any]], list[str]], list[str]]


def _batches(items: Sequence[Any], batch_size: int) -> list[Sequence[Any]]:
    return [items[start : start + batch_size] for start in range(0, len(items), batch_size)]


def official_ref_predictions(
    records: Sequence[Mapping[str, Any]], generate: GenerateFn, batch_size: int, resample: bool = False
) -> dict[str, list[str]]:
    """img_id -> cleaned answers accepted by the official loop, in insertion order (what it saves as JSON)."""
    accepted: dict[str, list[str]] = {}
    pending: list[dict[str, Any]] = []

    def run_round(items: Sequence[Mapping[str, Any]], force: bool) -> list[dict[str, Any]]:
        retry = []
        for batch in _batches(items, batch_size):
            questions = [refer_question(item["sents"]) for item in batch]
            for item, question, answer in zip(batch, questions, generate(batch, questions)):
                cleaned = clean_ref_answer(answer)
                if is_box_answer(cleaned) or force:
                    accepted.setdefault(item["img_id"], []).append(cleaned)
                else:
                    # official: the retried sentence is a one-element list, so its repr nests on each round
                    retry.append({**item, "sents": [question.replace(_PROMPT_PREFIX, "").strip()]})
        return retry

    pending = run_round(records, force=False)
    if resample:
        for round_index in range(RESAMPLE_ROUNDS):
            pending = run_round(pending, force=round_index == FORCED_ACCEPT_ROUND)
            if not pending:
                break
    return accepted
