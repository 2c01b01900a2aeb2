"""`Blip2Config` from a MiniGPT-4 model's part configs, and the `model:` config back from a `Blip2Config`.

One eps cannot be kept: `Blip2VisionConfig.layer_norm_eps` serves the ViT blocks *and* `post_layernorm`, while
EVA's blocks use 1e-6 and MiniGPT-4's `ln_vision` 1e-5. We write the blocks' 1e-6 (78 norms, exact) and
`ln_vision` runs with 1e-6 in transformers, as in every transformers BLIP-2 conversion.
"""

from __future__ import annotations

from typing import Any

from transformers import Blip2Config, Blip2QFormerConfig, Blip2VisionConfig, PretrainedConfig

from minigpt4.common.errors import CheckpointError
from minigpt4.models.eva_vit import EvaVitConfig
from minigpt4.models.qformer import QFormerConfig

# the LLaMA config travels as Blip2Config.text_config; these keys of ours describe the other parts
VIT_KEYS = ("image_size", "vit_patch_size", "vit_width", "vit_depth", "vit_num_heads", "vit_mlp_ratio")
QFORMER_KEYS = (
    "qformer_hidden_size",
    "qformer_num_layers",
    "qformer_num_heads",
    "qformer_intermediate_size",
    "qformer_cross_attention_freq",
    "qformer_max_position_embeddings",
    "num_query_token",
)


def vision_config(vit: EvaVitConfig) -> Blip2VisionConfig:
    return Blip2VisionConfig(
        hidden_size=vit.width,
        intermediate_size=vit.mlp_hidden,
        num_hidden_layers=vit.depth,
        num_attention_heads=vit.num_heads,
        image_size=vit.image_size,
        patch_size=vit.patch_size,
        hidden_act="gelu",  # nn.GELU(): exact erf GELU
        layer_norm_eps=vit.norm_eps,
        attention_dropout=0.0,
        qkv_bias=True,
    )


def qformer_config(qformer: QFormerConfig) -> Blip2QFormerConfig:
    return Blip2QFormerConfig(
        hidden_size=qformer.hidden_size,
        num_hidden_layers=qformer.num_hidden_layers,
        num_attention_heads=qformer.num_attention_heads,
        intermediate_size=qformer.intermediate_size,
        max_position_embeddings=qformer.max_position_embeddings,
        layer_norm_eps=qformer.layer_norm_eps,
        hidden_dropout_prob=qformer.hidden_dropout_prob,
        attention_probs_dropout_prob=qformer.attention_probs_dropout_prob,
        cross_attention_frequency=qformer.cross_attention_freq,
        encoder_hidden_size=qformer.encoder_width,
        hidden_act="gelu",
        use_qformer_text_input=False,  # MiniGPT-4 deletes the text path
    )


def blip2_config(
    vit: EvaVitConfig,
    qformer: QFormerConfig,
    llm_config: PretrainedConfig,
    image_token_index: int,
    vocab_rows: int,
) -> Blip2Config:
    """The exported config; text_config is the LLaMA config with `vocab_size = vocab_rows`."""
    text = llm_config.to_dict()
    text["vocab_size"] = vocab_rows
    text.pop("architectures", None)
    return Blip2Config(
        vision_config=vision_config(vit).to_dict(),
        qformer_config=qformer_config(qformer).to_dict(),
        text_config=text,
        num_query_tokens=qformer.num_query_token,
        image_token_index=image_token_index,
    )


def model_settings(config: Blip2Config) -> dict[str, Any]:
    """Our `model:` size keys for a `Blip2Config` (the inverse of `blip2_config`, sizes only)."""
    vision, qformer, text = config.vision_config, config.qformer_config, config.text_config
    if text.model_type != "llama":
        raise CheckpointError(
            f"the BLIP-2 text model is {text.model_type!r}; MiniGPT-4 needs a LLaMA (text_config.model_type llama)"
        )
    if getattr(qformer, "use_qformer_text_input", False):
        raise CheckpointError(
            "use_qformer_text_input is true (InstructBLIP-style); MiniGPT-4's Q-Former has none"
        )
    width, hidden = int(vision.hidden_size), int(vision.intermediate_size)
    # EvaVitConfig keeps int(width * ratio); half a unit above makes that floor land on `hidden` exactly
    ratio = (hidden + 0.5) / width
    return {
        "arch": "minigpt4",
        "has_qformer": True,
        "image_size": int(vision.image_size),
        "vit_patch_size": int(vision.patch_size),
        "vit_width": width,
        "vit_depth": int(vision.num_hidden_layers),
        "vit_num_heads": int(vision.num_attention_heads),
        "vit_mlp_ratio": ratio,
        "qformer_hidden_size": int(qformer.hidden_size),
        "qformer_num_layers": int(qformer.num_hidden_layers),
        "qformer_num_heads": int(qformer.num_attention_heads),
        "qformer_intermediate_size": int(qformer.intermediate_size),
        "qformer_cross_attention_freq": int(qformer.cross_attention_frequency),
        "qformer_max_position_embeddings": int(qformer.max_position_embeddings),
        "num_query_token": int(config.num_query_tokens),
    }
