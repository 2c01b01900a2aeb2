"""End to end on the tiny eval world with a stub model: every benchmark, resume, errors, summary."""

from __future__ import annotations

import json
import os

import pytest

from minigpt4.common.errors import ConfigError, DataError
from minigpt4.evaluation.sharded_runs import evaluate_jobs, model_source, prepare_jobs
from minigpt4.evaluation.summary import update_summary
from minigpt4.processors.image import Blip2ImageEvalProcessor
from tests.evaluation.eval_world import StubModel, eval_config, write_eval_world

FAST = ("refcoco", "okvqa", "vizwiz", "iconvqa", "gqa", "vsr", "hm", "vqav2")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return write_eval_world(tmp_path_factory.mktemp("world"))


def processor():
    return Blip2ImageEvalProcessor.from_config({"image_size": 32})


def test_every_benchmark_scores_above_chance(world, tmp_path):
    config = eval_config(world, batch_size=4, names=FAST)
    results = evaluate_jobs(prepare_jobs(config, list(config)), StubModel(), processor(), tmp_path)
    assert set(results) == {"refcoco/val", "refcoco/testA", "refcoco/testB", "okvqa/test", "vizwiz/val",
                            "iconvqa/val", "gqa/val", "vsr/test", "hm/val", "vqav2/val"}  # fmt: skip
    for key, result in results.items():
        assert result.score > result.chance, key
    # the stub is unsure about green squares (1 in 3): those answers are unparsable and wrong
    assert results["refcoco/val"].unparsable == 4 and results["refcoco/val"].n == 12
    assert results["refcoco/val"].score == pytest.approx(8 / 12 * 100)
    assert results["iconvqa/val"].score == 100.0
    assert results["hm/val"].unparsable == 2 and "auroc" in results["hm/val"].extra
    saved = json.loads((tmp_path / "refcoco" / "val.json").read_text())
    assert len(saved["predictions"]) == 12 and saved["predictions"][0]["answer"].startswith("{<")


def test_killed_run_resumes_without_redoing_samples(world, tmp_path):
    config = eval_config(world, batch_size=2, names=("gqa",))
    jobs = prepare_jobs(config, ["gqa"])
    with pytest.raises(KeyboardInterrupt):
        evaluate_jobs(jobs, StubModel(fail_after=2), processor(), tmp_path)
    parts = tmp_path / "gqa" / "val.parts" / "predictions.rank0.jsonl"
    assert len(parts.read_text().splitlines()) == 4
    with parts.open("a") as handle:  # a write torn by the kill
        handle.write('{"index": 5, "key": "5", "pr')
    resumed = StubModel()
    results = evaluate_jobs(jobs, resumed, processor(), tmp_path)
    assert resumed.rows == 2  # only the two samples never answered
    fresh = evaluate_jobs(jobs, StubModel(), processor(), tmp_path / "fresh")
    assert results["gqa/val"].score == fresh["gqa/val"].score


def test_predictions_of_another_checkpoint_are_not_resumed(world, tmp_path):
    config = eval_config(world, batch_size=2, names=("gqa",))
    jobs = prepare_jobs(config, ["gqa"])
    first, second = tmp_path / "a.pth", tmp_path / "b.pth"
    first.write_bytes(b"weights a")
    second.write_bytes(b"other weights b")
    with pytest.raises(KeyboardInterrupt):
        evaluate_jobs(
            jobs, StubModel(fail_after=1), processor(), tmp_path, source=model_source({"ckpt": first})
        )
    with pytest.raises(
        DataError, match=r"gqa/val\.parts holds predictions from another source \(ckpt: was .*a\.pth"
    ):
        evaluate_jobs(jobs, StubModel(), processor(), tmp_path, source=model_source({"ckpt": second}))
    first.write_bytes(b"weights A, retrained")  # same path, new file: still another source
    with pytest.raises(DataError, match=r"ckpt_bytes: was 9, now 20"):
        evaluate_jobs(jobs, StubModel(), processor(), tmp_path, source=model_source({"ckpt": first}))
    (tmp_path / "gqa" / "val.parts" / "predictions.rank0.jsonl").unlink()  # nothing to mix: starts over
    resumed = StubModel()
    evaluate_jobs(jobs, resumed, processor(), tmp_path, source=model_source({"ckpt": second}))
    assert resumed.rows == len(jobs[0].samples)
    again = StubModel()
    evaluate_jobs(jobs, again, processor(), tmp_path, source=model_source({"ckpt": second}))
    assert again.rows == 0  # same source: everything already answered


