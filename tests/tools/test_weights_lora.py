"""LoRA merge: the merged plain-HF LLM gives the same logits as the unmerged peft model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from minigpt4.common.errors import CheckpointError
from minigpt4.tools.weights.lora_merge import collect_lora, merge_lora
from tests.conftest import PARITY

V2_FIXTURE = PARITY / "models" / "minigpt_v2"


def peft_model_with(llm_dir: Path, lora_state: dict[str, torch.Tensor], rank: int, alpha: float):
    """The unmerged reference: LLM + peft LoRA on q_proj/v_proj, LoRA weights loaded in the current spelling."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    base = LlamaForCausalLM.from_pretrained(llm_dir, dtype=torch.float32)
    config = LoraConfig(
        r=rank, lora_alpha=alpha, target_modules=["q_proj", "v_proj"], lora_dropout=0.05, bias="none"
    )
    model = get_peft_model(base, config)
    current = {}
    for key, tensor in lora_state.items():  # official peft-0.2.0 spelling -> current `.default.` spelling
        key = key.removeprefix("llama_model.")
        current[
            key.replace(".lora_A.weight", ".lora_A.default.weight").replace(
                ".lora_B.weight", ".lora_B.default.weight"
            )
        ] = tensor
    missing = model.load_state_dict(current, strict=False)
    assert not missing.unexpected_keys, missing.unexpected_keys
    lora_missing = [k for k in missing.missing_keys if "lora_" in k]
    assert not lora_missing, lora_missing
    return model.eval()


def logits(model, token_ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=token_ids).logits


def hooked_lora_model(llm_dir: Path, lora_state: dict[str, torch.Tensor], scaling: float):
    """Unmerged LoRA without peft: forward hooks add `B(A(x)) * scaling` to q_proj/v_proj outputs."""
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(llm_dir, dtype=torch.float32).eval()
    for target, pair in collect_lora(lora_state).items():
        module = model.get_submodule(target.removesuffix(".weight"))
        module.register_forward_hook(
            lambda _m, inputs, output, a=pair.down, b=pair.up: output + (inputs[0] @ a.T @ b.T) * scaling
        )
    return model


def test_merged_logits_equal_unmerged_lora_forward(tmp_path):
    from transformers import LlamaForCausalLM

    state = torch.load(V2_FIXTURE / "minigpt_ckpt.pth", weights_only=True)["model"]
    merge_lora(V2_FIXTURE / "minigpt_ckpt.pth", V2_FIXTURE / "llm", tmp_path / "merged", lora_alpha=16)
    merged = LlamaForCausalLM.from_pretrained(tmp_path / "merged", dtype=torch.float32).eval()
    token_ids = torch.randint(3, 600, (2, 9), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(
        logits(merged, token_ids), logits(hooked_lora_model(V2_FIXTURE / "llm", state, 16 / 4), token_ids),
        atol=1e-5, rtol=1e-5,
    )  # fmt: skip


@pytest.mark.slow  # importing peft alone takes ~8 s
def test_merge_official_v2_fixture_matches_unmerged_peft(tmp_path):
    from transformers import LlamaForCausalLM

    checkpoint = V2_FIXTURE / "minigpt_ckpt.pth"
    state = torch.load(checkpoint, weights_only=True)["model"]
    lora_state = {k: v for k, v in state.items() if "lora_" in k}
    assert lora_state and all(".default." not in k for k in lora_state)  # peft 0.2.0 spelling

    report = merge_lora(
        checkpoint,
        V2_FIXTURE / "llm",
        tmp_path / "merged",
        lora_alpha=16,
        projection_out=tmp_path / "proj.safetensors",
    )
    assert report.rank == 4 and len(report.merged_keys) == len(lora_state) // 2
    merged = LlamaForCausalLM.from_pretrained(tmp_path / "merged", dtype=torch.float32).eval()
    reference = peft_model_with(V2_FIXTURE / "llm", lora_state, rank=4, alpha=16)
    token_ids = torch.randint(
        3, merged.config.vocab_size, (2, 11), generator=torch.Generator().manual_seed(0)
    )
    ours, expected = logits(merged, token_ids), logits(reference, token_ids)
    plain = logits(
        LlamaForCausalLM.from_pretrained(V2_FIXTURE / "llm", dtype=torch.float32).eval(), token_ids
    )
    assert (expected - plain).abs().max() > 1e-2, (
        "the LoRA must change the logits for the test to mean anything"
    )
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)
    assert set(load_file(tmp_path / "proj.safetensors")) == {"llama_proj.weight", "llama_proj.bias"}
    assert (tmp_path / "merged" / "tokenizer.model").is_file()  # side files travel with the weights


