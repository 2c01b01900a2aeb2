"""Parity of one MiniGPT-5 fixture directory (`tests/fixtures/parity/minigpt5/<stage>/`).

The model is built by our `from_config` from the fixture's config and its official-format files (`eva_vit.pth`,
`qformer.pth`, `llm/`, `minigpt4_ckpt.pth`, `sd/`, `stage1.ckpt`, `stage2.ckpt`), then run on the fixture batch
with the fixture's random draws (VAE epsilon, noise, timesteps, CFG values). Generation is checked teacher-forced
on `gen.sequences` (they were sampled with an unrecorded seed) and the pipeline from `gen.init_latents`.
Every size, option and string is read from the files; tolerances are the README's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from minigpt4.tools.parity.report import FamilyReport

ATOL, RTOL = 1e-4, 1e-4
LATENT_ATOL = 1e-3  # README: the tiny UNet/VAE can need 1e-3 on the final latents after 51 steps
LOSS_RTOL = 1e-4


def is_minigpt5(config: dict[str, Any]) -> bool:
    return "IMG_TOKEN_NUM" in config or "ALL_IMG_TOKENS" in config


def model_config(path: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Our `model:` keys for the fixture: its sizes, options and file names."""
    vit = config["vit_kwargs"]
    bert = config["qformer_bert_config"]
    mapper = config["mapper"]
    weights = config.get("loss_weights", {})
    lora = config.get("lora")
    cfg: dict[str, Any] = {
        "arch": "minigpt5",
        "image_size": config["image_size"],
        "vit_patch_size": vit["patch_size"],
        "vit_width": vit["embed_dim"],
        "vit_depth": vit["depth"],
        "vit_num_heads": vit["num_heads"],
        "vit_mlp_ratio": vit["mlp_ratio"],
        "vit_precision": "fp16",  # official default: fp16-rounded weights (the fixture then computed in fp32)
        "vit_ckpt": str(path / "eva_vit.pth"),
        "q_former_model": str(path / "qformer.pth"),
        "qformer_hidden_size": bert["hidden_size"],
        "qformer_num_layers": bert["num_hidden_layers"],
        "qformer_num_heads": bert["num_attention_heads"],
        "qformer_intermediate_size": bert["intermediate_size"],
        "qformer_cross_attention_freq": bert.get("cross_attention_freq", 2),
        "qformer_max_position_embeddings": bert["max_position_embeddings"],
        "num_query_token": config["num_query_token"],
        "llama_model": str(path / "llm"),
        "llama_dtype": str(config["llama_config"].get("torch_dtype", "float32")),
        "ckpt": str(path / "minigpt4_ckpt.pth"),
        "max_txt_len": config.get("max_txt_len", 160),
        "end_sym": config.get("end_sym", "###"),
        "num_vokens": config["IMG_TOKEN_NUM"],
        "sd_model": str(path / "sd"),
        "sd_dtype": "float32",
        "mapper_width": mapper["d_model"],
        "mapper_num_queries": config["t2i_decoder_prompt_shape"][1],
        "mapper_encoder_layers": mapper["num_encoder_layers"],
        "mapper_decoder_layers": mapper["num_decoder_layers"],
        "mapper_feedforward": mapper["dim_feedforward"],
        "mapper_num_heads": mapper["nhead"],
        "mapper_dropout": mapper["dropout"],
        "mapper_layer_norm_eps": mapper.get("layer_norm_eps", 1e-5),
        "mapper_activation": mapper.get("activation", "relu"),
        "text_loss_weight": weights.get("text", 0.01),
        "image_loss_weight": weights.get("image", 1.0),
        "caption_loss_weight": weights.get("caption", 0.1),
        "snr_gamma": config.get("snr_gamma", 5) if config.get("snr_loss", True) else 0,
        "cfg_drop_prob": config.get("cfg_drop_prob", 0.1),
        "stage1_ckpt": str(path / "stage1.ckpt"),
        "stage2_ckpt": str(path / "stage2.ckpt") if (path / "stage2.ckpt").is_file() else "",
        "lora": None,
    }
    if lora:
        cfg["lora"] = {
            "r": lora["r"],
            "alpha": lora["lora_alpha"],
            "dropout": lora["lora_dropout"],
            "target_modules": lora["target_modules"],
            "modules_to_save": lora["modules_to_save"],
        }
    return cfg


