"""LLM loading: random init without weights, dtypes, 8-bit on CPU, LoRA (official wrapping, merge)."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import torch
from omegaconf import OmegaConf
from transformers import LlamaForCausalLM

from minigpt4.common.errors import ConfigError
from minigpt4.models.llm import CastOutputToFloat, LlmSettings, LoraSettings, load_llm


@pytest.fixture(scope="module")
def tiny_llm_dir(repo_root, tmp_path_factory):
    """The shipped tiny LLaMA directory plus saved random weights."""
    target = tmp_path_factory.mktemp("tiny_llm")
    shutil.copytree(repo_root / "minigpt4" / "assets" / "tiny_llama", target, dirs_exist_ok=True)
    torch.manual_seed(0)
    model = load_llm(LlmSettings(path=str(target), dtype="float32"))
    model.save_pretrained(target)
    return target


def test_directory_without_weights_builds_random_llm_and_says_so(repo_root, caplog):
    with caplog.at_level(logging.DEBUG, logger="minigpt4.models.llm"):
        model = load_llm(
            LlmSettings(path=str(repo_root / "minigpt4" / "assets" / "tiny_llama"), dtype="bfloat16")
        )
    assert (
        "random weights" in caplog.text
    )  # a warning only when model.ckpt does not hold the LLM (test_models)
    assert model.dtype == torch.bfloat16 and model.config._attn_implementation == "sdpa"
    assert not any(p.requires_grad for p in model.parameters())


def test_weights_are_loaded_when_present(tiny_llm_dir):
    first = load_llm(LlmSettings(path=str(tiny_llm_dir), dtype="float32"))
    second = load_llm(LlmSettings(path=str(tiny_llm_dir), dtype="float16"))
    torch.testing.assert_close(second.lm_head.weight.float(), first.lm_head.weight, atol=1e-3, rtol=1e-3)


def test_missing_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"llama_model"):
        load_llm(LlmSettings(path=str(tmp_path)))


def test_8bit_tiny_llm_loads_and_runs_on_cpu(tiny_llm_dir):
    model = load_llm(LlmSettings(path=str(tiny_llm_dir), dtype="float16", low_resource=True))
    assert model.model.layers[0].self_attn.q_proj.weight.dtype == torch.int8
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[1, 5, 6, 7]])).logits
    assert logits.shape == (1, 4, model.config.vocab_size) and torch.isfinite(logits).all()


def test_8bit_with_lora_trains_lora_only(tiny_llm_dir):
    lora = LoraSettings(r=4, alpha=8, dropout=0.0)
    model = load_llm(LlmSettings(path=str(tiny_llm_dir), dtype="float16", low_resource=True, lora=lora))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    model(input_ids=torch.tensor([[1, 5, 6]])).logits.float().sum().backward()


def test_lora_wraps_lm_head_like_peft_020_and_merges_to_same_logits(tiny_llm_dir):
    lora = LoraSettings(r=4, alpha=16, dropout=0.05, target_modules=("q_proj", "v_proj"))
    model = load_llm(LlmSettings(path=str(tiny_llm_dir), dtype="float32", lora=lora)).eval()
    keys = model.state_dict().keys()
    assert "base_model.model.lm_head.0.weight" in keys
    assert isinstance(model.base_model.model.lm_head, CastOutputToFloat)
    assert "base_model.model.model.layers.1.self_attn.v_proj.lora_B.default.weight" in keys
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.1)  # peft inits B at zero; make the adapter non-trivial
        ids = torch.tensor([[1, 20, 30, 40, 50]])
        before = model(input_ids=ids).logits
        merged = model.merge_and_unload()
        assert isinstance(merged, LlamaForCausalLM)
        after = merged(input_ids=ids).logits
    assert not torch.allclose(
        before, load_llm(LlmSettings(path=str(tiny_llm_dir), dtype="float32"))(input_ids=ids).logits
    )
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)


def test_low_resource_without_weights_is_refused(repo_root):
    with pytest.raises(ConfigError, match="low_resource"):
        load_llm(LlmSettings(path=str(repo_root / "minigpt4" / "assets" / "tiny_llama"), low_resource=True))


def test_4bit_tiny_llm_loads_and_runs_on_cpu(repo_root, tmp_path):
    # bitsandbytes' CPU 4-bit kernels need output sizes divisible by 32: widen the MLP from 172 to 192
    shutil.copytree(repo_root / "minigpt4" / "assets" / "tiny_llama", tmp_path, dirs_exist_ok=True)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "intermediate_size": 192}))
    load_llm(LlmSettings(path=str(tmp_path), dtype="float32")).save_pretrained(tmp_path)
    settings = LlmSettings(path=str(tmp_path), dtype="float16", low_resource=True, quantization="4bit")
    model = load_llm(settings)
    assert model.model.layers[0].self_attn.q_proj.weight.dtype == torch.uint8
    with torch.no_grad():
        assert torch.isfinite(model(input_ids=torch.tensor([[1, 5, 6]])).logits).all()


def test_llm_gradient_checkpointing_with_lora_trains(tiny_llm_dir):
    lora = LoraSettings(r=4, alpha=16, dropout=0.0)
    model = load_llm(
        LlmSettings(path=str(tiny_llm_dir), dtype="float32", lora=lora, gradient_checkpointing=True)
    )
    assert model.base_model.model.model.gradient_checkpointing
    model.train()
    embeds = model.get_input_embeddings()(torch.tensor([[1, 5, 6, 7]])).detach().requires_grad_(True)
    model(inputs_embeds=embeds, labels=torch.tensor([[1, 5, 6, 7]])).loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if "lora_A" in n]
    assert grads and all(g is not None for g in grads)


def test_llm_config_resizes_a_random_llm(repo_root):
    overrides = (("hidden_size", 96), ("intermediate_size", 200), ("tie_word_embeddings", True))
    model = load_llm(
        LlmSettings(path=str(repo_root / "minigpt4" / "assets" / "tiny_llama"), config_overrides=overrides)
    )
    assert model.config.hidden_size == 96 and model.model.layers[0].mlp.up_proj.out_features == 200
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()


def test_llm_config_resizing_the_width_resizes_the_attention_heads(repo_root):
    overrides = (("hidden_size", 256), ("num_attention_heads", 8), ("num_key_value_heads", 8))
    model = load_llm(
        LlmSettings(path=str(repo_root / "minigpt4" / "assets" / "tiny_llama"), config_overrides=overrides)
    )
    assert model.config.head_dim == 32  # 256 / 8, not the tiny config's 64 / 4
    assert model.model.layers[0].self_attn.q_proj.out_features == 256


def test_llm_config_with_an_unknown_field_or_real_weights_is_refused(repo_root, tiny_llm_dir):
    assets = str(repo_root / "minigpt4" / "assets" / "tiny_llama")
    with pytest.raises(ConfigError, match="hiden_size are not LlamaConfig fields"):
        load_llm(LlmSettings(path=assets, config_overrides=(("hiden_size", 96),)))
    # `{num_hidden_layers:4}` on a command line is one key 'num_hidden_layers:4': the error says to add a space
    typed = OmegaConf.from_dotlist(["llm_config={num_hidden_layers:4}"]).llm_config
    with pytest.raises(ConfigError, match=r"num_hidden_layers:4 are not .*with a space after each colon"):
        load_llm(LlmSettings(path=assets, config_overrides=tuple(dict(typed).items())))
    with pytest.raises(ConfigError, match=r"holds weights .*hidden_size would not match"):
        load_llm(LlmSettings(path=str(tiny_llm_dir), config_overrides=(("hidden_size", 96),)))
