"""minigpt4/evaluation/minigpt5_paper.py through the eval summary: the paper's figure sits beside ours, an em dash
where the paper has none, and a footnote names the source (or says nothing is transcribed)."""

from __future__ import annotations

import json

from minigpt4.evaluation import minigpt5_paper
from minigpt4.evaluation.minigpt5_eval import write_summary
from minigpt4.evaluation.minigpt5_paper import NO_FIGURE, PaperFigures

SCORES = {"fid": 12.5, "bleu_1": 0.25, "no_image_rate": 0.1, "n": 4, "images_generated": 3}


def table_row(save, metric):
    lines = (save / "summary.md").read_text().splitlines()
    return next(line for line in lines if line.startswith(f"| minigpt5-mmdialog/test | {metric} |"))


def test_paper_figure_sits_beside_ours(tmp_path, monkeypatch):
    figures = PaperFigures("v9, Table 9", {"fid": 40.5, "bleu_1": 0.5}, "Divter", {"bleu_1": 0.125})
    monkeypatch.setitem(minigpt5_paper.PAPER_FIGURES, "minigpt5-mmdialog/test", figures)
    summary = write_summary(tmp_path, {"minigpt5-mmdialog/test": SCORES})

    assert table_row(tmp_path, "fid") == f"| minigpt5-mmdialog/test | fid | 12.5000 | 40.5 | {NO_FIGURE} |"
    assert (
        table_row(tmp_path, "bleu_1") == "| minigpt5-mmdialog/test | bleu_1 | 0.2500 | 0.5 | 0.125 (Divter) |"
    )
    # the OpenING rate is ours only: an em dash, never a number
    assert table_row(tmp_path, "no_image_rate").endswith(f"| 0.1000 | {NO_FIGURE} | {NO_FIGURE} |")
    paper = json.loads((tmp_path / "summary.json").read_text())["minigpt5-mmdialog/test"]["paper"]
    assert paper == summary["minigpt5-mmdialog/test"]["paper"]
    assert paper["MiniGPT-5"]["fid"] == 40.5 and paper["baseline"] == {"name": "Divter", "bleu_1": 0.125}
    assert "arXiv 2310.02239 (MiniGPT-5) v9, Table 9" in (tmp_path / "summary.md").read_text()


def test_untranscribed_benchmark_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(minigpt5_paper, "PAPER_FIGURES", {})
    write_summary(tmp_path, {"minigpt5-mmdialog/test": SCORES})
    assert table_row(tmp_path, "fid").endswith(f"| {NO_FIGURE} | {NO_FIGURE} |")
    assert "minigpt5-mmdialog/test: no paper figures transcribed" in (tmp_path / "summary.md").read_text()


def test_figures_name_only_metrics_the_summary_prints():
    from minigpt4.evaluation.minigpt5_eval import SUMMARY_ORDER

    for key, figures in minigpt5_paper.PAPER_FIGURES.items():
        assert key.startswith("minigpt5-") and figures.version, key
        for metric in (*figures.minigpt5, *figures.baseline):
            assert metric in SUMMARY_ORDER and metric not in minigpt5_paper.OURS_ONLY, (key, metric)
