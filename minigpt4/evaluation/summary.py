"""summary.json keyed by benchmark/split, a markdown table beside the paper's numbers (official_anatomy §8.3)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from minigpt4.evaluation.benchmarks.benchmark import ScoreResult

# MiniGPT-v2 paper (7B): after stage 2 / the chat model after stage 3.
PAPER_NUMBERS: dict[str, tuple[float, float]] = {
    "refcoco/val": (88.69, 88.06),
    "refcoco/testA": (91.65, 91.29),
    "refcoco/testB": (85.33, 84.30),
    "refcoco+/val": (79.97, 79.58),
    "refcoco+/testA": (85.12, 85.52),
    "refcoco+/testB": (74.45, 73.32),
    "refcocog/val": (84.44, 84.19),
    "refcocog/test": (84.66, 84.31),
    "okvqa/test": (56.9, 57.8),
    "gqa/val": (60.3, 60.1),
    "vsr/test": (60.6, 62.9),
    "iconvqa/val": (47.7, 51.5),
    "vizwiz/val": (32.9, 53.6),
    "hm/val": (58.2, 58.8),
}
PAPER_COLUMNS = ("MiniGPT-v2", "MiniGPT-v2-chat")
SUMMARY_JSON = "summary.json"
SUMMARY_MARKDOWN = "summary.md"


def summary_entry(key: str, result: ScoreResult) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "score": result.score,
        "n": result.n,
        "unparsable": result.unparsable,
        "chance": result.chance,
    }
    if key in PAPER_NUMBERS:
        entry["paper"] = dict(zip(PAPER_COLUMNS, PAPER_NUMBERS[key]))
    for name in ("auroc", "bleu_4", "meteor", "rouge_l", "cider", "spice", "official_img_id_keyed_score"):
        if name in result.extra:
            entry[name] = result.extra[name]
    return entry


def update_summary(save_path: str | Path, results: Mapping[str, ScoreResult]) -> dict[str, Any]:
    """Merge new results into `<save_path>/summary.json` (earlier benchmarks stay) and rewrite summary.md."""
    save_path = Path(save_path)
    path = save_path / SUMMARY_JSON
    summary: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    for key, result in results.items():
        summary[key] = summary_entry(key, result)
    save_path.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=1) + "\n")
    (save_path / SUMMARY_MARKDOWN).write_text(markdown_table(summary) + "\n")
    return summary


def _number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    return f"{value:.2f}"


def markdown_table(summary: Mapping[str, Mapping[str, Any]]) -> str:
    header = [
        "benchmark/split",
        "ours",
        "n",
        "unparsable",
        "chance",
        *(f"paper {c}" for c in PAPER_COLUMNS),
        "notes",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key in sorted(summary):
        entry = summary[key]
        paper = entry.get("paper", {})
        notes = []
        if entry.get("auroc") is not None:
            notes.append(f"AUROC {entry['auroc']:.4f}")
        for metric in ("bleu_4", "meteor", "rouge_l", "cider"):
            if metric in entry:
                notes.append(f"{metric} {entry[metric]:.4f}")
        if "spice" in entry:
            notes.append(str(entry["spice"]))
        row = [
            key,
            _number(entry.get("score")),
            str(entry.get("n", "")),
            str(entry.get("unparsable", "")),
            _number(entry.get("chance")),
            *(_number(paper.get(column)) for column in PAPER_COLUMNS),
            "; ".join(notes),
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