def test_merge_accepts_current_peft_spelling_and_sharded_llm(tmp_path):
    from transformers import LlamaForCausalLM

    llm = LlamaForCausalLM.from_pretrained(V2_FIXTURE / "llm", dtype=torch.float32)
    llm.save_pretrained(tmp_path / "llm", max_shard_size="100KB")
    assert len(list((tmp_path / "llm").glob("model-*.safetensors"))) > 1
    state = torch.load(V2_FIXTURE / "minigpt_ckpt.pth", weights_only=True)["model"]
    renamed = {k.replace(".weight", ".default.weight") if "lora_" in k else k: v for k, v in state.items()}
    torch.save({"model": renamed, "config": {"model": {"lora_alpha": 16}}}, tmp_path / "ckpt.pth")
    report = merge_lora(tmp_path / "ckpt.pth", tmp_path / "llm", tmp_path / "merged", max_shard_size="100KB")
    assert report.alpha == 16  # read from the checkpoint's run config
    direct = merge_lora(V2_FIXTURE / "minigpt_ckpt.pth", V2_FIXTURE / "llm", tmp_path / "merged_single")
    ours = LlamaForCausalLM.from_pretrained(tmp_path / "merged").state_dict()
    single = LlamaForCausalLM.from_pretrained(tmp_path / "merged_single").state_dict()
    assert len(direct.shards) == 1 and len(report.shards) > 1
    for key, tensor in single.items():
        assert torch.equal(ours[key], tensor), key


def test_collect_lora_rejects_half_pairs():
    with pytest.raises(CheckpointError, match="both lora_A and lora_B"):
        collect_lora(
            {"llama_model.base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": torch.zeros(2, 4)}
        )


def test_merge_rejects_wrong_llm(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=600, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4
    )
    LlamaForCausalLM(config).save_pretrained(tmp_path / "other")
    with pytest.raises(CheckpointError, match="different LLM"):
        merge_lora(V2_FIXTURE / "minigpt_ckpt.pth", tmp_path / "other", tmp_path / "out")
    shutil.rmtree(tmp_path / "out", ignore_errors=True)


@pytest.mark.slow  # builds two MiniGPT-v2 models, one through peft (~8 s import)
def test_merged_llm_with_projection_runs_v2_without_lora(tmp_path):
    """merge-lora output + llama_proj file = the same MiniGPT-v2 answers with lora_r: 0 (no peft at inference)."""
    from minigpt4.api.loaders import load_model

    sizes = {
        "vit_width": 48,
        "vit_depth": 2,
        "vit_num_heads": 4,
        "image_size": 56,
        "max_txt_len": 64,
        "chat_template": True,
    }
    merge_lora(
        V2_FIXTURE / "minigpt_ckpt.pth",
        V2_FIXTURE / "llm",
        tmp_path / "llm",
        projection_out=tmp_path / "proj.safetensors",
    )
    with_lora = load_model(
        "minigpt_v2", "pretrain", is_eval=True, lora_r=4, lora_alpha=16, llama_model=str(V2_FIXTURE / "llm"),
        ckpt=str(V2_FIXTURE / "minigpt_ckpt.pth"), vit_ckpt=str(V2_FIXTURE / "eva_vit.pth"), **sizes,
    )  # fmt: skip
    merged = load_model(
        "minigpt_v2", "pretrain", is_eval=True, lora_r=0, llama_model=str(tmp_path / "llm"),
        ckpt=str(tmp_path / "proj.safetensors"), vit_ckpt=str(V2_FIXTURE / "eva_vit.pth"), **sizes,
    )  # fmt: skip
    images = torch.randn(2, 3, 56, 56, generator=torch.Generator().manual_seed(0))
    texts = [
        "<s>[INST] <Img><ImageHere></Img> [vqa] what is it [/INST]",
        "<s>[INST] <Img><ImageHere></Img> hi [/INST]",
    ]
    assert (
        merged.generate_ids(images, texts, max_new_tokens=6).tolist()
        == with_lora.generate_ids(images, texts, max_new_tokens=6).tolist()
    )
