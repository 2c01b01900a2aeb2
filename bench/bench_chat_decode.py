"""Batch-1 chat streaming against bare `LlamaForCausalLM.generate` on the same inputs (CPU or GPU).

    python bench/bench_chat_decode.py [--model-type tiny_vicuna0] [--new-tokens 64] [--repeats 7] [--threads 1]

"ours" is `Chat.stream_answer_text` (the demo's path: context embedding, `model.stream_from_context`, the
official Chat decoding: sampling, top-p 0.9, repetition penalty 1.05, stop criteria, text cleaned as it
grows), consumed to the end. "baseline" is `model.llama_model.generate(inputs_embeds=..., same sampling
settings, repetition_penalty=1.05)` on the exact context embeddings the chat built, no streamer. Both are
forced to `--new-tokens` tokens (`min_length`), and tokens are counted as the LLM's forward calls. The two
alternate, `--repeats` times each; ratio = median tokens/s ours / baseline. One JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="minigpt4")
    parser.add_argument("--model-type", default="tiny_vicuna0")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    torch.set_num_threads(args.threads)

    from minigpt4.common.config import model_default_path
    from minigpt4.common.registry import registry
    from minigpt4.conversation.chat import Chat
    from minigpt4.conversation.templates import template_for

    device = torch.device(args.device)
    cfg = OmegaConf.load(model_default_path(args.arch, args.model_type))
    torch.manual_seed(0)
    model = registry.get_model_class(args.arch).from_config(cfg.model).to(device).eval()
    vis_cfg = cfg.preprocess.vis_processor.eval
    chat = Chat(model, registry.get_processor_class(vis_cfg.name).from_config(vis_cfg), device=device)
    template = template_for(args.arch, args.model_type)
    size = model.visual_encoder.cfg.image_size
    image = torch.randn(1, 3, size, size, device=device)
    options = {"max_new_tokens": args.new_tokens, "min_length": args.new_tokens + 1}

    forward_calls = {"n": 0}
    model.llama_model.register_forward_hook(lambda *_: forward_calls.__setitem__("n", forward_calls["n"] + 1))

    def conversation():
        conv, img_list = template.copy(), []
        chat.upload_img(image, conv, img_list)
        chat.ask("What is in this picture? Describe it in detail.", conv)
        chat.encode_img(img_list)
        return conv, img_list

    conv, img_list = conversation()
    prepared = chat.answer_prepare(conv, img_list, **options)
    embeds = prepared["inputs_embeds"]

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def ours() -> tuple[float, int]:
        conv, img_list = conversation()  # image already encoded outside the timing, as in the demo
        forward_calls["n"] = 0
        sync()
        start = time.perf_counter()
        for _ in chat.stream_answer_text(conv, img_list, **options):
            pass
        sync()
        return time.perf_counter() - start, forward_calls["n"]

    def bare() -> tuple[float, int]:
        forward_calls["n"] = 0
        sync()
        start = time.perf_counter()
        with torch.inference_mode():
            model.llama_model.generate(
                inputs_embeds=embeds,
                attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long, device=device),
                do_sample=True,
                top_p=0.9,
                temperature=1.0,
                repetition_penalty=1.05,
                max_new_tokens=args.new_tokens,
                min_length=args.new_tokens + 1,
            )
        sync()
        return time.perf_counter() - start, forward_calls["n"]

    print("warm-up tokens (ours, bare):", ours()[1], bare()[1], file=sys.stderr)  # warm-up
    ours_tps, bare_tps = [], []
    for repeat in range(args.repeats):
        torch.manual_seed(repeat)
        seconds, tokens = ours()
        ours_tps.append(tokens / seconds)
        torch.manual_seed(repeat)
        seconds, tokens = bare()
        bare_tps.append(tokens / seconds)
    ours_m, bare_m = statistics.median(ours_tps), statistics.median(bare_tps)
    print(
        json.dumps(
            {
                "name": f"chat_decode/{args.arch}/{args.model_type}",
                "ours": round(ours_m, 1),
                "baseline": round(bare_m, 1),
                "unit": "tokens/s, batch 1 (median)",
                "ratio": round(ours_m / bare_m, 3),
                "new_tokens": args.new_tokens,
                "context_tokens": int(embeds.shape[1]),
                "ours_runs": [round(v, 1) for v in ours_tps],
                "baseline_runs": [round(v, 1) for v in bare_tps],
                "device": f"cpu x{torch.get_num_threads()} threads"
                if device.type == "cpu"
                else torch.cuda.get_device_name(device),
                "load_avg_1m": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
