"""eval_scripts/eval_minigpt5.py end to end on a small shapes-world VIST split with a tiny random MiniGPT-5 in the
quickstart's place: summary with the judge's FID/IS and story FID, OpenING rates; resume after a kill."""

from __future__ import annotations

import json

import pytest

from minigpt4.cli import evaluate_minigpt5
from minigpt4.datasets.shapes.scene import Scene, ShapeObject, draw
from minigpt4.evaluation import minigpt5_eval
from tests.conversation.tiny_minigpt5 import write_fake_run

STORIES = {
    "7": [("red", "circle"), ("blue", "square"), ("red", "circle")],
    "8": [("green", "square"), ("yellow", "triangle")],
}


@pytest.fixture
def world(tmp_path, monkeypatch):
    folder = tmp_path / "world" / "vist"
    (folder / "images").mkdir(parents=True)
    data, mapping, image_id = {}, {}, 100
    for story, steps in STORIES.items():
        data[story] = []
        for index, (colour, shape) in enumerate(steps):
            image_id += 1
            scene = Scene(image_id, "val", 32, 32, [ShapeObject(1, colour, shape, [4, 4, 28, 28])])
            draw(scene).save(folder / "images" / f"{image_id}.png")
            mapping[str(image_id)] = f"images/{image_id}.png"
            data[story].append(
                {"caption": f"a {colour} {shape}.", "image_id": image_id, "sequence_index": index}
            )
    (folder / "val_cleaned.json").write_text(json.dumps(data))
    (folder / "val_image_mapping.json").write_text(json.dumps(mapping))
    monkeypatch.setenv("MINIGPT4_QUICKSTART", str(tmp_path / "quickstart"))
    write_fake_run(tmp_path / "quickstart" / "minigpt5_stage2")
    return folder


def run(world, save, *extra):
    return evaluate_minigpt5.main([
        "--cfg-path", "eval_configs/minigpt5_shapes_eval.yaml", "--options",
        f"evaluation.data_path={world / 'val_cleaned.json'}", f"run.save_path={save}", "evaluation.batch_size=2",
        "generation.force_generation=true", "generation.num_inference_steps=2", "generation.max_new_tokens=4",
        *extra,
    ])  # fmt: skip


def test_shapes_eval_end_to_end(world, tmp_path, capsys):
    save = tmp_path / "eval"
    assert run(world, save) == 0
    summary = json.loads((save / "summary.json").read_text())["minigpt5-vist/val"]
    assert summary["n"] == 5 and summary["images_generated"] == 5
    assert summary["no_image_rate"] == 0.0 and 0.0 <= summary["no_text_rate"] <= 1.0
    for key in ("fid", "is", "story_fid", "judge_colour_acc", "judge_shape_acc"):
        assert summary[key] is not None, key
    assert summary["stories_scored"] == 2
    assert "clip" in summary["not_computed"]  # no CLIP weights for this world: said, not faked
    printed = capsys.readouterr().out
    assert "| minigpt5-vist/val | fid |" in printed and (save / "summary.md").is_file()


def test_resume_after_a_kill_does_not_redo_finished_samples(world, tmp_path, monkeypatch):
    save = tmp_path / "eval"
    written: list[list[str]] = []
    original = minigpt5_eval.PredictionStore.append

    def append_then_die(self, records):
        records = list(records)
        original(self, records)
        written.append([r["key"] for r in records])
        if len(written) == 1:
            raise KeyboardInterrupt  # killed after the first batch reached the disk

    monkeypatch.setattr(minigpt5_eval.PredictionStore, "append", append_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(world, save)
    first = set(written[0])
    assert len(first) == 2
    assert run(world, save) == 0
    redone = {key for batch in written[1:] for key in batch}
    assert not (first & redone) and len(first | redone) == 5
    predictions = json.loads((save / "minigpt5-vist" / "val.json").read_text())["predictions"]
    assert sorted(p["key"] for p in predictions) == sorted(first | redone)


def test_missing_data_file_is_a_sentence(tmp_path, capsys):
    code = evaluate_minigpt5.main(["--cfg-path", "eval_configs/minigpt5_shapes_eval.yaml", "--options",
                                   f"evaluation.data_path={tmp_path / 'none_cleaned.json'}"])  # fmt: skip
    assert code == 1 and "none_cleaned.json" in capsys.readouterr().err


@pytest.mark.slow
def test_two_processes_share_the_split_and_rank0_scores(world, tmp_path):
    """torchrun --nproc-per-node 2 (gloo, CPU): each rank generates its share, rank 0 merges and scores alone
    (torchmetrics must not wait for a rank that already finished)."""
    import os
    import subprocess
    import sys

    from minigpt4.common.paths import REPO_ROOT

    save = tmp_path / "eval2"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "eval_scripts/eval_minigpt5.py",
         "--cfg-path", "eval_configs/minigpt5_shapes_eval.yaml", "--options",
         f"evaluation.data_path={world / 'val_cleaned.json'}", f"run.save_path={save}", "evaluation.batch_size=1",
         "generation.force_generation=true", "generation.num_inference_steps=2", "generation.max_new_tokens=4"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    parts = sorted((save / "minigpt5-vist" / "val.parts").glob("predictions.rank*.jsonl"))
    assert [len(p.read_text().splitlines()) for p in parts] == [3, 2]  # 5 samples dealt round-robin
    assert json.loads((save / "summary.json").read_text())["minigpt5-vist/val"]["n"] == 5
