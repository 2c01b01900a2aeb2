"""save_pretrained / from_pretrained: a whole model as one folder (config + safetensors)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from minigpt4.api.hub import CONFIG_NAME, from_pretrained, save_pretrained
from minigpt4.api.inference import clear_cache, inference_model
from minigpt4.api.loaders import load_zoo_model
from minigpt4.common.errors import CheckpointError

from .conftest import TINY_ENTRIES, fixture_weights


@pytest.mark.parametrize("variant", ["minigpt_v2", "minigpt4_vicuna0"])
def test_round_trip_keeps_every_tensor_and_the_answers(variant, tmp_path, image_file):
    model = load_zoo_model(TINY_ENTRIES[variant].name, fixture_weights(variant), device="cpu")
    folder = save_pretrained(
        model, tmp_path / "shared-model", inference={"question": "What is this?"}, max_shard_size="200KB"
    )
    assert (folder / CONFIG_NAME).is_file() and (folder / "llm" / "tokenizer.model").is_file()
    assert (
        len(list(folder.glob("model-*.safetensors"))) > 1
        and (folder / "model.safetensors.index.json").is_file()
    )
    assert not list((folder / "llm").glob("*.safetensors"))  # LLM weights live once, in the model shards

    loaded = from_pretrained(folder)
    original_state, loaded_state = model.state_dict(), loaded.state_dict()
    assert set(original_state) == set(loaded_state)
    for key, tensor in original_state.items():
        assert torch.equal(loaded_state[key], tensor), key
    assert loaded.minigpt4_inference["question"] == "What is this?"

    clear_cache()
    from_folder = inference_model(str(folder), image_file, max_new_tokens=5)
    original = inference_model(model, image_file, "What is this?", max_new_tokens=5)
    assert from_folder["pred_caption"] == original["pred_answer"]  # saved default question was used
    clear_cache()


def test_folder_is_self_contained_and_movable(tmp_path):
    model = load_zoo_model("test-tiny-llama2", fixture_weights("minigpt4_llama2"), device="cpu")
    save_pretrained(model, tmp_path / "a")
    (tmp_path / "a").rename(tmp_path / "b")
    config_text = (tmp_path / "b" / CONFIG_NAME).read_text()
    assert "minigpt_ckpt.pth" not in config_text and "eva_vit.pth" not in config_text
    loaded = from_pretrained(tmp_path / "b")
    assert torch.equal(loaded.llama_proj.weight, model.llama_proj.weight)


def test_missing_tensor_is_an_error(tmp_path):
    model = load_zoo_model("test-tiny-llama2", fixture_weights("minigpt4_llama2"), device="cpu")
    folder = save_pretrained(model, tmp_path / "m")
    state = load_file(folder / "model.safetensors")
    state.pop("llama_proj.bias")
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=r"llama_proj\.bias"):
        from_pretrained(folder)


def test_not_a_model_folder(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({}))
    with pytest.raises(CheckpointError, match="not a saved MiniGPT model folder"):
        from_pretrained(tmp_path)


def test_shapes_zoo_name_loads_a_training_run_folder(tmp_path, monkeypatch, image_file):
    """A quickstart run folder (config.yaml + checkpoint_N.pth, the runner's layout) in the weights folder."""
    from omegaconf import OmegaConf

    from minigpt4.api.loaders import load_model
    from minigpt4.models.checkpoint import trainable_state_dict

    model = load_model("minigpt_v2", "tiny", is_eval=True)  # random tiny model, everything trainable
    run = tmp_path / "weights" / "minigpt-v2_tiny_shapes"
    run.mkdir(parents=True)
    OmegaConf.save({"run": {"task": "image_text_pretrain"}, "model": model.minigpt4_config,
                    "preprocess": model.minigpt4_preprocess}, run / "config.yaml")  # fmt: skip
    torch.save({"model": trainable_state_dict(model), "epoch": 2}, run / "checkpoint_2.pth")
    monkeypatch.setenv("MINIGPT4_WEIGHTS_DIR", str(tmp_path / "weights"))

    loaded = load_zoo_model("minigpt-v2_tiny_shapes", device="cpu")
    for key, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], tensor), key
    clear_cache()
    assert inference_model("minigpt-v2_tiny_shapes", image_file, max_new_tokens=4) == inference_model(
        model, image_file, max_new_tokens=4
    )
    clear_cache()
