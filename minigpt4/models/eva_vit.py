"""EVA ViT-g/14 as MiniGPT-4 builds it (`create_eva_vit_g`), written with SDPA attention.

Key names are those of `eva_vit_g.pth`: `cls_token`, `pos_embed`, `patch_embed.proj.*`, `blocks.N.norm1.*`,
`blocks.N.attn.{q_bias,v_bias,qkv.weight,proj.*}`, `blocks.N.norm2.*`, `blocks.N.mlp.fc{1,2}.*`.
The official encoder has no final norm and returns every token (CLS first); `ln_vision` lives outside.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from minigpt4.common.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaVitConfig:
    """Every size of the encoder; the defaults are the official EVA ViT-g (39 of EVA-CLIP-g's 40 blocks)."""

    image_size: int = 224
    patch_size: int = 14
    width: int = 1408
    depth: int = 39
    num_heads: int = 16
    mlp_ratio: float = 4.3637
    norm_eps: float = 1e-6
    drop_path_rate: float = 0.0
    use_grad_checkpoint: bool = False

    @property
    def mlp_hidden(self) -> int:
        return int(self.width * self.mlp_ratio)  # 1408 * 4.3637 -> 6144

    @property
    def grid_size(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid_size**2


class PatchEmbed(nn.Module):
    """Conv patchify: (B, 3, H, W) -> (B, H/p * W/p, D)."""

    def __init__(self, image_size: int, patch_size: int, width: int) -> None:
        super().__init__()
        self.image_size = image_size
        self.num_patches = (image_size // patch_size) ** 2
        self.proj = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size)

    def forward(self, image: Tensor) -> Tensor:
        if image.shape[-2:] != (self.image_size, self.image_size):
            raise ConfigError(
                f"image of size {tuple(image.shape[-2:])} given to a ViT built for "
                f"{self.image_size}x{self.image_size}; set model.image_size or resize the images"
            )
        return self.proj(image).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with a q and a v bias and no k bias (EVA's `qkv_bias=True`)."""

    def __init__(self, width: int, num_heads: int) -> None:
        super().__init__()
        if width % num_heads:
            raise ConfigError(f"ViT width {width} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(width, width * 3, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(width))
        self.v_bias = nn.Parameter(torch.zeros(width))
        self.proj = nn.Linear(width, width)

    def forward(self, hidden: Tensor) -> Tensor:
        """hidden: (B, N, D) -> (B, N, D)."""
        batch, tokens, width = hidden.shape
        bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = F.linear(hidden, self.qkv.weight, bias.to(self.qkv.weight.dtype))  # (B, N, 3D)
        qkv = qkv.view(batch, tokens, 3, self.num_heads, width // self.num_heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (B, H, N, D/H)
        return self.proj(attended.transpose(1, 2).reshape(batch, tokens, width))


class Mlp(nn.Module):
    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, hidden: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(hidden)))


class DropPath(nn.Module):
    """Stochastic depth per sample (identity at rate 0 or in eval mode)."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, hidden: Tensor) -> Tensor:
        if self.rate == 0.0 or not self.training:
            return hidden
        keep = 1.0 - self.rate
        mask = hidden.new_empty((hidden.shape[0],) + (1,) * (hidden.ndim - 1)).bernoulli_(keep)
        return hidden * mask / keep


class Block(nn.Module):
    def __init__(self, cfg: EvaVitConfig, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.width, eps=cfg.norm_eps)
        self.attn = Attention(cfg.width, cfg.num_heads)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(cfg.width, eps=cfg.norm_eps)
        self.mlp = Mlp(cfg.width, cfg.mlp_hidden)

    def forward(self, hidden: Tensor) -> Tensor:
        hidden = hidden + self.drop_path(self.attn(self.norm1(hidden)))
        return hidden + self.drop_path(self.mlp(self.norm2(hidden)))


class VisionTransformer(nn.Module):
    """EVA ViT without final norm: (B, 3, H, W) -> (B, 1 + HW/p^2, D), CLS token first."""

    def __init__(self, cfg: EvaVitConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_features = cfg.width
        self.patch_embed = PatchEmbed(cfg.image_size, cfg.patch_size, cfg.width)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.width))
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.num_patches + 1, cfg.width))
        rates = torch.linspace(0, cfg.drop_path_rate, cfg.depth, device="cpu").tolist()
        self.blocks = nn.ModuleList(Block(cfg, rate) for rate in rates)
        self.use_grad_checkpoint = cfg.use_grad_checkpoint
        self._init_weights()

    def _init_weights(self) -> None:
        # Same distributions as the official init (trunc normal 0.02); real weights overwrite them.
        if self.pos_embed.is_meta:
            return
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, image: Tensor) -> Tensor:
        weight_dtype = self.patch_embed.proj.weight.dtype
        if weight_dtype in (torch.float16, torch.bfloat16) and not torch.is_autocast_enabled(
            image.device.type
        ):
            # fp16-converted weights next to fp32 norms/embeddings need autocast, as the official code runs it
            with torch.autocast(image.device.type, dtype=weight_dtype):
                return self._forward(image)
        return self._forward(image)

    def _forward(self, image: Tensor) -> Tensor:
        patches = self.patch_embed(image.to(self.patch_embed.proj.weight.dtype))  # (B, P, D)
        cls = self.cls_token.expand(patches.shape[0], -1, -1)
        hidden = torch.cat((cls, patches), dim=1) + self.pos_embed  # (B, 1+P, D)
        for block in self.blocks:
            if self.use_grad_checkpoint and self.training and torch.is_grad_enabled():
                hidden = checkpoint(block, hidden, use_reentrant=False)
            else:
                hidden = block(hidden)
        return hidden


class FP32LayerNorm(nn.LayerNorm):
    """`ln_vision`: a LayerNorm that computes in fp32 and casts back (official `base_model.LayerNorm`)."""

    def forward(self, hidden: Tensor) -> Tensor:
        dtype = hidden.dtype
        with torch.autocast(hidden.device.type, enabled=False):
            out = F.layer_norm(
                hidden.float(), self.normalized_shape, self.weight.float(), self.bias.float(), self.eps
            )
        return out.to(dtype)


def interpolate_pos_embed(pos_embed: Tensor, num_patches: int) -> Tensor:
    """Resize a checkpoint's absolute position table (1, 1+G*G, D) to (1, 1+num_patches, D).

    The CLS entry is kept; the G x G grid is resized bicubically (align_corners=False), as
    BLIP-2's `interpolate_pos_embed` does (224 px -> 448 px for MiniGPT-v2: 16x16 -> 32x32).
    """
    extra = 1  # the CLS entry
    old_size = int((pos_embed.shape[-2] - extra) ** 0.5)
    new_size = int(num_patches**0.5)
    if old_size == new_size:
        return pos_embed
    logger.info(
        "interpolating ViT position embeddings from %dx%d to %dx%d", old_size, old_size, new_size, new_size
    )
    dtype = pos_embed.dtype
    pos_embed = pos_embed.float()
    width = pos_embed.shape[-1]
    grid = pos_embed[:, extra:].reshape(-1, old_size, old_size, width).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(new_size, new_size), mode="bicubic", align_corners=False)
    grid = grid.permute(0, 2, 3, 1).flatten(1, 2)
    return torch.cat((pos_embed[:, :extra], grid), dim=1).to(dtype)


def convert_weights_to_fp16(model: nn.Module) -> None:
    """Official `vit_precision: fp16`: Conv/Linear weights and biases to half; norms, cls, pos, q/v biases stay fp32."""
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            module.weight.data = module.weight.data.half()
            if module.bias is not None:
                module.bias.data = module.bias.data.half()
