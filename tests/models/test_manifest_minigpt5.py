"""MiniGPT-5 at real size (Vicuna-7B + SD-2.1-base shapes) on the meta device: its trainable keys are exactly the
official checkpoint key lists of spec §4 (stage 1: vocabulary matrices + fc + queries + mapper; stage 2: LoRA q/v
+ modules_to_save copies + mapper)."""

from __future__ import annotations

import json

import pytest

from minigpt4.tools.manifest import main
from tests.models.test_manifest import llm_dir

ENCODER = ["self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
           "self_attn.out_proj.bias", "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
           "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"]  # fmt: skip
DECODER = [*ENCODER, "multihead_attn.in_proj_weight", "multihead_attn.in_proj_bias",
           "multihead_attn.out_proj.weight", "multihead_attn.out_proj.bias", "norm3.weight", "norm3.bias"]  # fmt: skip
MAPPER = (
    [f"llm_to_t2i_mapping.encoder.layers.{i}.{p}" for i in range(4) for p in ENCODER]
    + [f"llm_to_t2i_mapping.decoder.layers.{i}.{p}" for i in range(4) for p in DECODER]
    + [f"llm_to_t2i_mapping.{side}.norm.{p}" for side in ("encoder", "decoder") for p in ("weight", "bias")]
)
STAGE1 = [
    "model.llama_model.model.embed_tokens.weight",
    "model.llama_model.lm_head.weight",
    *[f"fc.{i}.{p}" for i in (0, 2) for p in ("weight", "bias")],
    "t2i_decoder_prompt",
    *MAPPER,
]
PEFT = "model.llama_model.base_model.model."
STAGE2 = [
    *[
        f"{PEFT}model.layers.{i}.self_attn.{m}_proj.lora_{ab}.default.weight"
        for i in range(32)
        for m in ("q", "v")
        for ab in ("A", "B")
    ],
    f"{PEFT}model.embed_tokens.modules_to_save.default.weight",
    f"{PEFT}lm_head.modules_to_save.default.weight",
    *MAPPER,
]


def run(capsys, stage, llama, extra=()):
    cfg = f"minigpt4/configs/models/minigpt5/{stage}_vicuna0.yaml"
    status = main(
        [
            "--cfg-path",
            cfg,
            *extra,
            "--options",
            f"model.llama_model={llama}",
            "model.sd_model=assets/sd21_base",
        ]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    return json.loads(out)


@pytest.mark.slow
@pytest.mark.parametrize(("stage", "expected"), [("stage1", STAGE1), ("stage2", STAGE2)])
def test_trainable_keys_equal_the_official_checkpoint_keys(tmp_path, capsys, stage, expected):
    keys = run(capsys, stage, llm_dir(tmp_path, "llama7b"), ["--trainable"])
    assert keys == sorted(expected)


@pytest.mark.slow
def test_real_size_shapes(tmp_path, capsys):
    shapes = run(capsys, "stage1", llm_dir(tmp_path, "llama7b"))
    assert shapes["model.llama_model.model.embed_tokens.weight"] == [32009, 4096]
    assert shapes["model.llama_model.lm_head.weight"] == [32009, 4096]
    assert shapes["fc.0.weight"] == [1024, 4096] and shapes["fc.2.weight"] == [1024, 1024]
    assert shapes["t2i_decoder_prompt"] == [1, 77, 1024]
    assert shapes["llm_to_t2i_mapping.encoder.layers.3.linear1.weight"] == [4096, 1024]
    assert shapes["model.query_tokens"] == [1, 32, 768]
    assert shapes["unet.conv_in.weight"] == [320, 4, 3, 3]
    assert shapes["unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"] == [320, 1024]
    assert shapes["vae.encoder.conv_in.weight"] == [128, 3, 3, 3]
