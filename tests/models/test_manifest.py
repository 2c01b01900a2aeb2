"""Real-size official configs build on the meta device with the official key names and shapes (anatomy §5.2)."""

from __future__ import annotations

import json

import pytest

from minigpt4.tools.manifest import main

LLAMA = {
    "vicuna13b": {
        "hidden_size": 5120,
        "intermediate_size": 13824,
        "num_hidden_layers": 40,
        "num_attention_heads": 40,
    },
    "llama7b": {
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
    },
}


def llm_dir(tmp_path, name):
    folder = tmp_path / name
    folder.mkdir()
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 32000,
              "max_position_embeddings": 2048, "rms_norm_eps": 1e-6, "bos_token_id": 1, "eos_token_id": 2,
              "pad_token_id": 0, "tie_word_embeddings": False, **LLAMA[name]}  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    return folder  # config.json only: no tokenizer, no weights


def run_manifest(capsys, cfg_path, llama_dir):
    status = main(["--cfg-path", cfg_path, "--options", f"model.llama_model={llama_dir}", "model.ckpt="])
    out = capsys.readouterr().out
    assert status == 0, out
    return json.loads(out)


def eva_checks(shapes, grid):
    assert shapes["visual_encoder.pos_embed"] == [1, 1 + grid * grid, 1408]
    assert shapes["visual_encoder.cls_token"] == [1, 1, 1408]
    assert shapes["visual_encoder.patch_embed.proj.weight"] == [1408, 3, 14, 14]
    assert shapes["visual_encoder.blocks.38.attn.qkv.weight"] == [4224, 1408]
    assert shapes["visual_encoder.blocks.38.attn.q_bias"] == [1408]
    assert shapes["visual_encoder.blocks.38.mlp.fc1.weight"] == [6144, 1408]
    assert "visual_encoder.blocks.39.norm1.weight" not in shapes
    assert shapes["ln_vision.weight"] == [1408]


@pytest.mark.slow
def test_vicuna13b_stage2(tmp_path, capsys):
    shapes = run_manifest(
        capsys, "train_configs/minigpt4_stage2_finetune.yaml", llm_dir(tmp_path, "vicuna13b")
    )
    eva_checks(shapes, 16)
    assert shapes["llama_proj.weight"] == [5120, 768] and shapes["llama_proj.bias"] == [5120]
    assert shapes["query_tokens"] == [1, 32, 768]
    assert shapes["Qformer.bert.embeddings.position_ids"] == [1, 512]
    assert shapes["Qformer.bert.encoder.layer.10.crossattention.self.key.weight"] == [768, 1408]
    assert shapes["Qformer.bert.encoder.layer.11.intermediate_query.dense.weight"] == [3072, 768]
    assert not any(k.startswith("Qformer.bert.encoder.layer.11.crossattention") for k in shapes)
    assert not any(".intermediate.dense" in k or "word_embeddings" in k or "Qformer.cls" in k for k in shapes)
    assert shapes["llama_model.model.layers.39.self_attn.q_proj.weight"] == [5120, 5120]
    assert shapes["llama_model.lm_head.weight"] == [32000, 5120]


def test_llama2_stage2(tmp_path, capsys):
    shapes = run_manifest(
        capsys, "train_configs/minigpt4_llama2_stage2_finetune.yaml", llm_dir(tmp_path, "llama7b")
    )
    eva_checks(shapes, 16)
    assert shapes["llama_proj.weight"] == [4096, 5632]
    assert not any(k.startswith(("Qformer", "query_tokens")) for k in shapes)


@pytest.mark.slow
def test_minigpt_v2_finetune(tmp_path, capsys):
    shapes = run_manifest(capsys, "train_configs/minigptv2_finetune.yaml", llm_dir(tmp_path, "llama7b"))
    eva_checks(shapes, 32)
    assert shapes["llama_proj.weight"] == [4096, 5632]
    lora = {k: v for k, v in shapes.items() if ".lora_" in k}
    assert len(lora) == 128 and sum(a * b for a, b in lora.values()) == 33_554_432
    assert shapes["llama_model.base_model.model.model.layers.31.self_attn.v_proj.lora_A.weight"] == [64, 4096]
    assert shapes["llama_model.base_model.model.model.layers.31.self_attn.v_proj.lora_B.weight"] == [4096, 64]
    assert shapes["llama_model.base_model.model.model.layers.0.self_attn.q_proj.weight"] == [4096, 4096]
    assert shapes["llama_model.base_model.model.lm_head.0.weight"] == [32000, 4096]


@pytest.mark.parametrize("cfg", ["eval_configs/minigptv2_eval.yaml", "eval_configs/minigpt4_eval.yaml"])
def test_eval_configs_build(tmp_path, capsys, cfg):
    shapes = run_manifest(capsys, cfg, llm_dir(tmp_path, "llama7b"))
    assert "llama_proj.weight" in shapes
