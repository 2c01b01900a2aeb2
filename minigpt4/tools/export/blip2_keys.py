"""The one table between our MiniGPT-4 state dict and transformers' `Blip2ForConditionalGeneration`.

Every tensor of a Q-Former MiniGPT-4 is covered by exactly one row, read top to bottom (first match wins, in
both directions). Most rows are renames. Three kinds are not:

* `q_of_qkv_bias` / `v_of_qkv_bias`: EVA keeps `q_bias` and `v_bias` (no k bias); transformers keeps one
  `qkv.bias` = cat(q_bias, zeros, v_bias), exactly the bias our attention builds at run time.
* `derived`: `Qformer.bert.embeddings.position_ids` is a saved `arange` buffer the query path never reads;
  transformers has no such tensor. The export checks it is the arange and the import rebuilds it.
* `vocab_row`: the image token gets the id after the LLaMA vocabulary (see `image_token_rows`); the embedding
  and the LM head gain zero rows up to it. The import drops them again.

Patterns: `{n}` is a layer number, `{*}` the rest of the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from minigpt4.common.errors import CheckpointError

RENAME = "rename"
Q_OF_QKV_BIAS = "q_of_qkv_bias"
V_OF_QKV_BIAS = "v_of_qkv_bias"
DERIVED = "derived"
VOCAB_ROW = "vocab_row"


@dataclass(frozen=True)
class Rule:
    ours: str
    theirs: str
    kind: str = RENAME


_VIT = "visual_encoder"
_HF_VIT = "vision_model"
_QF = "Qformer.bert.encoder.layer.{n}"
_HF_QF = "qformer.encoder.layer.{n}"

RULES: tuple[Rule, ...] = (
    # EVA ViT-g -> Blip2VisionModel (same architecture; BLIP-2 also drops EVA-CLIP's 40th block)
    Rule(f"{_VIT}.cls_token", f"{_HF_VIT}.embeddings.class_embedding"),
    Rule(f"{_VIT}.pos_embed", f"{_HF_VIT}.embeddings.position_embedding"),
    Rule(f"{_VIT}.patch_embed.proj.{{*}}", f"{_HF_VIT}.embeddings.patch_embedding.{{*}}"),
    Rule(f"{_VIT}.blocks.{{n}}.norm1.{{*}}", f"{_HF_VIT}.encoder.layers.{{n}}.layer_norm1.{{*}}"),
    Rule(f"{_VIT}.blocks.{{n}}.norm2.{{*}}", f"{_HF_VIT}.encoder.layers.{{n}}.layer_norm2.{{*}}"),
    Rule(f"{_VIT}.blocks.{{n}}.attn.qkv.weight", f"{_HF_VIT}.encoder.layers.{{n}}.self_attn.qkv.weight"),
    Rule(
        f"{_VIT}.blocks.{{n}}.attn.q_bias",
        f"{_HF_VIT}.encoder.layers.{{n}}.self_attn.qkv.bias",
        Q_OF_QKV_BIAS,
    ),
    Rule(
        f"{_VIT}.blocks.{{n}}.attn.v_bias",
        f"{_HF_VIT}.encoder.layers.{{n}}.self_attn.qkv.bias",
        V_OF_QKV_BIAS,
    ),
    Rule(
        f"{_VIT}.blocks.{{n}}.attn.proj.{{*}}", f"{_HF_VIT}.encoder.layers.{{n}}.self_attn.projection.{{*}}"
    ),
    Rule(f"{_VIT}.blocks.{{n}}.mlp.{{*}}", f"{_HF_VIT}.encoder.layers.{{n}}.mlp.{{*}}"),
    # ln_vision is BLIP-2's post_layernorm (see README "Use with transformers" for its eps)
    Rule("ln_vision.{*}", f"{_HF_VIT}.post_layernorm.{{*}}"),
    # Q-Former (query path only: no word/position embeddings, no text FFN)
    Rule("query_tokens", "query_tokens"),
    Rule("Qformer.bert.embeddings.LayerNorm.{*}", "qformer.layernorm.{*}"),
    Rule("Qformer.bert.embeddings.position_ids", "", DERIVED),
    Rule(f"{_QF}.attention.self.{{*}}", f"{_HF_QF}.attention.attention.{{*}}"),
    Rule(f"{_QF}.crossattention.self.{{*}}", f"{_HF_QF}.crossattention.attention.{{*}}"),
    Rule(f"{_QF}.{{*}}", f"{_HF_QF}.{{*}}"),
    # projection and LLaMA
    Rule("llama_proj.{*}", "language_projection.{*}"),
    Rule("llama_model.model.embed_tokens.weight", "language_model.model.embed_tokens.weight", VOCAB_ROW),
    Rule("llama_model.lm_head.weight", "language_model.lm_head.weight", VOCAB_ROW),
    Rule("llama_model.{*}", "language_model.{*}"),
)

# Adapter keys mean an unmerged LoRA: transformers' LlamaForCausalLM has no place for them.
_LORA = re.compile(r"(^|\.)(lora_[AB]|lora_embedding_[AB]|base_layer)(\.|$)|^llama_model\.base_model\.")


@dataclass(frozen=True)
class Mapped:
    key: str
    kind: str


def _regex(pattern: str) -> re.Pattern[str]:
    escaped = re.escape(pattern).replace(r"\{n\}", r"(?P<n>\d+)").replace(r"\{\*\}", r"(?P<rest>.+)")
    return re.compile(f"^{escaped}$")


def _fill(template: str, match: re.Match[str]) -> str:
    groups = match.groupdict()
    return template.replace("{n}", groups.get("n") or "").replace("{*}", groups.get("rest") or "")


@cache
def _compiled(direction: str) -> tuple[tuple[re.Pattern[str], Rule], ...]:
    rows = [r for r in RULES if direction == "ours" or r.kind != DERIVED]
    return tuple((_regex(r.ours if direction == "ours" else r.theirs), r) for r in rows)


def to_theirs(key: str) -> Mapped:
    """Our key -> transformers' key and the rule kind. Raises CheckpointError for a key no row covers."""
    if _LORA.search(key):
        raise CheckpointError(
            f"{key}: a LoRA adapter tensor; transformers' LlamaForCausalLM has no place for it. Merge the "
            "adapter first (python -m minigpt4.tools.weights merge-lora) and export the merged model"
        )
    for pattern, rule in _compiled("ours"):
        match = pattern.match(key)
        if match:
            return Mapped(_fill(rule.theirs, match), rule.kind)
    raise CheckpointError(
        f"{key}: no row of the BLIP-2 key table (minigpt4/tools/export/blip2_keys.py) covers this tensor; "
        "only MiniGPT-4 with a Q-Former can be written as Blip2ForConditionalGeneration"
    )


def to_ours(key: str) -> list[Mapped]:
    """transformers' key -> our key(s): two for a fused qkv bias (q_bias, then v_bias), else one."""
    rows = _compiled("theirs")
    for index, (pattern, rule) in enumerate(rows):
        match = pattern.match(key)
        if match is None:
            continue
        if rule.kind == Q_OF_QKV_BIAS:
            v_rule = rows[index + 1][1]
            assert v_rule.kind == V_OF_QKV_BIAS, "the v_bias row must follow the q_bias row"
            return [
                Mapped(_fill(rule.ours, match), rule.kind),
                Mapped(_fill(v_rule.ours, match), v_rule.kind),
            ]
        return [Mapped(_fill(rule.ours, match), rule.kind)]
    raise CheckpointError(
        f"{key}: not a tensor of a MiniGPT-4-shaped Blip2ForConditionalGeneration (no row of "
        "minigpt4/tools/export/blip2_keys.py covers it); e.g. a Q-Former with text input or an OPT/T5 LLM"
    )