def build_model(path: Path, config: dict[str, Any]):
    from minigpt4.common.registry import registry

    model = registry.get_model_class("minigpt5").from_config(model_config(path, config))
    model.visual_encoder.float()  # official PRECISION patched to fp32 for the fixture run (README)
    return model.eval()


def _compare(report: FamilyReport, name: str, want: torch.Tensor, got: Any, atol: float = ATOL) -> None:
    if got is None:
        report.record(False, name, "<tensor>", None)
    elif want.is_floating_point():
        report.tensor(name, want, got, atol, RTOL)
    else:
        report.exact(name, want.tolist(), got.tolist())


def _loss(report: FamilyReport, name: str, want: float, got: Any) -> None:
    report.close(name, want, None if got is None else float(got), rel=LOSS_RTOL, abs_=1e-6)


def check(path: Path) -> list[FamilyReport]:
    from safetensors.torch import load_file

    config = json.loads((path / "config.json").read_text())
    expected = json.loads((path / "expected.json").read_text())
    inputs_meta = json.loads((path / "inputs.json").read_text())
    tensors = load_file(str(path / "expected.safetensors"))
    inputs = load_file(str(path / "inputs.safetensors"))

    build = FamilyReport("build")
    try:
        model = build_model(path, config)
        build.record(True, "from_config + official checkpoints")
    except Exception as exc:
        build.error("from_config", exc)
        return [build]
    reports = [build, check_checkpoints(model, path, config)]
    torch.manual_seed(0)
    with torch.no_grad():
        reports.append(check_tokenization(model, config, expected, inputs, inputs_meta))
        samples = train_samples(inputs, inputs_meta)
        out = model.compute_losses(samples, draws(inputs))
        reports.extend(check_training(model, samples, out, expected, tensors))
        reports.extend(check_generation(model, config, expected, tensors, inputs))
    return reports


def check_checkpoints(model, path: Path, config: dict[str, Any]) -> FamilyReport:
    from minigpt4.models.checkpoint import read_state_dict

    report = FamilyReport("checkpoint")
    for stage in ("stage1", "stage2"):
        file = path / f"{stage}.ckpt"
        key = f"{stage}_ckpt_state_dict_keys"
        if file.is_file() and key in config:
            report.exact(f"{stage}.ckpt keys", sorted(config[key]), sorted(read_state_dict(file)))
    report.exact(
        "trainable parameters (official names)",
        sorted(config["trainable_params_after_construction"]),
        sorted(model.official_state_dict()),
    )
    return report


