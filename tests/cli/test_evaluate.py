"""eval_scripts' command line: config file in, summary out; bad inputs fail before the model is built."""

from __future__ import annotations

import json

import pytest
import yaml

from minigpt4.cli import evaluate as cli
from minigpt4.processors.image import Blip2ImageEvalProcessor
from tests.evaluation.eval_world import StubModel, eval_config, write_eval_world


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return write_eval_world(tmp_path_factory.mktemp("world"))


def write_config(path, world, save_path, names):
    config = {
        "model": {"arch": "minigpt_v2", "model_type": "pretrain", "llama_model": "", "ckpt": ""},
        "datasets": {
            "cc_sbu_align": {"vis_processor": {"train": {"name": "blip2_image_eval", "image_size": 32}}}
        },
        "evaluation_datasets": eval_config(world, batch_size=4, names=names),
        "run": {"task": "image_text_pretrain", "name": "test_eval", "save_path": str(save_path)},
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def built(monkeypatch):
    calls = []

    def fake_builder(cfg, device):
        calls.append(cfg.model_cfg.arch)
        return StubModel(), Blip2ImageEvalProcessor.from_config({"image_size": 32})

    monkeypatch.setattr(cli, "build_model_and_processor", fake_builder)
    return calls


def test_eval_vqa_writes_summary_and_prints_table(world, tmp_path, built, capsys):
    config = write_config(tmp_path / "eval.yaml", world, tmp_path / "out", ("gqa", "hm", "vsr"))
    assert cli.main_vqa(["--cfg-path", str(config), "--dataset", "gqa,hm"]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert set(summary) == {"gqa/val", "hm/val"}
    printed = capsys.readouterr().out
    assert "| gqa/val | 66.67 |" in printed and "paper MiniGPT-v2" in printed
    assert built == ["minigpt_v2"]


def test_eval_ref_defaults_to_configured_rec_benchmarks(world, tmp_path, built):
    config = write_config(tmp_path / "eval.yaml", world, tmp_path / "out", ("refcocog", "gqa"))
    assert cli.main_ref(["--cfg-path", str(config)]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert set(summary) == {"refcocog/val", "refcocog/test"}


def test_missing_file_fails_before_the_model_is_built(world, tmp_path, built, capsys):
    config = write_config(tmp_path / "eval.yaml", world, tmp_path / "out", ("gqa",))
    data = yaml.safe_load(config.read_text())
    data["evaluation_datasets"]["gqa"]["eval_file_path"] = str(tmp_path / "missing.json")
    config.write_text(yaml.safe_dump(data))
    assert cli.main_vqa(["--cfg-path", str(config), "--dataset", "gqa"]) == 1
    assert "DataError: gqa: GQA questions not found" in capsys.readouterr().err
    assert built == []


def test_shapes_config_finds_the_shapes_world_files(tmp_path, monkeypatch, repo_root):
    from minigpt4.common.config import Config
    from minigpt4.datasets.shapes import generate_world
    from minigpt4.evaluation.benchmarks import BENCHMARKS
    from minigpt4.evaluation.sharded_runs import prepare_jobs

    generate_world(tmp_path / "world", num_train=20, num_heldout=20)
    monkeypatch.setenv("SHAPES_WORLD", str(tmp_path / "world"))
    cfg = Config.from_path(repo_root / "eval_configs" / "shapes_benchmark_evaluation.yaml", purpose="eval")
    assert set(cfg.evaluation_datasets_cfg) == set(BENCHMARKS)
    jobs = prepare_jobs(cfg.evaluation_datasets_cfg, list(BENCHMARKS))
    assert len(jobs) == 16 and all(job.batch_size == 8 for job in jobs)
    assert cfg.model_cfg.model_type == "tiny"
