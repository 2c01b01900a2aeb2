"""Our query-path Q-Former against transformers' Blip2QFormerModel (same math, renamed keys) and BLIP-2 key names."""

from __future__ import annotations

import torch

from minigpt4.models.qformer import QFormer, QFormerConfig

TINY = QFormerConfig(
    hidden_size=32,
    num_hidden_layers=3,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=16,
    encoder_width=24,
    num_query_token=6,
)


def _to_hf_key(key: str) -> str:
    """BLIP-2 (LAVIS) Q-Former name -> transformers Blip2QFormerModel name."""
    key = key.removeprefix("bert.")
    key = key.replace("embeddings.LayerNorm", "layernorm")
    return key.replace("attention.self.", "attention.attention.").replace(
        "crossattention.self.", "crossattention.attention."
    )


def test_matches_transformers_blip2_qformer():
    from transformers import Blip2QFormerConfig, Blip2QFormerModel

    ours = QFormer(TINY).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in ours.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.2 + (1.0 if p.ndim == 1 else 0.0))
    hf_cfg = Blip2QFormerConfig(
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=16,
        encoder_hidden_size=24,
        cross_attention_frequency=2,
        layer_norm_eps=1e-12,
    )
    hf = Blip2QFormerModel(hf_cfg).eval()
    state = {_to_hf_key(k): v for k, v in ours.state_dict().items() if not k.endswith("position_ids")}
    missing, unexpected = hf.load_state_dict(state, strict=False)
    assert not unexpected and not [k for k in missing if "position_ids" not in k]
    queries = torch.randn(2, 6, 32, generator=generator)
    image = torch.randn(2, 9, 24, generator=generator)
    atts = torch.ones(2, 9, dtype=torch.long)
    want = hf(
        query_embeds=queries, encoder_hidden_states=image, encoder_attention_mask=atts
    ).last_hidden_state
    torch.testing.assert_close(ours(queries, image, atts), want, atol=1e-5, rtol=1e-4)


def test_cross_attention_every_second_layer_and_blip2_names():
    keys = QFormer(TINY).state_dict().keys()
    assert "bert.embeddings.LayerNorm.weight" in keys and "bert.embeddings.position_ids" in keys
    assert "bert.encoder.layer.0.crossattention.self.key.weight" in keys
    assert "bert.encoder.layer.2.crossattention.output.LayerNorm.bias" in keys
    assert not any(k.startswith("bert.encoder.layer.1.crossattention") for k in keys)
    assert "bert.encoder.layer.1.intermediate_query.dense.weight" in keys
    assert not any(".intermediate." in k or (".output.dense" in k and "query" not in k and "attention" not in k)
                   for k in keys)  # fmt: skip
    shapes = {k: tuple(v.shape) for k, v in QFormer(TINY).state_dict().items()}
    assert shapes["bert.encoder.layer.0.crossattention.self.key.weight"] == (32, 24)


def test_image_mask_hides_image_tokens():
    model = QFormer(TINY).eval()
    queries, image = torch.randn(1, 6, 32), torch.randn(1, 5, 24)
    masked = torch.tensor([[1, 1, 1, 0, 0]])
    changed = image.clone()
    changed[:, 3:] = 100.0
    torch.testing.assert_close(model(queries, image, masked), model(queries, changed, masked))


def test_bert_base_sizes_by_default():
    with torch.device("meta"):
        model = QFormer(QFormerConfig())
    params = sum(p.numel() for p in model.parameters())
    assert round(params / 1e6, 1) == 105.1 or round(params / 1e6, 1) == 105.2
    assert len(model.bert.encoder.layer) == 12
