import json

import pytest
import torch

from minigpt4.common.errors import TrainingError
from minigpt4.runners.runner import RunnerBase
from tests.runners.toy import ToyDataset, ToyModel, ToyTask, toy_cfg


def train(tmp_path, model=None, **run):
    torch.manual_seed(0)
    model = model or ToyModel()
    runner = RunnerBase(toy_cfg(tmp_path, **run), ToyTask(), model, {"toy": {"train": ToyDataset()}})
    return runner, runner.train()


def load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def test_epochs_write_official_checkpoints_logs_and_plot(tmp_path):
    train(tmp_path)
    run_dir = tmp_path / "out" / "job"
    checkpoint = load(run_dir / "checkpoint_1.pth")
    assert {"model", "optimizer", "config", "scaler", "epoch"} <= set(checkpoint)
    assert set(checkpoint["model"]) == {"llama_proj.weight", "llama_proj.bias"}  # trainable only
    assert checkpoint["epoch"] == 1 and checkpoint["global_step"] == 12
    assert (run_dir / "checkpoint_0.pth").is_file() and (run_dir / "checkpoint_1.safetensors").is_file()
    steps = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == list(range(1, 13))
    assert {"loss", "lr", "samples_per_s", "memory_mb"} <= set(steps[0])
    assert sum(s["loss"] for s in steps[-3:]) < sum(s["loss"] for s in steps[:3])
    assert (run_dir / "loss_lr.png").stat().st_size > 1000
    assert (run_dir / "config.yaml").is_file()
    assert not list(run_dir.glob(".*tmp*"))  # atomic writes leave no temporary file


def test_resume_mid_epoch_gives_identical_weights(tmp_path):
    _, _ = train(tmp_path / "full")
    reference = load(tmp_path / "full" / "out" / "job" / "checkpoint_1.pth")["model"]

    # an interrupted run: stops after 4 steps, having saved checkpoint_step4 (as if killed right after)
    train(tmp_path / "cut", save_every_steps=2, max_iters=4)
    step_ckpt = tmp_path / "cut" / "out" / "job" / "checkpoint_step4.pth"
    assert load(step_ckpt)["iter_in_epoch"] == 4

    torch.manual_seed(123)  # a resumed process starts from different RNG state
    runner = RunnerBase(
        toy_cfg(tmp_path / "cut", resume_ckpt_path=str(step_ckpt)),
        ToyTask(),
        ToyModel(),
        {"toy": {"train": ToyDataset()}},
    )
    runner.train()
    resumed = load(tmp_path / "cut" / "out" / "job" / "checkpoint_1.pth")["model"]
    for name, tensor in reference.items():
        assert torch.equal(tensor, resumed[name]), name


def test_gradient_accumulation_steps_every_n(tmp_path):
    model = ToyModel()
    before = model.llama_proj.weight.detach().clone()
    runner = RunnerBase(
        toy_cfg(tmp_path, accum_grad_iters=3, max_iters=2), ToyTask(), model, {"toy": {"train": ToyDataset()}}
    )
    runner.train()
    assert torch.equal(model.llama_proj.weight, before)  # 2 < 3 iterations: no optimizer step yet


def test_non_finite_loss_stops_with_step_and_keeps_last_checkpoint(tmp_path):
    model = ToyModel()
    model.poison = True  # NaN at iteration 2 of every epoch
    with pytest.raises(TrainingError, match=r"loss is nan at epoch 0, iteration 2 \(global step 3\)"):
        train(tmp_path, model=model)
    assert not list((tmp_path / "out" / "job").glob("checkpoint_*.pth"))


def test_too_small_dataset_is_a_clear_error(tmp_path):
    from minigpt4.common.errors import ConfigError

    runner = RunnerBase(toy_cfg(tmp_path), ToyTask(), ToyModel(), {"toy": {"train": ToyDataset(n=3)}})
    with pytest.raises(ConfigError, match="fewer samples per rank than its batch_size"):
        runner.train()
