"""Parity of one model variant directory (`tests/fixtures/parity/models/<variant>/`).

The model is built by our `from_config` from the fixture's own config and official-format weight files
(`eva_vit.pth`, `qformer.pth`, `llm/`, `minigpt_ckpt.pth`), then run on the fixture inputs; every expected tensor,
loss, token id, prompt and answer is compared. Sizes, batches and options are read from the files.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch

from minigpt4.tools.parity.report import FamilyReport

ATOL, RTOL = 1e-5, 1e-4
LOSS_ATOL = 1e-5


def model_config(path: Path, config: dict[str, Any], prompt_file: Path) -> dict[str, Any]:
    """The fixture's `from_config` dict with its file names made absolute, plus the tiny sizes as our keys."""
    cfg = dict(config["model_cfg_passed_to_from_config"])
    cfg["llama_model"] = str(path / "llm")
    cfg["ckpt"] = str(path / "minigpt_ckpt.pth") if cfg.get("ckpt") else ""
    cfg["vit_ckpt"] = str(path / "eva_vit.pth")
    cfg["prompt_path"] = str(prompt_file) if cfg.get("prompt_path") else ""
    # the effective value: official MiniGPT4.from_config ignores a configured max_context_len (uses 3800)
    cfg["max_context_len"] = config.get("max_context_len", 3800)
    vit = config["vit_kwargs"]
    cfg.update(
        image_size=vit["img_size"],
        vit_patch_size=vit["patch_size"],
        vit_width=vit["embed_dim"],
        vit_depth=vit["depth"],
        vit_num_heads=vit["num_heads"],
        vit_mlp_ratio=vit["mlp_ratio"],
        llama_dtype=str(config["llama_config"].get("torch_dtype", "float32")),
    )
    if config.get("has_qformer"):
        bert = config["qformer_bert_config"]
        cfg.update(
            q_former_model=str(path / "qformer.pth"),
            qformer_hidden_size=bert["hidden_size"],
            qformer_num_layers=bert["num_hidden_layers"],
            qformer_num_heads=bert["num_attention_heads"],
            qformer_intermediate_size=bert["intermediate_size"],
            qformer_cross_attention_freq=bert["cross_attention_freq"],
            qformer_max_position_embeddings=bert["max_position_embeddings"],
            num_query_token=config["num_query_token"],
        )
    if "lora" in config:
        cfg.update(
            lora_dropout=config["lora"]["lora_dropout"], lora_target_modules=config["lora"]["target_modules"]
        )
    return cfg


def build_model(path: Path, config: dict[str, Any], workdir: Path):
    from minigpt4.common.registry import registry

    prompt_file = workdir / "prompts.txt"
    prompt_file.write_text("\n".join(config.get("train_prompts_file_lines", [])) + "\n", encoding="utf-8")
    cfg = model_config(path, config, prompt_file)
    model = registry.get_model_class(config["arch"]).from_config(cfg)
    return model.eval()


def train_samples(batch: dict[str, Any], images: torch.Tensor) -> dict[str, Any]:
    """The batch dict given to forward; `image` is all fixture images, a list of row indices, or absent/None."""
    samples: dict[str, Any] = {}
    image = batch.get("image")
    if isinstance(image, list):
        samples["image"] = images[torch.tensor(image, dtype=torch.long)]
    elif image is not None:
        samples["image"] = images
    for key in ("answer", "instruction_input", "conv_q", "conv_a", "connect_sym"):
        if key in batch:
            samples[key] = batch[key]
    return samples


def check(path: Path) -> list[FamilyReport]:
    from safetensors.torch import load_file

    config = json.loads((path / "config.json").read_text())
    expected = json.loads((path / "expected.json").read_text())
    inputs = json.loads((path / "inputs.json").read_text())
    tensors = load_file(str(path / "expected.safetensors"))
    images = load_file(str(path / "inputs.safetensors"))[inputs["images"]["key"]]

    reports: list[FamilyReport] = []
    build = FamilyReport("build")
    reports.append(build)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            model = build_model(path, config, Path(tmp))
            build.record(True, "from_config")
        except Exception as exc:
            build.error("from_config", exc)
            return reports
    torch.manual_seed(0)
    with torch.no_grad():
        reports.append(check_vision(model, images, tensors))
        reports.append(check_tokenization(model, expected["tokenization"]))
        prompts = FamilyReport("prompt_list")
        prompts.exact("prompt_list", expected["prompt_list"], model.prompt_list)
        reports.append(prompts)
        for name, batch in inputs["train_batches"].items():
            reports.append(check_train_batch(model, name, train_samples(batch, images), expected, tensors))
        reports.append(check_generation(model, images, inputs["gen"], expected, tensors))
    return reports


