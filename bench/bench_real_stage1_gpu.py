"""Real-size MiniGPT-4 stage-1 training step on one GPU, the official recipe's settings beside ours, in one run.

Random weights with the real shapes (EVA ViT-g, the BLIP-2 Q-Former, a Vicuna-7B-shaped LLaMA), synthetic 224 px
images and short captions, `train_configs/minigpt4_stage1_pretrain.yaml`'s model and batch size (64):
  official  fp16 weights, fp16 autocast + GradScaler, eager LLM attention
  ours      bf16 weights, bf16 autocast (no scaler), SDPA
Prints one JSON line (samples/s of each, the ratio, model FLOPs utilisation) for bench/RESULTS.md.

    python bench/bench_real_stage1_gpu.py [--steps 10] [--warmup 3] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
# the tiny LLM folder (its tokenizer's ids fit any vocabulary) resized through `model.llm_config`: random init
VICUNA_7B = {
    "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 32, "max_position_embeddings": 2048,
}  # fmt: skip
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense fp16/bf16 tensor-core peak
VARIANTS = {
    "official": {"dtype": "float16", "attention": "eager"},
    "ours": {"dtype": "bfloat16", "attention": "sdpa"},
}


def build(variant: dict):
    """The stage-1 config's model (random init straight on the GPU) and its run section, with the variant's dtypes."""
    from minigpt4.common.config import merge_config
    from minigpt4.common.registry import registry

    cfg = merge_config(
        str(REPO / "train_configs/minigpt4_stage1_pretrain.yaml"),
        [
            f"model.llama_model={REPO / 'minigpt4/assets/tiny_llama'}",
            *(f"model.llm_config.{key}={value}" for key, value in VICUNA_7B.items()),
            "model.ckpt=",
            f"model.llama_dtype={variant['dtype']}",
            f"model.autocast_dtype={variant['dtype']}",
            "run.amp=true",
            f"run.amp_dtype={variant['dtype']}",
        ],
    )
    with torch.device("cuda"):
        model = registry.get_model_class("minigpt4").from_config(cfg.model, load_weights=False)
    model.llama_model.set_attn_implementation(variant["attention"])
    return model.cuda().train(), cfg.run


def count(module: torch.nn.Module, skip: str = "") -> int:
    return sum(p.numel() for name, p in module.named_parameters() if not (skip and skip in name))


def flops_per_sample(model: torch.nn.Module, llm_tokens: float) -> float:
    """Frozen ViT and Q-Former: forward only (2 N T); frozen LLM: forward plus the backward to its inputs (4 N T)."""
    vit = 2 * count(model.visual_encoder) * model.visual_encoder.patch_embed.num_patches
    qformer = 2 * count(model.Qformer) * model.query_tokens.shape[1]
    llm = 4 * count(model.llama_model, skip="embed_tokens") * llm_tokens
    return vit + qformer + llm


def measure(name: str, batch: int, steps: int, warmup: int) -> dict:
    from minigpt4.runners.optimization import Stepper, amp_dtype, autocast, build_optimizer, build_scaler

    variant = VARIANTS[name]
    torch.cuda.empty_cache()  # the previous variant's model is gone with its frame
    model, run_cfg = build(variant)
    # the training loop's own pieces: optimizer groups, autocast dtype, scaler (fp16 only), step
    dtype = amp_dtype(run_cfg)
    stepper = Stepper(build_optimizer(model, run_cfg), build_scaler(dtype), run_cfg)
    generator = torch.Generator(device="cuda").manual_seed(0)
    images = torch.randn(batch, 3, 224, 224, device="cuda", generator=generator)
    captions = [f"a photo of {i % 7} red circles and a blue square on a white table" for i in range(batch)]
    samples = {"image": images, "answer": captions}
    with torch.no_grad():
        llm_tokens = float(model.build_llm_inputs(samples)[1].sum()) / batch

    def step(iteration: int) -> float:
        with autocast(dtype, "cuda"):
            loss = model(samples)["loss"]
        stepper.backward(loss)
        stepper.maybe_step(iteration)
        return loss.item()

    for iteration in range(warmup):
        step(iteration)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for iteration in range(warmup, warmup + steps):
        loss = step(iteration)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    samples_per_s = batch * steps / seconds
    result = {
        "samples_per_s": round(samples_per_s, 2),
        "step_s": round(seconds / steps, 4),
        "tflops": round(samples_per_s * flops_per_sample(model, llm_tokens) / 1e12, 1),
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1),
        "llm_tokens_per_sample": llm_tokens,
        "last_loss": round(loss, 3),
        **variant,
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)  # the official stage-1 batch size
    args = parser.parse_args()
    if not torch.cuda.is_available():  # `make bench` on a CPU machine: say so, let the other benches run
        print(json.dumps({"bench": "real_stage1_gpu", "skipped": "needs a CUDA GPU"}))
        return
    device = torch.cuda.get_device_name()
    peak = next((v for k, v in PEAK_TFLOPS.items() if k in device), None)
    results = {name: measure(name, args.batch_size, args.steps, args.warmup) for name in VARIANTS}
    for result in results.values():
        result["mfu"] = round(result["tflops"] / peak, 3) if peak else None
    print(
        json.dumps(
            {
                "bench": "real_stage1_gpu",
                "device": device,
                "batch_size": args.batch_size,
                "steps": args.steps,
                **results,
                "ratio_ours_over_official": round(
                    results["ours"]["samples_per_s"] / results["official"]["samples_per_s"], 2
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
