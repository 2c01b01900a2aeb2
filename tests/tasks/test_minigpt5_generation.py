"""Task `minigpt5_generation`: builds the model before its datasets, trains on the model's own loss, and gives the
official optimizer groups and schedule."""

import argparse

import pytest
import torch

from minigpt4.common.config import Config
from minigpt4.common.errors import ConfigError
from minigpt4.common.optims import LinearWarmupLinearDecayLRScheduler
from minigpt4.common.registry import registry
from minigpt4.datasets.shapes import generate_world

RANDOM_TINY = [  # the shapes configs with random weights (no quickstart outputs needed)
    "model.llama_model=assets/tiny_llama",
    "model.sd_model=assets/tiny_sd",
    "model.vit_ckpt=",
    "model.ckpt=",
    "model.vit_width=64",
    "model.vit_depth=2",
]


@pytest.fixture(scope="module")
def world(tmp_path_factory, monkeypatch_module):
    root = tmp_path_factory.mktemp("world")
    generate_world(root, num_train=40, num_heldout=6)
    monkeypatch_module.setenv("SHAPES_WORLD", str(root))
    return root


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def config(repo_root, stage, *extra):
    path = repo_root / f"train_configs/shapes/minigpt5_stage{stage}.yaml"
    options = [*RANDOM_TINY, "model.stage1_ckpt=", *extra]
    return Config(argparse.Namespace(cfg_path=str(path), options=options), purpose="train")


@pytest.fixture(scope="module")
def stage1(repo_root, world):
    cfg = config(repo_root, 1, "datasets.cc3m.batch_size=4")
    task = registry.get_task_class(cfg.run_cfg.task).setup_task(cfg=cfg)
    datasets = task.build_datasets(cfg)
    return cfg, task, task.build_model(cfg), datasets


def test_model_is_built_once_and_gives_the_builders_its_tokenizer(stage1):
    cfg, task, model, datasets = stage1
    assert task.build_model(cfg) is model
    train = datasets["cc3m"]["train"]
    sample = train[0]
    assert (
        int(sample.labels[sample.labels != -100][0]) == model.first_voken_id
    )  # stage 1: source, then vokens


def test_task_loss_is_the_models_forward_loss(stage1):
    _, task, model, datasets = stage1
    train = datasets["cc3m"]["train"]
    batch = dict(train.collater([train[i] for i in range(4)]))
    torch.manual_seed(3)
    task_loss = task.train_step(model, batch)
    torch.manual_seed(3)
    expected = model.compute_losses(batch)
    assert torch.equal(task_loss, expected.loss)
    assert expected.image_loss is not None and expected.caption_loss is not None  # stage 1: all three losses
    weights = model.loss_settings
    total = (
        weights.text_weight * expected.text_loss
        + weights.image_weight * expected.image_loss
        + weights.caption_weight * expected.caption_loss
    )
    torch.testing.assert_close(task_loss, total)


def test_stage1_optimizer_gives_the_mapper_its_lr_scale(stage1):
    cfg, task, model, _ = stage1
    cfg.run_cfg.mapper_lr_scale = 10
    optimizer = task.build_optimizer(model, cfg.run_cfg)
    mapper = {id(p) for p in model.output_mapper.parameters()}
    by_scale = {}
    for group in optimizer.param_groups:
        for param in group["params"]:
            by_scale[id(param)] = group["lr_scale"]
    assert {by_scale[i] for i in mapper} == {10.0}
    vocab = [id(p) for p in model.vocabulary_weights()]
    assert {by_scale[i] for i in vocab} == {1.0}
    assert set(by_scale) == {id(p) for p in model.parameters() if p.requires_grad}
    assert optimizer.defaults["eps"] == cfg.run_cfg.adam_eps
    assert all(group["weight_decay"] == cfg.run_cfg.weight_decay for group in optimizer.param_groups)


def test_task_refuses_other_datasets_and_models(repo_root, world):
    cfg = config(repo_root, 1)
    task = registry.get_task_class("minigpt5_generation").setup_task(cfg=cfg)
    cfg.config.datasets["laion"] = cfg.config.datasets.pop("cc3m")
    with pytest.raises(ConfigError, match=r"datasets\.laion is not a MiniGPT-5 dataset"):
        task.build_datasets(cfg)


def test_linear_schedule_matches_transformers_per_optimizer_step():
    from transformers import get_linear_schedule_with_warmup

    accum, iters_per_epoch, epochs, warmup = 3, 12, 2, 2
    param = torch.nn.Parameter(torch.zeros(1))
    reference_optimizer = torch.optim.AdamW([param], lr=1.0)
    reference = get_linear_schedule_with_warmup(
        reference_optimizer, warmup, epochs * iters_per_epoch // accum
    )
    optimizer = torch.optim.AdamW([{"params": [param], "lr_scale": 10.0}], lr=1.0)
    ours = LinearWarmupLinearDecayLRScheduler(
        optimizer, epochs, iters_per_epoch, init_lr=1.0, warmup_steps=warmup, accum_grad_iters=accum
    )
    for epoch in range(epochs):
        for step in range(iters_per_epoch):
            lr = ours.step(epoch, step)
            if (step + 1) % accum == 0:  # the iteration whose end steps the optimizer
                assert lr == pytest.approx(reference_optimizer.param_groups[0]["lr"])
                assert optimizer.param_groups[0]["lr"] == pytest.approx(10 * lr)
                reference_optimizer.step()
                reference.step()


def test_shipped_minigpt5_configs_validate_and_reject_typos(repo_root, world):
    for name in ("minigpt5_stage1_cc3m", "minigpt5_stage2_vist", "minigpt5_stage2_mmdialog"):
        cfg = Config.from_path(repo_root / f"train_configs/{name}.yaml", purpose="train")
        assert cfg.run_cfg.task == "minigpt5_generation" and cfg.run_cfg.warmup_steps == 1000
        assert cfg.run_cfg.init_lr == 2e-5 and cfg.run_cfg.adam_eps == 1e-8
        # official effective batch 48 on 4 GPUs
        batch = next(iter(cfg.datasets_cfg.values())).batch_size
        assert batch * cfg.run_cfg.accum_grad_iters * 4 == 48
    stage1 = Config.from_path(repo_root / "train_configs/minigpt5_stage1_cc3m.yaml", purpose="train")
    assert stage1.run_cfg.mapper_lr_scale == 10 and stage1.model_cfg.model_type == "stage1_vicuna0"
    with pytest.raises(ConfigError, match=r"run.mapper_lr_scal is not a key of `run` \(did you mean"):
        config(repo_root, 1, "run.mapper_lr_scal=3")
    with pytest.raises(ConfigError, match=r"run\.sample_every_steps = 'often' has the wrong type"):
        config(repo_root, 1, "run.sample_every_steps=often")
