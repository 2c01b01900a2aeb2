"""Connector pieces between the ViT and the LLM."""

from __future__ import annotations

from torch import Tensor

from minigpt4.common.errors import ConfigError


def concat_neighbours(patch_tokens: Tensor, group: int = 4) -> Tensor:
    """(B, N, D) -> (B, N/group, group*D) by a plain view: `group` consecutive patches in raster order are joined
    (a 1x4 horizontal strip, not a 2x2 block), exactly as the official `view(bs, pn/4, hs*4)`."""
    batch, num_tokens, width = patch_tokens.shape
    if num_tokens % group:
        raise ConfigError(
            f"{num_tokens} ViT patch tokens cannot be grouped by {group}; choose image_size so that "
            f"(image_size/14)^2 is a multiple of {group}"
        )
    return patch_tokens.reshape(batch, num_tokens // group, width * group)