def check_vision(model, images: torch.Tensor, tensors: dict[str, torch.Tensor]) -> FamilyReport:
    report = FamilyReport("vision")
    vit_out = model.visual_encoder(images)
    ln_out = model.ln_vision(vit_out)
    report.tensor("vit_out", tensors["vit_out"], vit_out, ATOL, RTOL)
    report.tensor("ln_vision_out", tensors["ln_vision_out"], ln_out, ATOL, RTOL)
    if "qformer_out" in tensors:
        queries = model.query_tokens.expand(images.shape[0], -1, -1)
        atts = torch.ones(ln_out.shape[:-1], dtype=torch.long)
        report.tensor(
            "qformer_out", tensors["qformer_out"], model.Qformer.bert(queries, ln_out, atts), ATOL, RTOL
        )
    embeds, atts = model.encode_img(images)
    report.tensor("img_embeds", tensors["img_embeds"], embeds, ATOL, RTOL)
    report.exact("img_atts", tensors["img_atts"].tolist(), atts.tolist())
    return report


def check_tokenization(model, table: dict[str, Any]) -> FamilyReport:
    report = FamilyReport("tokenization")
    tok = model.llama_tokenizer
    for key in ("pad_token", "pad_token_id", "bos_token_id", "eos_token_id", "unk_token_id"):
        if key in table:
            report.exact(key, table[key], getattr(tok, key))
    if "vocab_size" in table:
        report.exact("vocab_size", table["vocab_size"], tok.vocab_size)
    for flag in (False, True):
        for text, ids in table.get(f"add_special_tokens_{flag}", {}).items():
            report.exact(
                f"ids(add_special_tokens={flag}) {text!r}", ids, tok(text, add_special_tokens=flag).input_ids
            )
    return report


def check_train_batch(model, name: str, samples, expected, tensors) -> FamilyReport:
    report = FamilyReport(f"train.{name}")
    prefix = f"train.{name}."
    cond_embeds, cond_atts, regress_embeds, regress_atts, part_targets = model.preparing_embedding(samples)
    got = {
        "cond_embeds": cond_embeds,
        "cond_atts": cond_atts,
        "regress_embeds": regress_embeds,
        "regress_atts": regress_atts,
        "part_targets": part_targets,
    }
    inputs_embeds, attention_mask, targets = model.build_llm_inputs(samples)
    got.update(inputs_embeds=inputs_embeds, attention_mask=attention_mask, targets=targets)
    for key, value in got.items():
        if prefix + key not in tensors:
            continue
        want = tensors[prefix + key]
        if want.is_floating_point():
            report.tensor(prefix + key, want, value, ATOL, RTOL)
        else:
            report.exact(prefix + key, want.tolist(), value.tolist())
    loss = model(samples)["loss"]
    per_sample = model(samples, reduction="none")["loss"]
    report.close(prefix + "loss", expected["train"][name]["loss"], float(loss), rel=0.0, abs_=LOSS_ATOL)
    report.close(
        prefix + "loss_per_sample",
        expected["train"][name]["loss_per_sample"],
        per_sample.tolist(),
        0.0,
        LOSS_ATOL,
    )
    return report


def check_generation(model, images, gen_inputs, expected, tensors) -> FamilyReport:
    report = FamilyReport("generate")
    texts = gen_inputs["prompts_fed_to_generate"]
    embeds, atts = model.generation_inputs(images, texts)
    report.tensor("gen.inputs_embeds", tensors["gen.inputs_embeds"], embeds, ATOL, RTOL)
    report.exact("gen.attention_mask", tensors["gen.attention_mask"].tolist(), atts.tolist())
    kwargs = dict(expected.get("gen_call_kwargs_to_llama_generate", {}))
    kwargs.setdefault("max_new_tokens", gen_inputs["max_new_tokens"])
    output_ids = model.generate_ids(images, texts, **kwargs)
    report.exact("gen.output_ids", tensors["gen.output_ids"].tolist(), output_ids.tolist())
    answers = model.generate(images, texts, **kwargs)
    report.exact("gen.answers", expected["gen"]["answers"], answers)
    raw = [model.llama_tokenizer.decode(row, skip_special_tokens=True) for row in output_ids.tolist()]
    if "raw_decoded_skip_special" in expected["gen"]:
        report.exact("gen.raw_decoded_skip_special", expected["gen"]["raw_decoded_skip_special"], raw)
    return report
