"""MiniGPT-5 through train.py: a stage-1 run killed and resumed mid-epoch ends bit-identical to an uninterrupted
one; stage 2 starts from the checkpoint stage 1 wrote; samples (text + PNG) land in the run directory."""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from minigpt4.cli.train import run_training
from minigpt4.datasets.shapes import generate_world

RANDOM_TINY = [
    "model.llama_model=assets/tiny_llama",
    "model.sd_model=assets/tiny_sd",
    "model.vit_ckpt=",
    "model.ckpt=",
    "model.vit_width=64",
    "model.vit_depth=2",
    "run.progress_bar=false",
    "run.log_freq=2",
]


def stage1_command(repo_root, out, *extra):
    options = [
        *RANDOM_TINY,
        f"run.output_dir={out}",
        "run.job_id=job",
        "run.iters_per_epoch=12",
        "run.accum_grad_iters=2",  # a checkpoint mid-accumulation window is never written: steps only
        "run.save_every_steps=4",
        "run.sample_every_steps=6",
        "run.sample_inference_steps=2",
        "run.sample_max_new_tokens=6",
        "datasets.cc3m.batch_size=2",
        *extra,
    ]
    cfg = repo_root / "train_configs/shapes/minigpt5_stage1.yaml"
    return [sys.executable, str(repo_root / "train.py"), "--cfg-path", str(cfg), "--options", *options]


def weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


@pytest.mark.slow
def test_stage1_resume_is_bit_exact_and_stage2_starts_from_it(tmp_path, repo_root, monkeypatch):
    generate_world(tmp_path / "world", num_train=40, num_heldout=6)
    env = {**os.environ, "SHAPES_WORLD": str(tmp_path / "world"), "OMP_NUM_THREADS": "1"}
    full = subprocess.run(
        stage1_command(repo_root, tmp_path / "full"), env=env, capture_output=True, text=True, timeout=900
    )
    assert full.returncode == 0, full.stderr[-3000:]
    full_dir = tmp_path / "full" / "job"
    reference = weights(full_dir / "checkpoint_0.pth")
    # only trainable tensors (+ buffers): no frozen LLM, ViT or SD weight is written
    assert not any(k.startswith(("image_decoder.", "visual_encoder.")) for k in reference)
    assert "llama_model.model.layers.0.self_attn.q_proj.weight" not in reference
    assert "output_mapper.fc.0.weight" in reference and "llama_model.lm_head.weight" in reference
    sample = json.loads((full_dir / "samples" / "step_0000006.json").read_text())
    assert sample["step"] == 6 and sample["prompt"] and "text" in sample
    assert sample["image"] is None or (full_dir / "samples" / sample["image"]).is_file()

    cut_dir = tmp_path / "cut" / "job"
    process = subprocess.Popen(
        stage1_command(repo_root, tmp_path / "cut"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 600
    while (
        not (cut_dir / "checkpoint_step4.pth").exists() and process.poll() is None and time.time() < deadline
    ):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (cut_dir / "checkpoint_0.pth").exists()
    latest = max(
        cut_dir.glob("checkpoint_step*.pth"), key=lambda p: int(p.stem.removeprefix("checkpoint_step"))
    )
    resumed = subprocess.run(
        stage1_command(repo_root, tmp_path / "cut", f"run.resume_ckpt_path={latest}"),
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    result = weights(cut_dir / "checkpoint_0.pth")
    assert set(result) == set(reference)
    different = [name for name in reference if not torch.equal(reference[name], result[name])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[0]}"

    # stage 2 from the stage-1 checkpoint the first run wrote
    monkeypatch.setenv("SHAPES_WORLD", str(tmp_path / "world"))
    stage1_file = full_dir / "checkpoint_0.pth"
    options = [
        *RANDOM_TINY,
        f"model.stage1_ckpt={stage1_file}",
        f"run.output_dir={tmp_path / 'stage2'}",
        "run.job_id=job",
        "run.iters_per_epoch=2",
        "datasets.vist.batch_size=2",
    ]
    cfg = repo_root / "train_configs/shapes/minigpt5_stage2.yaml"
    from minigpt4.common.config import Config
    from minigpt4.common.registry import registry

    model = registry.get_task_class("minigpt5_generation")().build_model(
        Config(argparse.Namespace(cfg_path=str(cfg), options=options))
    )
    state = model.state_dict()
    fc = "output_mapper.fc.0.weight"  # frozen in stage 2: exactly stage 1's
    assert torch.equal(state[fc], reference[fc])
    for name in ("embed_tokens", "lm_head"):  # stage 1's rows on both peft copies
        stage1_rows = next(v for k, v in reference.items() if name in k)
        copies = [k for k in state if name in k and k.endswith("weight")]
        assert len(copies) == 2 and all(torch.equal(state[k], stage1_rows) for k in copies), copies
    summary = run_training(argparse.Namespace(cfg_path=str(cfg), options=options))
    stage2 = weights(summary["last_checkpoint"])
    assert any("lora_A" in k for k in stage2) and fc not in stage2
    assert "output_mapper.llm_to_t2i_mapping.encoder.norm.weight" in stage2
