import subprocess
import sys
import textwrap
from typing import ClassVar

import pytest
from omegaconf import OmegaConf

from minigpt4.common.config import Config, merge_config, options_to_dotlist
from minigpt4.common.errors import ConfigError

TRAIN_RUN = """
run:
  task: image_text_pretrain
  lr_sched: linear_warmup_cosine_lr
  init_lr: 1.0e-4
  min_lr: 1.0e-5
  max_epoch: 1
  output_dir: out
"""


def write(tmp_path, text, name="cfg.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_model_default_is_merged_under_user_values(tmp_path):
    path = write(
        tmp_path,
        """
        model:
          arch: minigpt4
          model_type: pretrain_llama2
          image_size: 112
        run:
          task: image_text_pretrain
    """,
    )
    cfg = merge_config(path)
    assert cfg.model.image_size == 112  # user wins
    assert cfg.model.has_qformer is False  # from the pretrain_llama2 default
    assert cfg.preprocess.vis_processor.eval.name == "blip2_image_eval"  # default's preprocess is carried
    assert list(cfg) == ["run", "model", "preprocess"]


def test_options_win_and_both_option_forms_work(tmp_path):
    path = write(tmp_path, "model: {arch: minigpt4, model_type: pretrain_vicuna0}\nrun: {init_lr: 1.0}\n")
    assert merge_config(path, ["run.init_lr=5e-5"]).run.init_lr == 5e-5
    assert merge_config(path, ["run.init_lr", "0.5", "model.ckpt", "/x.pth"]).model.ckpt == "/x.pth"
    assert options_to_dotlist(["a", "1", "b", "2"]) == ["a=1", "b=2"]
    with pytest.raises(ConfigError, match="--options"):
        options_to_dotlist(["a", "1", "b"])


def test_model_type_override_does_not_change_default_yaml(tmp_path):
    path = write(tmp_path, "model: {arch: minigpt4, model_type: pretrain_vicuna0}\n")
    cfg = merge_config(path, ["model.model_type=pretrain_llama2"])
    assert cfg.model.model_type == "pretrain_llama2"
    assert cfg.model.num_query_token == 32 and "has_qformer" not in cfg.model  # still the vicuna0 defaults


def test_evaluation_datasets_are_copied_verbatim(tmp_path):
    path = write(
        tmp_path,
        """
        model: {arch: minigpt_v2, model_type: pretrain}
        evaluation_datasets:
          anything_goes: {eval_file_path: /a, batch_size: 3}
    """,
    )
    assert OmegaConf.to_container(merge_config(path).evaluation_datasets) == {
        "anything_goes": {"eval_file_path": "/a", "batch_size": 3}
    }


def test_official_yamls_merge(repo_root):
    for path in sorted((repo_root / "train_configs").glob("*.yaml")) + sorted(
        (repo_root / "eval_configs").glob("*.yaml")
    ):
        if path.name.startswith("minigpt5_") and path.name.endswith("_eval.yaml"):
            continue  # eval_minigpt5.py's own format (model.zoo + metrics), checked in tests/evaluation
        merged = merge_config(path)
        assert merged.model.arch in ("minigpt4", "minigpt_v2", "minigpt5"), path


@pytest.mark.parametrize(
    ("text", "options", "expected"),
    [
        (
            TRAIN_RUN.replace("output_dir", "outptu_dir")
            + "model: {arch: minigpt4, model_type: pretrain_vicuna0}\n",
            [],
            "run.outptu_dir is not a key of `run` (did you mean run.output_dir?)",
        ),
        (
            TRAIN_RUN + "model: {arch: minigpt4, model_type: pretrain_vicuna0}\nmodle: {}\n",
            [],
            "modle is not a known section (did you mean model?)",
        ),
        (
            TRAIN_RUN + "model: {arch: minigpt4, model_type: pretrain_vicuna0}\n",
            ["run.max_epoch=three"],
            "--options: run.max_epoch = 'three' has the wrong type: expected an integer, got str",
        ),
        (
            TRAIN_RUN + "model: {arch: minigpt4, model_type: pretrain_vicuna0}\n",
            ["run.cache_image_features=often"],
            "--options: run.cache_image_features = 'often' has the wrong type: expected true or false, got str",
        ),
        (
            TRAIN_RUN + "model: {arch: minigpt4, model_type: pretrain_vicuna0}\n",
            ["run.length_bucket_batches=1.5"],
            "--options: run.length_bucket_batches = 1.5 has the wrong type: expected an integer, got float",
        ),
        (
            TRAIN_RUN + "model: {arch: minigpt4, model_type: pretrain_vicuna0}\n",
            ["run.compile_image_encodr=true"],
            "run.compile_image_encodr is not a key of `run` (did you mean run.compile_image_encoder?)",
        ),
        (
            TRAIN_RUN + "model: {arch: minigpt4, model_type: pretrain_vicuna0, freeze_vit: maybe}\n",
            [],
            "model.freeze_vit = 'maybe' has the wrong type: expected true or false, got str",
        ),
        (
            TRAIN_RUN.replace("  init_lr: 1.0e-4\n", "")
            + "model: {arch: minigpt4, model_type: pretrain_vicuna0}\n",
            [],
            "run.init_lr is required for train but missing",
        ),
        (
            TRAIN_RUN + "model: {arch: minigpt4, model_type: pretrain_vicuna0, llama_modle: x}\n",
            [],
            "model.llama_modle is not a key of `model` (did you mean model.llama_model?)",
        ),
    ],
)
def test_validation_messages(tmp_path, text, options, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        Config.from_path(path, options)
    assert expected in str(err.value)
    assert str(path) in str(err.value) or expected.startswith("--options")


def test_unknown_arch_and_model_type_suggest(tmp_path):
    with pytest.raises(
        ConfigError, match=r"model.arch 'minigpt_v3' is not a known model \(did you mean 'minigpt_v2'\?\)"
    ):
        merge_config(write(tmp_path, "model: {arch: minigpt_v3, model_type: pretrain}\n"))
    with pytest.raises(
        ConfigError,
        match=r"model_type 'pretrain_vicuna' is not a type of 'minigpt4' \(did you mean 'pretrain_vicuna0'\?\)",
    ):
        merge_config(write(tmp_path, "model: {arch: minigpt4, model_type: pretrain_vicuna}\n"))


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        merge_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not a valid YAML"):
        merge_config(write(tmp_path, "model: [unclosed\n"))


def test_train_py_reports_typo_without_traceback(tmp_path, repo_root):
    path = write(
        tmp_path,
        TRAIN_RUN.replace("output_dir", "outptu_dir")
        + "model: {arch: minigpt4, model_type: pretrain_vicuna0}\ndatasets: {}\n",
    )
    result = subprocess.run(
        [sys.executable, str(repo_root / "train.py"), "--cfg-path", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode != 0
    assert "did you mean run.output_dir?" in result.stderr
    assert "Traceback" not in result.stderr


def _shipped(repo_root, folder):
    return sorted((repo_root / folder).rglob("*.yaml"))


def test_every_shipped_train_config_validates(repo_root):
    paths = _shipped(repo_root, "train_configs")
    assert len(paths) >= 10  # 5 official + 2 v2 reconstructions + shapes stages
    for path in paths:
        cfg = Config.from_path(path, purpose="train")
        schedules = ("linear_warmup_cosine_lr", "linear_warmup_linear_decay_lr")  # the latter: MiniGPT-5
        assert cfg.datasets_cfg and cfg.run_cfg.lr_sched in schedules, path


def test_every_shipped_eval_config_validates(repo_root):
    for path in _shipped(repo_root, "eval_configs"):
        if path.name.startswith("minigpt5_") and path.name.endswith("_eval.yaml"):
            continue  # eval_minigpt5.py's own format, checked in tests/evaluation/test_minigpt5_eval.py
        purpose = "eval" if "benchmark" in path.name else "chat"
        assert Config.from_path(path, purpose=purpose).model_cfg.arch in ("minigpt4", "minigpt_v2"), path


def test_user_registered_model_declares_its_default_yaml(tmp_path):
    from minigpt4.common.registry import registry

    default = write(tmp_path, "model: {arch: my_model, width: 3}\npreprocess: {}\n", "my_default.yaml")

    @registry.register_model("my_model")
    class MyModel:
        PRETRAINED_MODEL_CONFIG_DICT: ClassVar[dict] = {"base": str(default)}

    try:
        cfg = merge_config(write(tmp_path, "model: {arch: my_model, model_type: base}\n"))
        assert cfg.model.width == 3
    finally:
        registry.mapping["model"].pop("my_model")


def test_shapes_eval_config_builds_the_model_the_shapes_finetune_trains(repo_root):
    train = Config.from_path(
        repo_root / "train_configs/shapes/minigptv2_finetune.yaml", purpose="train"
    ).model_cfg
    evaluation = Config.from_path(repo_root / "eval_configs/shapes_benchmark_evaluation.yaml", purpose="eval")
    for key in ("arch", "model_type", "vit_width", "vit_depth", "vit_ckpt", "freeze_vit", "llm_config"):
        assert evaluation.model_cfg.get(key) == train.get(key), key
