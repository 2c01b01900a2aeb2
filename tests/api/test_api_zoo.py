"""The zoo lists names; weights are located from arguments, environment, user config, weights folder."""

from __future__ import annotations

import pytest

from minigpt4.api.locate import WeightsNotFoundError, WeightSpec, locate
from minigpt4.api.zoo import get_entry, list_models
from minigpt4.common.errors import RegistryError

SPEC = WeightSpec("ckpt", "demo-ckpt", "demo.pth", "a demo checkpoint", "https://example.org/demo.pth")
OFFICIAL = [
    "minigpt-4_vicuna-7b_caption",
    "minigpt-4_vicuna-13b_caption",
    "minigpt-4_llama2-7b_caption",
    "minigpt-v2_llama2-7b",
]


def test_list_models_has_official_and_shapes_names():
    names = list_models()
    assert set(OFFICIAL) <= set(names) and names == sorted(names)
    shapes = list_models("shapes")
    assert shapes and all("shapes" in name for name in shapes)


def test_every_shapes_name_is_one_the_quickstart_publishes():
    from minigpt4.cli.quickstart import ZOO_NAMES

    assert set(list_models("shapes")) == set(ZOO_NAMES.values())


def test_top_level_package_exposes_the_api_lazily():
    import minigpt4

    assert minigpt4.list_models() == list_models()
    assert callable(minigpt4.inference_model) and callable(minigpt4.load_model_and_preprocess)


def test_unknown_name_suggests_the_closest():
    with pytest.raises(RegistryError, match="did you mean 'minigpt-4_vicuna-7b_caption'"):
        get_entry("minigpt4_vicuna-7b_caption")


def test_official_entries_need_the_official_files():
    vicuna7 = {spec.config_key: spec for spec in get_entry("minigpt-4_vicuna-7b_caption").weights}
    assert (
        vicuna7["ckpt"].filename == "prerained_minigpt4_7b.pth"
    )  # official typo kept: it is the file's name
    assert set(vicuna7) == {"llama_model", "ckpt", "vit_ckpt", "q_former_model"}
    v2 = {spec.config_key for spec in get_entry("minigpt-v2_llama2-7b").weights}
    assert v2 == {"llama_model", "ckpt", "vit_ckpt"}  # no Q-Former


def test_missing_weight_message_says_which_file_and_where(monkeypatch):
    monkeypatch.delenv(SPEC.env_var, raising=False)
    with pytest.raises(WeightsNotFoundError) as caught:
        locate(SPEC)
    message = str(caught.value)
    assert "demo.pth" in message and "https://example.org/demo.pth" in message
    assert "MINIGPT4_WEIGHT_DEMO_CKPT" in message and "weights.yaml" in message


def test_missing_official_vicuna_points_to_the_delta_recipe(monkeypatch):
    spec = next(s for s in get_entry("minigpt-4_vicuna-13b_caption").weights if s.config_key == "llama_model")
    monkeypatch.delenv(spec.env_var, raising=False)
    with pytest.raises(WeightsNotFoundError, match="vicuna-13b-delta-v0") as caught:
        locate(spec)
    assert "apply-delta" in str(caught.value)


def test_lookup_order_argument_env_user_config_folder(tmp_path, monkeypatch):
    files = {name: tmp_path / name / "demo.pth" for name in ("arg", "env", "user", "folder")}
    for path in files.values():
        path.parent.mkdir()
        path.write_bytes(b"x")
    monkeypatch.setenv("MINIGPT4_WEIGHTS_DIR", str(tmp_path / "folder"))
    assert locate(SPEC) == files["folder"]
    config = tmp_path / "weights.yaml"
    config.write_text(f"demo-ckpt: {files['user']}\n")
    monkeypatch.setenv("MINIGPT4_WEIGHTS_CONFIG", str(config))
    assert locate(SPEC) == files["user"]
    monkeypatch.setenv(SPEC.env_var, str(files["env"]))
    assert locate(SPEC) == files["env"]
    assert locate(SPEC, {"demo-ckpt": files["arg"]}) == files["arg"]
    assert locate(SPEC, {"ckpt": files["arg"]}) == files["arg"]  # by config key too


def test_a_wrong_path_is_reported_not_skipped_silently(tmp_path, monkeypatch):
    monkeypatch.setenv(SPEC.env_var, str(tmp_path / "nope.pth"))
    with pytest.raises(
        WeightsNotFoundError, match=r"environment variable MINIGPT4_WEIGHT_DEMO_CKPT -> .*nope\.pth"
    ):
        locate(SPEC)
