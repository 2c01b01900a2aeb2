"""EVA ViT: official math (explicit softmax), position-table interpolation, fp16 conversion, real sizes on meta."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from minigpt4.common.errors import ConfigError
from minigpt4.models.eva_vit import (
    EvaVitConfig,
    FP32LayerNorm,
    VisionTransformer,
    convert_weights_to_fp16,
    interpolate_pos_embed,
)

TINY = EvaVitConfig(image_size=56, width=48, depth=2, num_heads=4)


def _randomise(model: torch.nn.Module, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(
                torch.randn(p.shape, generator=generator) * 0.1
                + (1.0 if p.ndim == 1 and p.shape[0] > 0 else 0)
            )


def _official_forward(model: VisionTransformer, image: torch.Tensor) -> torch.Tensor:
    """The official EVA forward written out: explicit softmax attention, q/v bias, exact GELU."""
    x = model.patch_embed.proj(image).flatten(2).transpose(1, 2)
    x = torch.cat([model.cls_token.expand(x.shape[0], -1, -1), x], 1) + model.pos_embed
    for blk in model.blocks:
        h = blk.norm1(x)
        attn = blk.attn
        bias = torch.cat([attn.q_bias, torch.zeros_like(attn.v_bias), attn.v_bias])
        qkv = F.linear(h, attn.qkv.weight, bias).reshape(x.shape[0], x.shape[1], 3, attn.num_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        q = q * q.shape[-1] ** -0.5
        weights = (q @ k.transpose(-2, -1)).softmax(-1)
        h = (weights @ v).transpose(1, 2).reshape(x.shape)
        x = x + attn.proj(h)
        x = x + blk.mlp.fc2(F.gelu(blk.mlp.fc1(blk.norm2(x))))
    return x


def test_forward_matches_official_math_and_returns_all_tokens():
    model = VisionTransformer(TINY).eval()
    _randomise(model)
    image = torch.randn(2, 3, 56, 56)
    out = model(image)
    assert out.shape == (2, 1 + 16, 48)
    assert model.blocks[0].mlp.fc1.out_features == int(48 * 4.3637) == 209
    torch.testing.assert_close(out, _official_forward(model, image), atol=1e-5, rtol=1e-4)


def test_wrong_image_size_is_a_clear_error():
    with pytest.raises(ConfigError, match="image_size"):
        VisionTransformer(TINY)(torch.randn(1, 3, 42, 42))


def test_interpolate_pos_embed_keeps_cls_and_resizes_bicubically():
    table = torch.randn(1, 1 + 16 * 16, 8)
    assert interpolate_pos_embed(table, 256) is table
    resized = interpolate_pos_embed(table, 32 * 32)
    assert resized.shape == (1, 1 + 1024, 8)
    assert torch.equal(resized[:, :1], table[:, :1])
    grid = table[:, 1:].reshape(1, 16, 16, 8).permute(0, 3, 1, 2)
    want = (
        F.interpolate(grid, size=(32, 32), mode="bicubic", align_corners=False)
        .permute(0, 2, 3, 1)
        .flatten(1, 2)
    )
    torch.testing.assert_close(resized[:, 1:], want)


def test_fp16_conversion_leaves_norms_and_embeddings_fp32_and_runs_on_cpu():
    model = VisionTransformer(TINY).eval()
    reference = model(torch.zeros(1, 3, 56, 56))
    convert_weights_to_fp16(model)
    assert model.patch_embed.proj.weight.dtype == torch.float16
    assert model.blocks[0].attn.qkv.weight.dtype == torch.float16
    assert model.blocks[0].mlp.fc2.bias.dtype == torch.float16
    for tensor in (
        model.cls_token,
        model.pos_embed,
        model.blocks[0].attn.q_bias,
        model.blocks[0].norm1.weight,
    ):
        assert tensor.dtype == torch.float32
    out = model(torch.zeros(1, 3, 56, 56))
    torch.testing.assert_close(out.float(), reference, atol=2e-2, rtol=2e-2)


def test_drop_path_and_grad_checkpoint_train():
    cfg = EvaVitConfig(
        image_size=28, width=16, depth=3, num_heads=2, drop_path_rate=0.2, use_grad_checkpoint=True
    )
    model = VisionTransformer(cfg).train()
    assert [b.drop_path.rate for b in model.blocks] == pytest.approx([0.0, 0.1, 0.2])
    model(torch.randn(2, 3, 28, 28)).sum().backward()
    assert model.blocks[0].attn.q_bias.grad is not None
    model.eval()
    image = torch.randn(2, 3, 28, 28)
    assert torch.equal(model(image), model(image))  # no drop path in eval


def test_ln_vision_computes_in_fp32_and_casts_back():
    norm = FP32LayerNorm(8, eps=1e-5)
    x = torch.randn(2, 3, 8).half()
    out = norm(x)
    assert out.dtype == torch.float16
    torch.testing.assert_close(out.float(), F.layer_norm(x.float(), (8,), eps=1e-5), atol=1e-3, rtol=1e-3)


def test_real_eva_vit_g_sizes_on_meta():
    with torch.device("meta"):
        model = VisionTransformer(EvaVitConfig())
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["pos_embed"] == (1, 257, 1408)
    assert shapes["blocks.38.attn.qkv.weight"] == (4224, 1408)
    assert shapes["blocks.38.mlp.fc1.weight"] == (6144, 1408)
    assert "blocks.39.norm1.weight" not in shapes and "blocks.0.attn.qkv.bias" not in shapes
    per_block = sum(p.numel() for p in model.blocks[0].parameters())
    assert per_block == 25_248_768
    assert sum(p.numel() for p in model.parameters()) == 985_894_528
