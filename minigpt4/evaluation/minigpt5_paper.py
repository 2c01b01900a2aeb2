"""The MiniGPT-5 paper's figures, printed beside ours by eval_scripts/eval_minigpt5.py.

Source: K. Zheng, X. He, X. E. Wang, "MiniGPT-5: Interleaved Vision-and-Language Generation via Generative
Vokens", arXiv 2310.02239 (v1 Oct 2023, v3 Mar 2024, v4 with LoRA / prefix variants). Its tables: CC3M (CLIP-I,
CLIP-T, IS, FID beside the SD-2 baseline), VIST (CLIP-I/T, IS, FID, story-level FID), MMDialog (text and image
metrics beside Divter).

No value is transcribed yet. The stored copies of the paper reachable from this project (arxiv.org/html
2310.02239v3 and v4, ar5iv) gave back only the abstract and introduction, never the tables, and a number typed
from memory beside ours is worse than none. To add one, fill `PAPER_FIGURES` below with the arXiv version and
table it was read from; the summary then shows it, and `tests/evaluation/test_minigpt5_paper.py` pins the layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PAPER_SOURCE = "arXiv 2310.02239 (MiniGPT-5)"
NO_FIGURE = "—"  # the paper gives no number for this metric (or none is transcribed: see the footnote)


@dataclass(frozen=True)
class PaperFigures:
    """One benchmark/split of the paper. Metric names are ours (`clip_i`, `fid`, `sd_baseline_fid`, ...)."""

    version: str  # where the numbers were read, e.g. "v4, Table 2"
    minigpt5: Mapping[str, float]
    baseline_name: str = ""  # the paper's other model in the same table, e.g. "Divter" on MMDialog
    baseline: Mapping[str, float] = field(default_factory=dict)


# {"minigpt5-<benchmark>/<split>": PaperFigures}; keys as eval_minigpt5.py names its splits (cc3m/test,
# vist/test, mmdialog/test). Empty until a verified copy of the tables is at hand (see the module docstring).
PAPER_FIGURES: dict[str, PaperFigures] = {}

# Metrics the paper cannot report: the OpenING rates and the shapes judge are ours.
OURS_ONLY = frozenset({
    "no_image_rate", "no_text_rate", "judge_colour_acc", "judge_shape_acc", "judge_both_acc",
})  # fmt: skip


def paper_entry(key: str) -> dict[str, Any]:
    """The `paper` field of summary.json for one benchmark/split: {} when nothing is transcribed."""
    figures = PAPER_FIGURES.get(key)
    if figures is None:
        return {}
    entry: dict[str, Any] = {
        "source": f"{PAPER_SOURCE} {figures.version}",
        "MiniGPT-5": dict(figures.minigpt5),
    }
    if figures.baseline_name:
        entry["baseline"] = {"name": figures.baseline_name, **figures.baseline}
    return entry


def paper_cells(paper: Mapping[str, Any], metric: str) -> tuple[str, str]:
    """(MiniGPT-5 cell, baseline cell) of the summary table for one metric; an em dash where there is no figure."""
    ours = (paper.get("MiniGPT-5") or {}).get(metric)
    baseline = paper.get("baseline") or {}
    other = baseline.get(metric)
    return (
        NO_FIGURE if ours is None else f"{ours:g}",
        NO_FIGURE if other is None else f"{other:g} ({baseline['name']})",
    )


def paper_footnote(key: str, paper: Mapping[str, Any]) -> str:
    if paper:
        return f"{key}: paper figures from {paper['source']}; {NO_FIGURE} = the paper reports no such number."
    return (
        f"{key}: no paper figures transcribed ({NO_FIGURE} throughout); "
        f"see minigpt4/evaluation/minigpt5_paper.py for {PAPER_SOURCE}."
    )
