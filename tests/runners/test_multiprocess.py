"""Two gloo processes on CPU train the same weights as one process over the same global batch."""

import os
import subprocess
import sys

import pytest
import torch

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port"]


def run(args, port=None, cwd=None):
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"}
    command = ([*TORCHRUN, str(port)] if port else [sys.executable]) + [
        "-m",
        "tests.runners.toy_train",
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def weights(path):
    return torch.load(path / "out" / "job" / "checkpoint_0.pth", map_location="cpu", weights_only=True)[
        "model"
    ]


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_processes_match_one(tmp_path, strategy):
    run([str(tmp_path / "single"), "4", strategy])
    run(
        [str(tmp_path / "double"), "2", strategy],
        port=29500 + (os.getpid() % 500) + (7 if strategy == "fsdp" else 0),
    )
    single, double = weights(tmp_path / "single"), weights(tmp_path / "double")
    assert set(single) == set(double)
    for name in single:
        torch.testing.assert_close(double[name], single[name], rtol=1e-5, atol=1e-6)
    run_dir = tmp_path / "double" / "out" / "job"
    # only rank 0 writes: one log line per logged step, one checkpoint per epoch
    lines = (run_dir / "log.jsonl").read_text().splitlines()
    assert len(lines) == 4
    assert sorted(p.name for p in run_dir.glob("checkpoint_*")) == [
        "checkpoint_0.pth",
        "checkpoint_0.safetensors",
    ]
