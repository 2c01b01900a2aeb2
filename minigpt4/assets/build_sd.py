"""Regenerate the config-only Stable-Diffusion folders in `minigpt4/assets/`: `python -m minigpt4.assets.build_sd`.

* `tiny_sd/`: a tiny SD-family stack (UNet 16/32 channels with cross-attention width 32, a VAE mapping 32 px images
  to 4x8x8 latents, a 2-layer CLIP text encoder, the SD-2.1-base PNDM scheduler, a byte-level CLIP tokenizer with
  `!` as padding like SD-2.1). No weight files: MiniGPT-5's tiny model types build it with random weights.
* `sd21_base/`: the configs of stable-diffusion-2-1-base (UNet 320-1280, cross-attention 1024, OpenCLIP-H text
  encoder of 23 layers), no weights and no tokenizer: enough to build MiniGPT-5 at real size on the meta device.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ASSETS = Path(__file__).resolve().parent

PNDM = {
    "_class_name": "PNDMScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "trained_betas": None,
}


def _unet(channels, heads, cross, sample, layers, groups) -> dict:
    n = len(channels)
    return {
        "_class_name": "UNet2DConditionModel",
        "act_fn": "silu",
        "attention_head_dim": heads,
        "block_out_channels": channels,
        "cross_attention_dim": cross,
        "down_block_types": ["CrossAttnDownBlock2D"] * (n - 1) + ["DownBlock2D"],
        "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * (n - 1),
        "in_channels": 4,
        "out_channels": 4,
        "layers_per_block": layers,
        "norm_num_groups": groups,
        "sample_size": sample,
        "use_linear_projection": True,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
    }


def _vae(channels, layers, groups, sample) -> dict:
    return {
        "_class_name": "AutoencoderKL",
        "act_fn": "silu",
        "block_out_channels": channels,
        "down_block_types": ["DownEncoderBlock2D"] * len(channels),
        "up_block_types": ["UpDecoderBlock2D"] * len(channels),
        "in_channels": 3,
        "out_channels": 3,
        "latent_channels": 4,
        "layers_per_block": layers,
        "norm_num_groups": groups,
        "sample_size": sample,
        "scaling_factor": 0.18215,
    }


def _text(hidden, layers, heads, ff, vocab, bos, eos, pad) -> dict:
    return {
        "architectures": ["CLIPTextModel"],
        "model_type": "clip_text_model",
        "attention_dropout": 0.0,
        "hidden_act": "gelu",
        "hidden_size": hidden,
        "intermediate_size": ff,
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "max_position_embeddings": 77,
        "layer_norm_eps": 1e-5,
        "initializer_range": 0.02,
        "initializer_factor": 1.0,
        "projection_dim": hidden,
        "vocab_size": vocab,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "pad_token_id": pad,
    }


def byte_characters() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for bytes, in byte order (printable bytes map to
    themselves, the others to code points from 256 up)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            chars[byte] = chr(byte)
        else:
            chars[byte] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def clip_vocab() -> dict[str, int]:
    """A merge-free CLIP vocabulary: the byte characters, the same with `</w>`, then the two specials."""
    chars = byte_characters()
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    return {token: i for i, token in enumerate(tokens)}


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def _model_index(path: Path, tokenizer: bool) -> None:
    _write_json(
        path / "model_index.json",
        {
            "_class_name": "StableDiffusionPipeline",
            "feature_extractor": [None, None],
            "requires_safety_checker": False,
            "safety_checker": [None, None],
            "scheduler": ["diffusers", "PNDMScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"] if tokenizer else [None, None],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        },
    )


def write_tiny_sd(out: Path) -> None:
    vocab = clip_vocab()
    _model_index(out, tokenizer=True)
    _write_json(out / "unet" / "config.json", _unet([16, 32], [2, 4], 32, 8, 1, 8))
    _write_json(out / "vae" / "config.json", _vae([8, 16, 16], 1, 8, 32))
    bos, eos = vocab["<|startoftext|>"], vocab["<|endoftext|>"]
    _write_json(out / "text_encoder" / "config.json", _text(32, 2, 4, 64, len(vocab), bos, eos, 0))
    _write_json(out / "scheduler" / "scheduler_config.json", PNDM)
    _write_json(out / "tokenizer" / "vocab.json", vocab)
    (out / "tokenizer" / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    _write_json(
        out / "tokenizer" / "tokenizer_config.json",
        {
            "tokenizer_class": "CLIPTokenizer",
            "bos_token": "<|startoftext|>",
            "eos_token": "<|endoftext|>",
            "unk_token": "<|endoftext|>",
            "pad_token": "!",
            "model_max_length": 77,
            "do_lower_case": True,
        },
    )


def write_sd21_base(out: Path) -> None:
    _model_index(out, tokenizer=False)
    _write_json(out / "unet" / "config.json", _unet([320, 640, 1280, 1280], [5, 10, 20, 20], 1024, 64, 2, 32))
    _write_json(out / "vae" / "config.json", _vae([128, 256, 512, 512], 2, 32, 512))
    text = _text(1024, 23, 16, 4096, 49408, 49406, 49407, 1)
    text["projection_dim"] = 512
    _write_json(out / "text_encoder" / "config.json", text)
    _write_json(out / "scheduler" / "scheduler_config.json", PNDM)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m minigpt4.assets.build_sd", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, default=ASSETS, help="folder receiving tiny_sd/ and sd21_base/")
    args = parser.parse_args(argv)
    write_tiny_sd(args.out / "tiny_sd")
    write_sd21_base(args.out / "sd21_base")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