def test_missing_image_is_an_error_before_model_work(world, tmp_path):
    config = eval_config(world, names=("gqa",))
    config["gqa"]["img_path"] = str(tmp_path / "nowhere")
    with pytest.raises(DataError, match="images are missing"):
        prepare_jobs(config, ["gqa"])


def test_missing_annotation_file_is_an_error(world, tmp_path):
    config = eval_config(world, names=("okvqa", "hm"))
    config["hm"]["eval_file_path"] = str(tmp_path / "dev.jsonl")
    with pytest.raises(DataError, match="not found"):
        prepare_jobs(config, ["okvqa", "hm"])
    with pytest.raises(ConfigError, match="not in evaluation_datasets"):
        prepare_jobs(config, ["textvqa"])


def test_vsr_hub_name_asks_for_local_files(world):
    config = eval_config(world, names=("vsr",))
    config["vsr"]["eval_file_path"] = "cambridgeltl/vsr_zeroshot"
    with pytest.raises(DataError, match="local files"):
        prepare_jobs(config, ["vsr"])


def test_summary_json_and_markdown(world, tmp_path):
    config = eval_config(world, names=("gqa", "hm"))
    results = evaluate_jobs(prepare_jobs(config, ["gqa", "hm"]), StubModel(), processor(), tmp_path)
    summary = update_summary(tmp_path, results)
    assert set(summary["gqa/val"]) >= {"score", "n", "unparsable", "chance", "paper"}
    assert summary["gqa/val"]["paper"] == {"MiniGPT-v2": 60.3, "MiniGPT-v2-chat": 60.1}
    table = (tmp_path / "summary.md").read_text()
    assert "| gqa/val | 66.67 | 6 | 0 | 33.33 | 60.30 | 60.10 |" in table
    assert "AUROC" in table


@pytest.mark.slow
def test_caption_metrics_without_spice(world, tmp_path):
    config = eval_config(world, names=("coco_caption",))
    results = evaluate_jobs(prepare_jobs(config, ["coco_caption"]), StubModel(), processor(), tmp_path)
    extra = results["coco_caption/test"].extra
    assert extra["cider"] > 0 and extra["bleu_4"] > 0 and "rouge_l" in extra
    assert "SPICE not computed" in extra["spice"]


@pytest.mark.slow
def test_two_processes_give_the_same_scores_as_one(world, tmp_path):
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"}
    names = "refcoco,iconvqa,hm,okvqa"
    base = [sys.executable, "-m", "tests.evaluation.run_stub_eval", str(world)]
    one = subprocess.run(
        [*base, str(tmp_path / "one"), names], env=env, capture_output=True, text=True, timeout=240
    )
    assert one.returncode == 0, one.stderr[-3000:]
    port = str(29600 + os.getpid() % 300)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", port]
    two = subprocess.run([*torchrun, *base[1:], str(tmp_path / "two"), names], env=env, capture_output=True,
                         text=True, timeout=240)  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    single = json.loads((tmp_path / "one" / "summary.json").read_text())
    double = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert single == double
    parts = sorted(p.name for p in (tmp_path / "two" / "hm" / "val.parts").glob("predictions*"))
    assert parts == ["predictions.rank0.jsonl", "predictions.rank1.jsonl"]
