"""A train.py run killed with SIGKILL and resumed writes the same epoch checkpoint as an uninterrupted run:
stage 2 (map-style data) and stage 1 (seeded LAION + CC-SBU webdataset streams, mixed, read by 2 workers)."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from minigpt4.datasets.shapes import generate_world

CONFIG = "train_configs/shapes/minigpt4_stage2.yaml"
STAGE1 = "train_configs/shapes/minigpt4_stage1.yaml"
STAGE2_OPTIONS = ("datasets.cc_sbu_align.batch_size=4",)
STAGE1_OPTIONS = (
    "datasets.laion.batch_size=4",
    "datasets.cc_sbu.batch_size=4",
    "datasets.laion.build_info.seed=0",
    "datasets.cc_sbu.build_info.seed=1",
    "datasets.laion.build_info.shuffle_buffer=16",
    "datasets.cc_sbu.build_info.shuffle_buffer=16",
    "run.num_workers=2",
)


def command(repo_root, out, *extra, config=CONFIG, data_options=STAGE2_OPTIONS):
    options = [
        f"run.output_dir={out}",
        "run.job_id=job",
        "run.max_epoch=2",
        "run.iters_per_epoch=30",
        "run.save_every_steps=5",
        "run.log_freq=5",
        "run.progress_bar=false",
        *data_options,
        "model.vit_ckpt=",  # a random frozen encoder: no quickstart encoder file needed
        *extra,
    ]
    return [
        sys.executable,
        str(repo_root / "train.py"),
        "--cfg-path",
        str(repo_root / config),
        "--options",
        *options,
    ]


def weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("config", "data_options"), [(CONFIG, STAGE2_OPTIONS), (STAGE1, STAGE1_OPTIONS)], ids=["stage2", "stage1"]
)
def test_sigkill_then_resume_is_bit_identical(tmp_path, repo_root, config, data_options):
    generate_world(tmp_path / "world", num_train=40, num_heldout=6)
    env = {**os.environ, "SHAPES_WORLD": str(tmp_path / "world"), "OMP_NUM_THREADS": "1"}

    def command_for(out, *extra):
        return command(repo_root, out, *extra, config=config, data_options=data_options)

    full = subprocess.run(
        command_for(tmp_path / "full"), env=env, capture_output=True, text=True, timeout=600
    )
    assert full.returncode == 0, full.stderr[-3000:]
    reference = weights(tmp_path / "full" / "job" / "checkpoint_1.pth")

    run_dir = tmp_path / "cut" / "job"
    process = subprocess.Popen(
        command_for(tmp_path / "cut"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while (
        not (run_dir / "checkpoint_step35.pth").exists() and process.poll() is None and time.time() < deadline
    ):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (run_dir / "checkpoint_1.pth").exists()
    steps = sorted(
        run_dir.glob("checkpoint_step*.pth"), key=lambda p: int(p.stem.removeprefix("checkpoint_step"))
    )
    latest = steps[-1]
    assert int(latest.stem.removeprefix("checkpoint_step")) >= 35

    resumed = subprocess.run(
        command_for(tmp_path / "cut", f"run.resume_ckpt_path={latest}"),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    result = weights(run_dir / "checkpoint_1.pth")
    assert set(result) == set(reference)
    different = [name for name in reference if not torch.equal(reference[name], result[name])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[0]}"
