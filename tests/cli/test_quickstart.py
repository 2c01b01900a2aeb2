"""Quickstart pieces: the results table, publishing runs with their encoder to the zoo."""

import pytest
import torch
from omegaconf import OmegaConf

from minigpt4.api.locate import DIR_ENV
from minigpt4.cli.quickstart import VIT_FILE, ZOO_NAMES, publish_to_zoo, results_table


def test_results_table_lists_each_metric_beside_its_chance():
    results = {"caption_acc": 0.98, "caption_acc_chance": 0.07, "vqa_acc": 0.9, "vqa_acc_chance": 0.25}
    results |= {"grounding_acc50": 0.8, "grounding_acc50_chance": 0.0, "seconds": 412.3}
    table = results_table(results)
    assert "| 0.980 | 0.070 |" in table and "| 0.800 | 0.000 |" in table and "412 s" in table


def test_published_runs_carry_their_encoder(tmp_path, monkeypatch):
    monkeypatch.setenv(DIR_ENV, str(tmp_path / "weights"))
    encoder = tmp_path / "out" / VIT_FILE
    encoder.parent.mkdir()
    torch.save({"cls_token": torch.ones(1, 1, 4)}, encoder)
    checkpoints = {}
    for job_id in ZOO_NAMES:
        run = tmp_path / "out" / job_id
        run.mkdir()
        OmegaConf.save({"model": {"arch": "minigpt_v2", "vit_ckpt": str(encoder)}}, run / "config.yaml")
        torch.save({"model": {}}, run / "checkpoint_best.pth")
        checkpoints[job_id] = run / "checkpoint_best.pth"
    published = publish_to_zoo(checkpoints)
    encoder.unlink()  # the zoo copies must not depend on the run folder

    assert len(published) == 2
    for folder in published:
        config = OmegaConf.load(folder / "config.yaml")
        assert config.model.vit_ckpt == str((folder / VIT_FILE).resolve())
        assert torch.equal(
            torch.load(config.model.vit_ckpt, weights_only=True)["cls_token"], torch.ones(1, 1, 4)
        )
        assert (folder / "checkpoint_best.pth").is_file()


def test_thread_count_follows_omp_num_threads_when_set(monkeypatch):
    import os

    from minigpt4.cli.quickstart import thread_count

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert thread_count() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert thread_count() == max(1, os.cpu_count() or 1)
    monkeypatch.setenv("OMP_NUM_THREADS", "many")  # not a count: one thread per core, as unset
    assert thread_count() == max(1, os.cpu_count() or 1)


POLICY_WHEN_TORCH_LOADS = """
import os, runpy, sys

class SeeTorchLoad:
    def find_spec(self, name, path, target=None):
        if name == "torch":
            print("GOMP_SPINCOUNT when torch loads:", os.environ.get("GOMP_SPINCOUNT"))
            sys.meta_path.remove(self)
        return None

sys.meta_path.insert(0, SeeTorchLoad())
sys.argv = ["quickstart", "--help"]
runpy.run_module("minigpt4.quickstart", run_name="__main__")
"""


@pytest.mark.parametrize(("given", "expected"), [(None, "10000"), ("300000", "300000")])
def test_quickstart_shortens_the_openmp_spin_before_torch_loads(given, expected):
    """OpenMP reads the policy once, when torch loads: set later it would change nothing."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    if given:
        env["GOMP_SPINCOUNT"] = given
    done = subprocess.run(
        [sys.executable, "-c", POLICY_WHEN_TORCH_LOADS], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"GOMP_SPINCOUNT when torch loads: {expected}" in done.stdout


def test_only_minigpt4_runs_every_minigpt4_v2_step_and_skips_minigpt5(tmp_path, monkeypatch):
    """`--only minigpt4`: world, encoder, each stage in order, both evaluations, results.json with the seconds of
    every step; the MiniGPT-5 part never starts. The steps themselves are recorded, not run."""
    import json
    from types import SimpleNamespace

    from minigpt4.cli import quickstart, quickstart_minigpt5
    from minigpt4.datasets import shapes

    monkeypatch.setenv("MINIGPT4_QUICKSTART", str(tmp_path / "out"))
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path)
    calls = []
    monkeypatch.setattr(shapes, "generate_world", lambda root, **kw: calls.append("world"))
    monkeypatch.setattr(quickstart, "pretrain_image_encoder", lambda: calls.append("encoder"))
    monkeypatch.setattr(
        quickstart,
        "train_stage",
        lambda cfg, job, init, extra: calls.append(job) or tmp_path / job / "best.pth",
    )
    monkeypatch.setattr(
        quickstart, "evaluate_captions", lambda ckpt: calls.append("captions") or (0.97, 0.07)
    )
    score = SimpleNamespace(score=95.0, chance=25.0)
    monkeypatch.setattr(
        quickstart, "evaluate_v2", lambda ckpt: calls.append("v2") or {"gqa": score, "refcoco": score}
    )
    monkeypatch.setattr(quickstart, "publish_to_zoo", lambda checkpoints: [tmp_path / "zoo" / "a"])
    monkeypatch.setattr(
        quickstart_minigpt5, "run_minigpt5", lambda *a, **k: pytest.fail("MiniGPT-5 part ran")
    )

    assert quickstart.main(["--only", "minigpt4"]) == 0
    jobs = [job for _, job, _ in quickstart.STAGES]
    assert calls == ["world", "encoder", *jobs, "captions", "v2"]
    results = json.loads((quickstart.output_root() / "results.json").read_text())
    assert "minigpt5" not in results and results["caption_acc"] == 0.97
    assert set(results["seconds_by_step"]) == {"world", "encoder", *jobs, "evaluate_captions", "evaluate_v2"}
