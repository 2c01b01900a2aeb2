"""Official checkpoint formats (made tiny) round-trip through our loaders; bad files give clear errors."""

from __future__ import annotations

import pytest
import torch

from minigpt4.common.errors import CheckpointError
from minigpt4.models.checkpoint import official_key, read_state_dict, trainable_state_dict, write_state_dict
from tests.models.conftest import build_tiny


def test_official_key_spelling():
    ours = "llama_model.base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight"
    assert official_key(ours) == "llama_model.base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    base = "llama_model.base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight"
    assert official_key(base) == "llama_model.base_model.model.model.layers.0.self_attn.q_proj.weight"
    assert official_key("llama_proj.weight") == "llama_proj.weight"


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_minigpt_checkpoint_round_trip_both_lora_spellings(tmp_path, suffix):
    source = build_tiny("v2", seed=1, freeze_vit=True, freeze_llm=True)
    state = trainable_state_dict(source)  # official (peft 0.2.0) spelling, trainable tensors only
    assert set(state) == {k for k in state if k.startswith("llama_proj") or ".lora_" in k}
    assert not any(".default." in k for k in state)
    path = tmp_path / f"ckpt{suffix}"
    write_state_dict(path, state)
    for spelling in ("official", "current"):
        target = build_tiny("v2", seed=2, freeze_vit=True, freeze_llm=True)
        file_state = read_state_dict(path)
        if spelling == "current":
            file_state = {k.replace(".lora_A.", ".lora_A.default.").replace(".lora_B.", ".lora_B.default."): v
                          for k, v in file_state.items()}  # fmt: skip
            write_state_dict(path.with_name("current.pth"), file_state)
            target.load_checkpoint(str(path.with_name("current.pth")))
        else:
            target.load_checkpoint(str(path))
        for key, value in trainable_state_dict(target).items():
            torch.testing.assert_close(value, state[key], rtol=0, atol=0)


def test_pth_files_load_with_weights_only(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": {"x": torch.zeros(1)}, "fn": print}, path)
    with pytest.raises(CheckpointError, match="cannot read"):
        read_state_dict(path)


def test_shape_mismatch_is_a_clear_error(tmp_path):
    model = build_tiny("llama2", freeze_vit=True, freeze_llm=True)
    path = tmp_path / "ckpt.pth"
    write_state_dict(path, {"llama_proj.weight": torch.zeros(64, 100), "llama_proj.bias": torch.zeros(64)})
    with pytest.raises(
        CheckpointError, match=r"llama_proj.weight has shape \[64, 100\] but the model expects \[64, 256\]"
    ):
        model.load_checkpoint(str(path))


def test_missing_trainable_tensor_and_unexpected_key_are_errors(tmp_path):
    model = build_tiny("llama2", freeze_vit=True, freeze_llm=True)
    path = tmp_path / "ckpt.pth"
    write_state_dict(path, {"llama_proj.weight": torch.zeros(64, 256)})
    with pytest.raises(CheckpointError, match=r"trainable tensor.*llama_proj\.bias"):
        model.load_checkpoint(str(path))
    model.load_checkpoint(str(path), allow_missing=True)
    assert torch.count_nonzero(model.llama_proj.weight) == 0
    write_state_dict(path, {**trainable_state_dict(model), "llama_projj.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match=r"unexpected key.*llama_projj\.weight"):
        model.load_checkpoint(str(path))


def test_old_transformers_buffers_are_ignored(tmp_path):
    model = build_tiny("llama2", freeze_vit=True, freeze_llm=True)
    state = trainable_state_dict(model)
    state["llama_model.model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.zeros(8)
    write_state_dict(tmp_path / "c.pth", state)
    model.load_checkpoint(str(tmp_path / "c.pth"))


def test_eva_vit_flat_dict_with_extra_block_and_pos_interpolation(tmp_path):
    source = build_tiny("llama2", seed=3)
    state = dict(source.visual_encoder.state_dict())
    state["blocks.2.norm1.weight"] = torch.ones(64)  # a block beyond the built depth, ignored as officially
    write_state_dict(tmp_path / "eva.safetensors", state)
    target = build_tiny("llama2", seed=4, vit_ckpt=str(tmp_path / "eva.safetensors"))
    torch.testing.assert_close(target.visual_encoder.state_dict(), source.visual_encoder.state_dict())
    torch.save({k: v for k, v in state.items() if not k.startswith("blocks.2")}, tmp_path / "eva.pth")
    bigger = build_tiny("llama2", image_size=224, vit_ckpt=str(tmp_path / "eva.pth"))
    assert bigger.visual_encoder.pos_embed.shape == (1, 1 + 256, 64)
    torch.testing.assert_close(bigger.visual_encoder.pos_embed[:, 0], source.visual_encoder.pos_embed[:, 0])


def test_blip2_checkpoint_loads_qformer_and_ignores_text_path(tmp_path):
    source = build_tiny("vicuna0", seed=5)
    blip2 = {
        k: v
        for k, v in source.state_dict().items()
        if k.startswith(("Qformer.", "query_tokens", "ln_vision."))
    }
    blip2["Qformer.cls.predictions.bias"] = torch.zeros(3)
    blip2["Qformer.bert.encoder.layer.0.intermediate.dense.weight"] = torch.zeros(2, 2)
    blip2["t5_proj.weight"] = torch.zeros(2, 2)
    torch.save({"model": blip2}, tmp_path / "blip2.pth")
    target = build_tiny("vicuna0", seed=6, q_former_model=str(tmp_path / "blip2.pth"))
    torch.testing.assert_close(target.query_tokens, source.query_tokens)
    torch.testing.assert_close(target.ln_vision.weight, source.ln_vision.weight)
    torch.testing.assert_close(target.Qformer.state_dict(), source.Qformer.state_dict())
    blip2["Qformer.bert.encoder.layer.0.attention.self.query.weight"] = torch.zeros(5, 5)
    torch.save({"model": blip2}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="shape"):
        build_tiny("vicuna0", q_former_model=str(tmp_path / "bad.pth"))


def test_url_qformer_is_refused_with_a_fix(tmp_path):
    with pytest.raises(CheckpointError, match="never download"):
        build_tiny("vicuna0", q_former_model="https://example.org/blip2.pth")
