"""Model overhead: our tiny MiniGPT forward+backward against bare LlamaForCausalLM on the same inputs_embeds.

    python bench/bench_model_overhead.py [--variant tiny_llama2|tiny_vicuna0|tiny] [--batch-size 4] [--steps 20]
                                         [--threads N] [--device cpu|cuda]

"ours" is `model(samples)` + backward: ViT, connector, tokenisation, prompt layout, LLM, loss.
"baseline" is `model.llama_model(inputs_embeds=..., attention_mask=..., labels=...)` + backward on the exact
tensors our model fed the LLM (precomputed), i.e. the LLM alone. ratio = ours / baseline (median seconds per step).
Prints one JSON line per variant: name, ours, baseline, ratio, device.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from minigpt4.common.registry import registry  # noqa: E402

VARIANTS = {"tiny_vicuna0": "minigpt4", "tiny_llama2": "minigpt4", "tiny": "minigpt_v2"}
ANSWERS = ["a red circle on the left", "two blue squares", "a small green triangle", "a large yellow star"]


def build(variant: str, device: torch.device):
    cls = registry.get_model_class(VARIANTS[variant])
    cfg = OmegaConf.load(cls.default_config_path(variant)).model
    return cls.from_config(cfg).to(device).train()


def samples_for(model, variant: str, batch: int, device: torch.device) -> dict:
    size = model.visual_encoder.cfg.image_size
    samples = {"image": torch.randn(batch, 3, size, size, device=device), "answer": (ANSWERS * batch)[:batch]}
    if variant == "tiny":
        samples["instruction_input"] = [
            "<Img><ImageHere></Img> [caption] Briefly describe this image. "
        ] * batch
    return samples


def timed(step, steps: int, device: torch.device) -> float:
    times = []
    for _ in range(steps + 3):  # 3 warm-up steps
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times[3:])


def bench(variant: str, batch: int, steps: int, device: torch.device) -> dict:
    model = build(variant, device)
    samples = samples_for(model, variant, batch, device)

    def ours() -> None:
        model.zero_grad(set_to_none=True)
        model(samples)["loss"].backward()

    inputs_embeds, attention_mask, targets = model.build_llm_inputs(samples)
    inputs_embeds = inputs_embeds.detach().requires_grad_(
        True
    )  # the LLM also back-propagates into its inputs

    def baseline() -> None:
        model.zero_grad(set_to_none=True)
        out = model.llama_model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, labels=targets)
        out.loss.backward()

    def encode_only() -> None:
        with torch.no_grad():
            model.encode_img(samples["image"])

    def inputs_only() -> None:  # encode_img + tokenisation + prompt layout + splice, no LLM
        with torch.no_grad():
            model.build_llm_inputs(samples)

    ours_s, base_s = timed(ours, steps, device), timed(baseline, steps, device)
    encode_s, inputs_s = timed(encode_only, steps, device), timed(inputs_only, steps, device)
    return {
        "name": f"model_overhead/{variant}/batch{batch}",
        "ours": round(ours_s * 1000, 3),
        "baseline": round(base_s * 1000, 3),
        "unit": "ms per forward+backward (median)",
        "ratio": round(ours_s / base_s, 3),
        "encode_img_no_grad": round(encode_s * 1000, 3),
        "build_llm_inputs_no_grad": round(inputs_s * 1000, 3),
        "llm_tokens": list(inputs_embeds.shape[:2]),
        "threads": torch.get_num_threads(),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=sorted(VARIANTS), action="append")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for variant in args.variant or sorted(VARIANTS):
        print(json.dumps(bench(variant, args.batch_size, args.steps, torch.device(args.device))), flush=True)


if __name__ == "__main__":
    main()
