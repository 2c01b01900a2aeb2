"""MiniGPT-5's official Lightning `.ckpt` files: read with weights_only; a file carrying a callable is refused
and nothing in it runs."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from minigpt4.common.errors import CheckpointError
from minigpt4.models.checkpoint import lightning_key, our_key, read_state_dict


@pytest.mark.parametrize(
    ("stage", "name"), [("stage1", "stage1.ckpt"), ("stage2", "stage1.ckpt"), ("stage2", "stage2.ckpt")]
)
def test_fixture_ckpts_read_their_state_dict(parity_dir, stage, name):
    import json

    folder = parity_dir / "minigpt5" / stage
    state = read_state_dict(folder / name)
    # the stage1.ckpt of a stage-2 set is the stage-1 set's file: its key list is in the stage-1 config
    keys_from = parity_dir / "minigpt5" / name.split(".")[0]
    config = json.loads((keys_from / "config.json").read_text())
    assert sorted(state) == sorted(config[f"{name.split('.')[0]}_ckpt_state_dict_keys"])
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    if name == "stage1.ckpt":
        assert state["model.llama_model.model.embed_tokens.weight"].shape[0] == config["sp_vocab_size"] + 9


class CreatesFile:
    """Unpickling this would call os.system and create a file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_ckpt_with_a_pickled_callable_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "was_run"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"fc.0.weight": torch.zeros(2, 2)}, "callbacks": CreatesFile(marker)}, path)
    with pytest.raises(CheckpointError) as info:
        read_state_dict(path, what="MiniGPT-5 stage-1 checkpoint")
    assert str(path) in str(info.value) and "refused" in str(info.value)
    assert isinstance(info.value.__cause__, pickle.UnpicklingError)
    assert not marker.exists()


def test_lightning_names_map_both_ways():
    pairs = {
        "llama_model.model.embed_tokens.weight": "model.llama_model.model.embed_tokens.weight",
        "output_mapper.fc.0.weight": "fc.0.weight",
        "output_mapper.t2i_decoder_prompt": "t2i_decoder_prompt",
        "output_mapper.llm_to_t2i_mapping.encoder.norm.bias": "llm_to_t2i_mapping.encoder.norm.bias",
        "image_decoder.unet.conv_in.weight": "unet.conv_in.weight",
    }
    for ours, official in pairs.items():
        assert lightning_key(ours) == official and our_key(official) == ours
