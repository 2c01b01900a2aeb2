"""MiniGPT-5's output mapper: 8 voken hidden states -> 77 conditioning vectors for the image decoder.

Official (`model.py`): `fc` = Linear(D_llm -> D_sd), GELU, Linear(D_sd -> D_sd); learnable queries
`t2i_decoder_prompt` (1, 77, D_sd); `llm_to_t2i_mapping` = `nn.Transformer(batch_first, norm_first, d_model D_sd,
4 + 4 layers, ff 4096, 8 heads, dropout 0)` with `src` = fc(vokens) and `tgt` = the queries, no masks (the decoder
self-attention is bidirectional). The submodule names are the official state-dict names.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class OutputMapperConfig:
    llm_width: int = 4096
    width: int = 1024  # = the image decoder's cross-attention width (SD-2.1: 1024)
    num_queries: int = 77
    num_encoder_layers: int = 4
    num_decoder_layers: int = 4
    feedforward: int = 4096
    num_heads: int = 8
    dropout: float = 0.0
    layer_norm_eps: float = 1e-5
    activation: str = "relu"  # nn.Transformer's default, as officially


class OutputMapper(nn.Module):
    def __init__(self, cfg: OutputMapperConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.fc = nn.Sequential(
            nn.Linear(cfg.llm_width, cfg.width), nn.GELU(), nn.Linear(cfg.width, cfg.width)
        )
        self.t2i_decoder_prompt = nn.Parameter(torch.randn(1, cfg.num_queries, cfg.width))
        self.llm_to_t2i_mapping = nn.Transformer(
            d_model=cfg.width,
            nhead=cfg.num_heads,
            num_encoder_layers=cfg.num_encoder_layers,
            num_decoder_layers=cfg.num_decoder_layers,
            dim_feedforward=cfg.feedforward,
            dropout=cfg.dropout,
            layer_norm_eps=cfg.layer_norm_eps,
            activation=cfg.activation,
            batch_first=True,
            norm_first=True,
        )

    def queries(self, batch: int) -> Tensor:
        """The decoder input: (batch, num_queries, width), the learnable queries repeated."""
        return self.t2i_decoder_prompt.expand(batch, -1, -1)

    def forward(self, voken_states: Tensor) -> Tensor:
        """voken_states: (N, n_vokens, D_llm) -> conditioning (N, num_queries, width)."""
        source = self.fc(voken_states.to(self.fc[0].weight.dtype))  # (N, n, W)
        return self.llm_to_t2i_mapping(source, self.queries(source.shape[0]))  # (N, Q, W)
