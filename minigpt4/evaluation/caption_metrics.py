"""Metrics beyond the official scripts: binary AUROC, and COCO caption metrics through pycocoevalcap."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence

logger = logging.getLogger(__name__)

SPICE_NOTE = "SPICE not computed: it downloads Stanford CoreNLP 3.6.0 on first use and cannot run offline"


def binary_auroc(labels: Sequence[int], scores: Sequence[float]) -> float | None:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); None with a single class."""
    positives = sum(1 for label in labels if int(label) == 1)
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return None
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    start = 0
    while start < len(order):  # average rank over each block of tied scores
        end = start
        while end + 1 < len(order) and scores[order[end + 1]] == scores[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    positive_rank_sum = sum(rank for rank, label in zip(ranks, labels) if int(label) == 1)
    return (positive_rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def caption_metrics(
    references: Mapping[str, Sequence[str]], predictions: Mapping[str, str]
) -> dict[str, float | str]:
    """BLEU-1..4, METEOR, ROUGE-L and CIDEr (pycocoevalcap, PTB tokenised) over ids present in both.

    METEOR and the PTB tokenizer need Java; without it, METEOR is skipped and a whitespace/lowercase tokenizer
    is used (noted in the result). SPICE is never computed (offline).
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    ids = [key for key in predictions if key in references]
    gts = {key: [{"caption": text} for text in references[key]] for key in ids}
    res = {key: [{"caption": predictions[key]}] for key in ids}
    has_java = shutil.which("java") is not None
    result: dict[str, float | str] = {"spice": SPICE_NOTE}
    if has_java:
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

        tokenizer = PTBTokenizer()
        gts_tok, res_tok = tokenizer.tokenize(gts), tokenizer.tokenize(res)
    else:
        gts_tok = {key: [_simple_tokenize(item["caption"]) for item in value] for key, value in gts.items()}
        res_tok = {key: [_simple_tokenize(item["caption"]) for item in value] for key, value in res.items()}
        result["tokenizer"] = "java not found: lowercase/whitespace tokenizer instead of PTB; METEOR skipped"
    bleu, _ = Bleu(4).compute_score(gts_tok, res_tok)
    for order, value in enumerate(bleu, start=1):
        result[f"bleu_{order}"] = float(value)
    result["rouge_l"] = float(Rouge().compute_score(gts_tok, res_tok)[0])
    result["cider"] = float(Cider().compute_score(gts_tok, res_tok)[0])
    if has_java:
        from pycocoevalcap.meteor.meteor import Meteor

        meteor = Meteor()
        try:
            result["meteor"] = float(meteor.compute_score(gts_tok, res_tok)[0])
        finally:
            _close_meteor(meteor)
    return result


def _close_meteor(meteor) -> None:
    """pycocoevalcap 1.2 keeps the METEOR JVM until garbage collection; stop it now."""
    process = getattr(meteor, "meteor_p", None)
    if process is None:
        return
    with meteor.lock:
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        process.kill()
        process.wait()  # its own __del__ later closes and kills again, harmlessly


def _simple_tokenize(text: str) -> str:
    kept = "".join(ch.lower() if ch.isalnum() or ch.isspace() else " " for ch in text)
    return " ".join(kept.split())
