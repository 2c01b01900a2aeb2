"""The shipped config-only Stable-Diffusion folders are what `python -m minigpt4.assets.build_sd` writes, and the
tiny one builds a working decoder on CPU."""

from __future__ import annotations

import torch

from minigpt4.assets.build_sd import main
from minigpt4.models.image_decoder import StableDiffusionDecoder


def test_build_command_regenerates_the_shipped_files(repo_root, tmp_path):
    assert main(["--out", str(tmp_path)]) == 0
    for name in ("tiny_sd", "sd21_base"):
        shipped = repo_root / "minigpt4" / "assets" / name
        files = sorted(p.relative_to(shipped) for p in shipped.rglob("*") if p.is_file())
        assert files == sorted(
            p.relative_to(tmp_path / name) for p in (tmp_path / name).rglob("*") if p.is_file()
        )
        for rel in files:
            assert (shipped / rel).read_bytes() == (tmp_path / name / rel).read_bytes(), rel
        assert not any(p.suffix in (".safetensors", ".bin") for p in shipped.rglob("*"))


def test_tiny_decoder_is_small_and_decodes(repo_root):
    torch.manual_seed(0)
    decoder = StableDiffusionDecoder(repo_root / "minigpt4" / "assets" / "tiny_sd")
    assert decoder.conditioning_width == 32 and decoder.image_size == 32
    assert sum(p.numel() for p in decoder.parameters()) < 500_000
    assert all(not p.requires_grad for p in decoder.parameters())
    latents = decoder.encode_images(torch.zeros(2, 3, 32, 32))
    assert latents.shape == (2, 4, 8, 8)
    assert decoder.encode_text(["a red circle"]).shape == (1, 77, 32)
    out = decoder.generate(torch.randn(1, 77, 32), torch.zeros(1, 77, 32), num_inference_steps=2)
    assert out.images[0].size == (32, 32) and out.image_array.shape == (1, 32, 32, 3)
