"""BLIP-2 Q-Former, trimmed as MiniGPT-4 uses it: the query path only, SDPA attention.

Module names are the BLIP-2 checkpoint's (`bert.embeddings.LayerNorm`, `bert.encoder.layer.N.attention.self.query`,
`...crossattention...`, `...intermediate_query...`, `...output_query...`), so `blip2_pretrained_flant5xxl.pth` loads
without renaming. transformers' `Blip2QFormerModel` computes the same function (tests/models/test_qformer.py checks
it) but names its modules differently (`layernorm`, `attention.attention`); using it would make `state_dict()` and
`named_parameters()` disagree once renamed back, which the official trainable-tensor checkpoint filter relies on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from minigpt4.common.errors import ConfigError


@dataclass(frozen=True)
class QFormerConfig:
    """bert-base-uncased sizes plus BLIP-2's cross-attention fields (official values by default)."""

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    encoder_width: int = 1408
    cross_attention_freq: int = 2
    num_query_token: int = 32


class SelfOutput(nn.Module):
    def __init__(self, cfg: QFormerConfig, in_features: int) -> None:
        super().__init__()
        self.dense = nn.Linear(in_features, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def forward(self, hidden: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden)) + residual)


class MultiHeadAttention(nn.Module):
    """Bidirectional attention; keys/values from `context` (B, N, kv_width)."""

    def __init__(self, cfg: QFormerConfig, kv_width: int) -> None:
        super().__init__()
        if cfg.hidden_size % cfg.num_attention_heads:
            raise ConfigError(
                f"Q-Former hidden_size {cfg.hidden_size} is not divisible by {cfg.num_attention_heads} heads"
            )
        self.num_heads = cfg.num_attention_heads
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(kv_width, cfg.hidden_size)
        self.value = nn.Linear(kv_width, cfg.hidden_size)
        self.dropout_p = cfg.attention_probs_dropout_prob

    def forward(self, hidden: Tensor, context: Tensor, context_mask: Tensor | None) -> Tensor:
        """hidden: (B, Q, H); context: (B, N, W); context_mask: (B, N) of 0/1 or None -> (B, Q, H)."""
        batch, queries, width = hidden.shape

        def heads(x: Tensor) -> Tensor:
            return x.view(batch, x.shape[1], self.num_heads, width // self.num_heads).transpose(1, 2)

        mask = None
        if context_mask is not None:
            mask = context_mask[:, None, None, :].to(torch.bool)  # (B, 1, 1, N)
        attended = F.scaled_dot_product_attention(
            heads(self.query(hidden)),
            heads(self.key(context)),
            heads(self.value(context)),
            attn_mask=mask,
            dropout_p=self.dropout_p if self.training else 0.0,
        )
        return attended.transpose(1, 2).reshape(batch, queries, width)


class AttentionBlock(nn.Module):
    def __init__(self, cfg: QFormerConfig, kv_width: int) -> None:
        super().__init__()
        self.self = MultiHeadAttention(cfg, kv_width)  # official name "self" (BERT's BertSelfAttention)
        self.output = SelfOutput(cfg, cfg.hidden_size)

    def forward(self, hidden: Tensor, context: Tensor, context_mask: Tensor | None) -> Tensor:
        return self.output(self.self(hidden, context, context_mask), hidden)


class Intermediate(nn.Module):
    def __init__(self, cfg: QFormerConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)

    def forward(self, hidden: Tensor) -> Tensor:
        return F.gelu(self.dense(hidden))  # BERT "gelu" = exact erf GELU


class Layer(nn.Module):
    """Self-attention over the queries, cross-attention to the image on every `cross_attention_freq`-th layer, FFN."""

    def __init__(self, cfg: QFormerConfig, index: int) -> None:
        super().__init__()
        self.attention = AttentionBlock(cfg, cfg.hidden_size)
        self.has_cross_attention = index % cfg.cross_attention_freq == 0
        if self.has_cross_attention:
            self.crossattention = AttentionBlock(cfg, cfg.encoder_width)
        self.intermediate_query = Intermediate(cfg)
        self.output_query = SelfOutput(cfg, cfg.intermediate_size)

    def forward(self, hidden: Tensor, image_embeds: Tensor, image_atts: Tensor | None) -> Tensor:
        hidden = self.attention(hidden, hidden, None)
        if self.has_cross_attention:
            hidden = self.crossattention(hidden, image_embeds, image_atts)
        return self.output_query(self.intermediate_query(hidden), hidden)


class Embeddings(nn.Module):
    """What is left of BertEmbeddings on the query path: LayerNorm + dropout (word/position tables are removed)."""

    def __init__(self, cfg: QFormerConfig) -> None:
        super().__init__()
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)
        # Persistent in the official BertEmbeddings, hence present in official checkpoints; unused here.
        self.register_buffer("position_ids", torch.arange(cfg.max_position_embeddings).expand((1, -1)))

    def forward(self, query_embeds: Tensor) -> Tensor:
        return self.dropout(self.LayerNorm(query_embeds))


class Encoder(nn.Module):
    def __init__(self, cfg: QFormerConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Layer(cfg, i) for i in range(cfg.num_hidden_layers))


class QFormerBert(nn.Module):
    """`Qformer.bert`: query embeddings in, (B, Q, H) out."""

    def __init__(self, cfg: QFormerConfig) -> None:
        super().__init__()
        self.embeddings = Embeddings(cfg)
        self.encoder = Encoder(cfg)

    def forward(self, query_embeds: Tensor, image_embeds: Tensor, image_atts: Tensor | None = None) -> Tensor:
        """query_embeds: (B, Q, H); image_embeds: (B, N, encoder_width); image_atts: (B, N) or None."""
        hidden = self.embeddings(query_embeds)
        for layer in self.encoder.layer:
            hidden = layer(hidden, image_embeds, image_atts)
        return hidden


class QFormer(nn.Module):
    """The `Qformer` attribute of MiniGPT-4 (official: a `BertLMHeadModel` with its text parts set to None)."""

    def __init__(self, cfg: QFormerConfig) -> None:
        super().__init__()
        self.config = cfg
        self.bert = QFormerBert(cfg)
        if not self.bert.embeddings.position_ids.is_meta:
            self.apply(_init_bert_weights)

    def forward(self, query_embeds: Tensor, image_embeds: Tensor, image_atts: Tensor | None = None) -> Tensor:
        return self.bert(query_embeds, image_embeds, image_atts)


def _init_bert_weights(module: nn.Module) -> None:
    # BERT init (normal 0.02, zero bias, unit LayerNorm); BLIP-2 weights overwrite it.
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
