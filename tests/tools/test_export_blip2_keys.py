"""The BLIP-2 key table and its tensor rules (pure functions, no model)."""

from __future__ import annotations

import pytest
import torch

from minigpt4.common.errors import CheckpointError
from minigpt4.tools.export.blip2_keys import DERIVED, RULES, to_ours, to_theirs
from minigpt4.tools.export.blip2_weights import (
    POSITION_IDS_KEY,
    fuse_qkv_bias,
    position_ids,
    split_qkv_bias,
    to_minigpt4,
    to_transformers,
)

PAIRS = {
    "visual_encoder.cls_token": "vision_model.embeddings.class_embedding",
    "visual_encoder.patch_embed.proj.weight": "vision_model.embeddings.patch_embedding.weight",
    "visual_encoder.blocks.12.norm1.bias": "vision_model.encoder.layers.12.layer_norm1.bias",
    "visual_encoder.blocks.3.attn.proj.weight": "vision_model.encoder.layers.3.self_attn.projection.weight",
    "visual_encoder.blocks.3.mlp.fc2.bias": "vision_model.encoder.layers.3.mlp.fc2.bias",
    "ln_vision.weight": "vision_model.post_layernorm.weight",
    "Qformer.bert.embeddings.LayerNorm.bias": "qformer.layernorm.bias",
    "Qformer.bert.encoder.layer.4.attention.self.key.weight": "qformer.encoder.layer.4.attention.attention.key.weight",
    "Qformer.bert.encoder.layer.4.crossattention.self.value.bias": (
        "qformer.encoder.layer.4.crossattention.attention.value.bias"
    ),
    "Qformer.bert.encoder.layer.4.crossattention.output.LayerNorm.weight": (
        "qformer.encoder.layer.4.crossattention.output.LayerNorm.weight"
    ),
    "Qformer.bert.encoder.layer.5.output_query.dense.weight": "qformer.encoder.layer.5.output_query.dense.weight",
    "llama_proj.bias": "language_projection.bias",
    "llama_model.model.layers.0.self_attn.q_proj.weight": "language_model.model.layers.0.self_attn.q_proj.weight",
    "llama_model.lm_head.weight": "language_model.lm_head.weight",
}


@pytest.mark.parametrize(("ours", "theirs"), sorted(PAIRS.items()))
def test_renames_both_ways(ours, theirs):
    assert to_theirs(ours).key == theirs
    assert [m.key for m in to_ours(theirs)] == [ours]


def test_qkv_bias_is_fused_and_split():
    key = "vision_model.encoder.layers.7.self_attn.qkv.bias"
    assert to_theirs("visual_encoder.blocks.7.attn.q_bias").key == key
    assert [m.key for m in to_ours(key)] == [
        "visual_encoder.blocks.7.attn.q_bias",
        "visual_encoder.blocks.7.attn.v_bias",
    ]
    q, v = torch.randn(4), torch.randn(4)
    fused = fuse_qkv_bias(q, v)
    assert torch.equal(fused[4:8], torch.zeros(4))
    q2, v2 = split_qkv_bias(key, fused)
    assert torch.equal(q2, q) and torch.equal(v2, v)
    fused[5] = 1.0
    with pytest.raises(CheckpointError, match="key third"):
        split_qkv_bias(key, fused)


def test_every_rule_has_a_kind_and_derived_rows_have_no_target():
    assert all(r.kind for r in RULES)
    assert all(r.theirs == "" for r in RULES if r.kind == DERIVED)


def test_lora_and_unknown_keys_raise():
    with pytest.raises(CheckpointError, match="merge-lora"):
        to_theirs("llama_model.base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")
    with pytest.raises(CheckpointError, match="no row"):
        to_theirs("Qformer.cls.predictions.bias")
    with pytest.raises(CheckpointError, match="no row"):
        to_ours("qformer.embeddings.word_embeddings.weight")


def test_stream_round_trip_pads_vocab_and_rebuilds_position_ids():
    ours = {
        "visual_encoder.blocks.0.attn.q_bias": torch.randn(3),
        "visual_encoder.blocks.0.attn.v_bias": torch.randn(3),
        POSITION_IDS_KEY: position_ids(6),
        "llama_model.lm_head.weight": torch.randn(5, 2),
    }
    theirs = dict(to_transformers(ours.items(), vocab_rows=6))
    assert set(theirs) == {
        "vision_model.encoder.layers.0.self_attn.qkv.bias",
        "language_model.lm_head.weight",
    }
    assert theirs["language_model.lm_head.weight"].shape == (6, 2)
    assert not theirs["language_model.lm_head.weight"][5].any()
    back = dict(to_minigpt4(theirs.items(), vocab_size=5, qformer_max_positions=6))
    assert set(back) == set(ours)
    assert all(torch.equal(back[k], ours[k]) and back[k].dtype == ours[k].dtype for k in ours)


def test_changed_position_ids_and_lonely_bias_raise():
    with pytest.raises(CheckpointError, match="arange"):
        list(to_transformers([(POSITION_IDS_KEY, position_ids(4).flip(-1))], vocab_rows=1))
    with pytest.raises(CheckpointError, match="both are needed"):
        list(to_transformers([("visual_encoder.blocks.0.attn.q_bias", torch.zeros(2))], vocab_rows=1))