def train_samples(inputs: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    batch = inputs["input_ids"].shape[0]
    return {
        "input_ids": inputs["input_ids"],
        "attention_mask": inputs["attention_mask"],
        "labels": inputs["labels"],
        "input_images": [inputs.get(f"input_images.{b}") for b in range(batch)],
        "output_image": inputs["output_image"],
        "captions": meta["batch_caption"],
    }


def draws(inputs: dict[str, torch.Tensor]):
    from minigpt4.models.minigpt5 import TrainingDraws

    return TrainingDraws(
        cfg=inputs["cfg_random_values"],
        timesteps=inputs["timesteps"],
        noise=inputs["noise"],
        vae_eps=inputs["vae_eps"],
    )


def check_tokenization(model, config, expected, inputs, meta) -> FamilyReport:
    report = FamilyReport("tokenization")
    report.exact(
        "ALL_IMG_TOKENS", config["ALL_IMG_TOKENS"], [t for t in model.token_ids if t.startswith("[IMG")]
    )
    report.exact("special_token_ids", expected["special_token_ids"], model.token_ids)
    report.exact("num_new_tokens", expected["num_new_tokens"], model.num_new_tokens)
    tok = model.llama_tokenizer
    for text, ids in expected["tokenization"].items():
        report.exact(f"ids {text[:40]!r}", ids, tok(text, add_special_tokens=False).input_ids)
    batch = model.tokenize_pairs(meta["batch_source"], meta["batch_target"])
    for key in ("input_ids", "attention_mask", "labels"):
        report.exact(f"collated {key}", inputs[key].tolist(), batch[key].tolist())
    return report


def check_training(model, samples, out, expected, tensors) -> list[FamilyReport]:
    vision = FamilyReport("vision")
    if "train.vit_out" in tensors:
        from minigpt4.models import vokens

        counts = vokens.placeholder_counts(samples["input_ids"], model.image_token_id)
        images = vokens.select_images(samples["input_images"], counts)
        vit_out = model.visual_encoder(images)
        _compare(vision, "train.vit_out", tensors["train.vit_out"], vit_out)
        ln = model.ln_vision(vit_out)
        queries = model.query_tokens.expand(ln.shape[0], -1, -1)
        atts = torch.ones(ln.shape[:-1], dtype=torch.long)
        _compare(
            vision, "train.qformer_out", tensors["train.qformer_out"], model.Qformer.bert(queries, ln, atts)
        )
    else:
        vision.record(True, "no input image in this batch (stage 1)")

    llm_inputs = FamilyReport("llm_inputs")
    _compare(llm_inputs, "train.inputs_embeds", tensors["train.inputs_embeds"], out.inputs_embeds)
    _compare(llm_inputs, "train.attention_mask", tensors["train.attention_mask"].long(), out.attention_mask)
    _compare(llm_inputs, "train.labels", tensors["train.labels"], out.labels)

    llm_outputs = FamilyReport("llm_outputs")
    index = tensors["train.logits_supervised_index"]
    logits = out.logits[index[:, 0], index[:, 1]]
    _compare(llm_outputs, "train.logits_supervised", tensors["train.logits_supervised"], logits)
    _compare(
        llm_outputs, "train.last_hidden_state", tensors["train.last_hidden_state"], out.last_hidden_state
    )

    voken = FamilyReport("vokens")
    _compare(voken, "train.special_token_index", tensors["train.special_token_index"], out.voken_index)
    if "train.fc_in" not in tensors:  # a batch without output images: text loss only
        losses = FamilyReport("losses")
        for name in ("loss", "text_loss"):
            _loss(losses, f"train.{name}", expected[f"train.{name}"], getattr(out, name))
        losses.exact("no image loss", None, out.image_loss)
        return [vision, llm_inputs, llm_outputs, voken, losses]
    _compare(voken, "train.fc_in", tensors["train.fc_in"], out.voken_states)

    mapper = FamilyReport("mapper")
    mapper_module = model.output_mapper
    fc_out = mapper_module.fc(out.voken_states) if out.voken_states is not None else None
    _compare(mapper, "train.fc_out", tensors["train.fc_out"], fc_out)
    n = 0 if out.voken_states is None else out.voken_states.shape[0]
    _compare(mapper, "train.mapper_tgt", tensors["train.mapper_tgt"], mapper_module.queries(n))
    _compare(mapper, "train.mapping_feature", tensors["train.mapping_feature"], out.mapping_feature)
    decoder = model.image_decoder
    _compare(mapper, "empty_text_feature", tensors["empty_text_feature"], decoder.empty_text_feature())
    if "train.caption_clip_input_ids" in tensors:
        kept = [samples["captions"][int(b)] for b, d in zip(out.voken_index[:, 0], out.dropped) if not d]
        ids, _ = decoder.tokenize_text(kept)
        _compare(mapper, "train.caption_clip_input_ids", tensors["train.caption_clip_input_ids"], ids)
        _compare(
            mapper,
            "train.caption_feature_target",
            tensors["train.caption_feature_target"],
            out.caption_target[~out.dropped],
        )

    diffusion = FamilyReport("diffusion")
    if out.diffusion is not None:
        images = samples["output_image"][out.voken_index[:, 0]]
        _compare(diffusion, "train.vae_moments_pre_quant", tensors["train.vae_moments_pre_quant"],
                 decoder.vae.encoder(images))  # fmt: skip
        _compare(
            diffusion, "train.noisy_latents", tensors["train.noisy_latents"], out.diffusion.noisy_latents
        )
        _compare(diffusion, "train.unet_timesteps", tensors["train.unet_timesteps"], draws_timesteps(tensors))
        _compare(diffusion, "train.unet_encoder_hidden_states", tensors["train.unet_encoder_hidden_states"],
                 out.mapping_feature)  # fmt: skip
        _compare(diffusion, "train.model_pred", tensors["train.model_pred"], out.diffusion.model_pred)
        _compare(diffusion, "train.snr", tensors["train.snr"], out.diffusion.snr)
    else:
        diffusion.record(False, "diffusion loss", "computed", None)

    losses = FamilyReport("losses")
    for name, got in (("loss", out.loss), ("text_loss", out.text_loss), ("image_loss", out.image_loss),
                      ("caption_loss", out.caption_loss)):  # fmt: skip
        key = f"train.{name}"
        if key in expected:
            _loss(losses, key, expected[key], got)
        elif name == "caption_loss":
            losses.exact("train.caption_loss absent", None, None if got is None else float(got))
    return [vision, llm_inputs, llm_outputs, voken, mapper, diffusion, losses]


def draws_timesteps(tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    return tensors["train.unet_timesteps"]  # the injected draw reaches the UNet unchanged (checked via noisy)


def generation_images(config, inputs) -> list[torch.Tensor | None] | None:
    sample = config["gen"].get("input_image_from_sample")
    if sample is None:
        return None
    return [inputs[f"input_images.{sample}"]]


def check_generation(model, config, expected, tensors, inputs) -> list[FamilyReport]:
    report = FamilyReport("generation")
    prompt = config["gen"]["utterance"]
    embeds, atts = model.generation_inputs_for([prompt], generation_images(config, inputs))
    _compare(report, "gen.inputs_embeds", tensors["gen.inputs_embeds"], embeds)
    _compare(report, "gen.attention_mask", tensors["gen.attention_mask"], atts)
    kwargs = expected.get("gen.generate_kwargs", {})
    sequences = tensors["gen.sequences"]
    trace = model.trace_generation(
        embeds,
        atts,
        max_new_tokens=int(kwargs.get("max_new_tokens", sequences.shape[1] - 1)),
        do_sample=bool(kwargs.get("do_sample", True)),
        top_p=float(kwargs.get("top_p", 0.9)),
        temperature=float(kwargs.get("temperature", 1.0)),
        repetition_penalty=float(kwargs.get("repetition_penalty", 2.0)),
        min_length=int(kwargs.get("min_length", 1)),
        force_generation=bool(kwargs.get("force_generation", False)),
        forced_tokens=sequences[:, 1:],
    )
    report.exact("gen.sequences (teacher-forced)", sequences.tolist(), trace.sequences.tolist())
    report.exact("every forced id inside the top-p set", True, all(bool(t.all()) for t in trace.in_nucleus))
    per_step = model.llama_model.config.num_hidden_layers + 1  # embeddings + every layer, as HF returns them
    shapes = [[list(s.shape)] * per_step for s in trace.step_states]
    report.exact("gen.hidden_states_shapes", expected["gen.hidden_states_shapes"], shapes)
    for k, state in enumerate(trace.step_states):
        if f"gen.hidden_states_last.{k}" in tensors:
            _compare(report, f"gen.hidden_states_last.{k}", tensors[f"gen.hidden_states_last.{k}"], state)
    report.exact("gen.image_produced", expected["gen.image_produced"], bool(trace.has_image[0]))
    report.exact("gen.text_out", expected["gen.text_out"], model.decode_official(trace.sequences)[0])
    if not expected["gen.image_produced"]:  # nothing to map or render
        return [report]
    _compare(report, "gen.fc_in_cond", tensors["gen.fc_in_cond"], trace.voken_states)
    _compare(report, "gen.fc_in_uncond", tensors["gen.fc_in_uncond"], torch.zeros_like(trace.voken_states))
    _compare(
        report, "gen.mapping_feature", tensors["gen.mapping_feature"], model.map_vokens(trace.voken_states)
    )
    _compare(report, "gen.negative_mapping_feature", tensors["gen.negative_mapping_feature"],
             model.unconditional_feature(1))  # fmt: skip

    pipeline = FamilyReport("pipeline")
    calls: list[torch.Tensor] = []
    unet = model.image_decoder.unet
    hook = unet.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append(
            torch.as_tensor(args[1] if len(args) > 1 else kwargs["timestep"])
        ),
        with_kwargs=True,
    )
    try:
        decoded = model.render_images(trace.voken_states, latents=tensors["gen.init_latents"])
    finally:
        hook.remove()
    pipeline.exact("gen.num_unet_calls", expected["gen.num_unet_calls"], len(calls))
    _compare(pipeline, "gen.unet_timesteps", tensors["gen.unet_timesteps"],
             torch.stack([c.reshape(-1)[0] for c in calls]).long())  # fmt: skip
    _compare(pipeline, "gen.final_latents_unscaled", tensors["gen.final_latents_unscaled"], decoded.latents,
             atol=LATENT_ATOL)  # fmt: skip
    want = tensors["gen.image_uint8"].int()
    got = decoded.image_array[0].int()
    diff = int((want - got).abs().max()) if want.shape == got.shape else None
    pipeline.record(diff is not None and diff <= 1, "gen.image_uint8 within 1 grey level", "<= 1", diff)
    return [report, pipeline]
