"""`export hf-blip2` from official-format files, and the real-size Vicuna-7B layout on the meta device.

The fixture (tests/fixtures/parity/models/minigpt4_vicuna0) holds a tiny MiniGPT-4 in the official layout
(`eva_vit.pth`, BLIP-2 `qformer.pth`, `llm/`, `minigpt_ckpt.pth`) and the ids the official code generated.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file
from transformers import Blip2ForConditionalGeneration, Blip2Processor

from minigpt4.tools.export.command import build_from_config, main
from minigpt4.tools.export.hf_blip2 import manifest
from minigpt4.tools.manifest import build_on_meta

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "parity" / "models" / "minigpt4_vicuna0"


def fixture_eval_yaml(tmp_path: Path) -> Path:
    """An eval YAML (as eval_configs/minigpt4_eval.yaml) pointing at the fixture's official files."""
    config = json.loads((FIXTURE / "config.json").read_text())
    vit, bert = config["vit_kwargs"], config["qformer_bert_config"]
    model = {
        "arch": "minigpt4",
        "model_type": "pretrain_vicuna0",
        "image_size": vit["img_size"],
        "vit_patch_size": vit["patch_size"],
        "vit_width": vit["embed_dim"],
        "vit_depth": vit["depth"],
        "vit_num_heads": vit["num_heads"],
        "vit_mlp_ratio": vit["mlp_ratio"],
        "vit_precision": "fp32",
        "vit_ckpt": str(FIXTURE / "eva_vit.pth"),
        "q_former_model": str(FIXTURE / "qformer.pth"),
        "qformer_hidden_size": bert["hidden_size"],
        "qformer_num_layers": bert["num_hidden_layers"],
        "qformer_num_heads": bert["num_attention_heads"],
        "qformer_intermediate_size": bert["intermediate_size"],
        "qformer_max_position_embeddings": bert["max_position_embeddings"],
        "num_query_token": config["num_query_token"],
        "llama_model": str(FIXTURE / "llm"),
        "llama_dtype": "float32",
        "ckpt": str(FIXTURE / "minigpt_ckpt.pth"),
        "low_resource": True,  # as the official eval YAML; the export builds the plain LLM anyway
        "end_sym": "###",
        "prompt_template": "###Human: {} ###Assistant: ",
    }
    eval_processor = {"name": "blip2_image_eval", "image_size": vit["img_size"]}
    document = {
        "model": model,
        "datasets": {"cc_sbu_align": {"vis_processor": {"train": eval_processor}}},
        "run": {"task": "image_text_pretrain"},
    }
    path = tmp_path / "fixture_eval.yaml"
    OmegaConf.save(OmegaConf.create(document), path)
    return path


def test_official_files_to_transformers(tmp_path, capsys):
    torch.set_num_threads(1)
    logging.getLogger("minigpt4").setLevel(logging.ERROR)
    out = tmp_path / "hf"
    assert main(["hf-blip2", "--cfg-path", str(fixture_eval_yaml(tmp_path)), "--out", str(out)]) == 0, (
        capsys.readouterr()
    )
    hf_model, info = Blip2ForConditionalGeneration.from_pretrained(str(out), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    processor = Blip2Processor.from_pretrained(str(out))

    inputs = json.loads((FIXTURE / "inputs.json").read_text())
    expected = json.loads((FIXTURE / "expected.json").read_text())
    tensors = load_file(str(FIXTURE / "expected.safetensors"))
    images = load_file(str(FIXTURE / "inputs.safetensors"))["images"]  # (B, 3, 42, 42), already normalised
    questions = inputs["gen"]["questions"]
    prompts = [
        processor.tokenizer.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": q}]}],
            add_generation_prompt=True,
            tokenize=False,
        )
        for q in questions
    ]
    num_query = hf_model.config.num_query_tokens
    official_prompts = [
        p.replace("<ImageHere>", "<image>" * num_query) for p in inputs["gen"]["prompts_fed_to_generate"]
    ]
    assert prompts == official_prompts

    ours_model, _ = build_from_config(str(fixture_eval_yaml(tmp_path)), None)
    worst = worst_ours = 0.0
    for row, prompt in enumerate(prompts):
        ids = processor.tokenizer(prompt, return_tensors="pt").input_ids
        with torch.no_grad():
            logits = hf_model(pixel_values=images[row : row + 1], input_ids=ids).logits
            # the official model's context for this prompt (gen.inputs_embeds is left-padded with zeros)
            attention = tensors["gen.attention_mask"][row].bool()
            context = tensors["gen.inputs_embeds"][row][attention][None]
            llm = hf_model.language_model
            official = llm(inputs_embeds=context).logits  # same LLaMA weights, official context
            new_ids = hf_model.generate(
                pixel_values=images[row : row + 1], input_ids=ids, max_new_tokens=8, do_sample=False
            )
            embeds, _ = ours_model.encode_img(images[row : row + 1])
            ours = ours_model.llama_model(
                inputs_embeds=ours_model.get_context_emb(
                    inputs["gen"]["prompts_fed_to_generate"][row], [embeds]
                )
            ).logits
        vocab = ours.shape[-1]  # the export adds the image token's row
        worst = max(worst, (logits - official)[..., :vocab].abs().max().item())
        worst_ours = max(worst_ours, (logits[..., :vocab] - ours).abs().max().item())
        assert new_ids[0, ids.shape[1] :].tolist() == expected["gen"]["output_ids"][row][1:]
    print(f"official fixture: max abs logit diff vs official {worst:.3g}, vs ours {worst_ours:.3g}")
    assert worst <= 1e-5 and worst_ours <= 1e-5


LLAMA_7B = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 32000,
            "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
            "max_position_embeddings": 2048, "rms_norm_eps": 1e-6, "bos_token_id": 1, "eos_token_id": 2,
            "pad_token_id": 0, "tie_word_embeddings": False}  # fmt: skip


@pytest.mark.slow
def test_vicuna7b_manifest_matches_transformers_on_meta(tmp_path):
    llm = tmp_path / "vicuna-7b"
    llm.mkdir()
    (llm / "config.json").write_text(json.dumps(LLAMA_7B))  # config only: no tokenizer, no weights
    cfg = OmegaConf.load(
        Path(__file__).resolve().parents[2] / "minigpt4/configs/models/minigpt4/pretrain_vicuna0.yaml"
    )
    cfg.model.update(model_type="pretrain_vicuna0", llama_model=str(llm), ckpt="")
    model = build_on_meta(cfg.model)
    config, shapes = manifest(model)
    with torch.device("meta"):
        reference = Blip2ForConditionalGeneration(config)
    expected = {key: list(t.shape) for key, t in reference.state_dict().items()}
    assert sorted(set(shapes) - set(expected)) == [] and sorted(set(expected) - set(shapes)) == []
    assert shapes == expected
    print(f"vicuna-7b hf-blip2 manifest: {len(shapes)} tensors, all matching")
    assert shapes["language_model.lm_head.weight"] == [32001, 4096]  # + the image token's row
    assert config.image_token_index == 32000 and config.num_query_tokens == 32
    assert shapes["vision_model.encoder.layers.38.self_attn.qkv.bias"] == [3 * 1408]
    assert "vision_model.encoder.layers.39.layer_norm1.weight" not in shapes
