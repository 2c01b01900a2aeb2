"""models/vokens.py: the official voken arithmetic as pure functions, the tokenizer's added tokens, the fix for the
frozen-row weight decay."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from minigpt4.models import vokens
from minigpt4.models.tokenizer import load_llama_tokenizer

IMG0 = 400


def test_label_quirk_masks_img1_to_img6_only():
    labels = torch.tensor([[-100, 5, IMG0, 401, 402, 403, 404, 405, 406, 407, 276, 2]])
    masked = vokens.mask_voken_labels(labels, IMG0)
    assert masked.tolist() == [[-100, 5, IMG0] + [-100] * 6 + [407, 276, 2]]


def test_label_quirk_per_row_and_at_the_edge():
    labels = torch.tensor([[IMG0, 401, 402, 403, 404, 405, 406, 407], [1, 2, 3, 4, 5, 6, IMG0, 401]])
    masked = vokens.mask_voken_labels(labels, IMG0)
    assert masked[0].tolist() == [IMG0] + [-100] * 6 + [407]
    assert masked[1].tolist() == [1, 2, 3, 4, 5, 6, IMG0, -100]


def test_voken_states_start_one_before_img0():
    labels = torch.full((2, 12), -100)
    labels[0, 3] = IMG0
    labels[1, 2] = IMG0
    index = vokens.voken_start_index(labels, IMG0)
    assert index.tolist() == [[0, 2], [1, 1]]
    hidden = torch.arange(2 * 12, dtype=torch.float32).reshape(2, 12, 1)
    states = vokens.gather_voken_states(hidden, index)
    assert states[..., 0].tolist() == [list(range(2, 10)), list(range(13, 21))]


def test_condition_drop_below_probability_only():
    states = torch.ones(3, 8, 4)
    dropped_states, dropped = vokens.drop_conditions(states, torch.tensor([0.5, 0.05, 0.1]), 0.1)
    assert dropped.tolist() == [False, True, False]
    assert dropped_states[1].abs().sum() == 0 and dropped_states[0].sum() == 32


def test_placeholder_expansion_positions_and_lengths():
    ids = torch.tensor([[7, 9, 8, 2], [9, 7, 9, 7]])  # 9 = placeholder
    position, is_image, lengths = vokens.expand_image_placeholders(ids, 9, 3)
    assert position.tolist() == [[1, 2, 5, 6], [1, 4, 5, 8]]
    assert lengths.tolist() == [7, 9]
    assert is_image[0].tolist() == [False, False, True, True, True, False, False, False, False]
    assert is_image[1].nonzero().flatten().tolist() == [1, 2, 3, 5, 6, 7]


def test_select_images_refuses_too_few():
    with pytest.raises(ValueError, match="2 <ImageHere> placeholder"):
        vokens.select_images([torch.zeros(1, 3, 4, 4)], [2])


def test_new_rows_are_the_mean_of_the_old_rows_in_fp32():
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=50, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2)  # fmt: skip
    llm = LlamaForCausalLM(config).to(torch.bfloat16)
    before = llm.get_input_embeddings().weight.float().clone()
    assert vokens.resize_with_mean_rows(llm, 59) == 9
    embed, head = llm.get_input_embeddings().weight, llm.get_output_embeddings().weight
    assert embed.shape == (59, 8) and head.shape == (59, 8) and embed.dtype == torch.float32
    torch.testing.assert_close(embed[:50], before)
    torch.testing.assert_close(embed[50:], before.mean(0, keepdim=True).expand(9, -1))


def test_tokenizer_adds_stripping_tokens_with_official_ids(repo_root):
    tok = load_llama_tokenizer(str(repo_root / "minigpt4" / "assets" / "tiny_llama"))
    base = len(tok)
    ids = vokens.add_voken_tokens(tok)
    assert list(ids.values()) == list(range(base, base + 9))
    assert tok.pad_token == tok.eos_token
    spaced = tok("grass   [IMG0][IMG1] ###", add_special_tokens=False).input_ids
    words = [tok(w, add_special_tokens=False).input_ids for w in ("grass", "###")]
    assert spaced == [*words[0], base, base + 1, *words[1]]
    assert tok.decode([1, base, base + 4], skip_special_tokens=False) == "<s> [IMG0] [IMG4]"


def _decay_step(fix: bool) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    weight = nn.Parameter(torch.randn(6, 3))
    start = weight.detach().clone()
    vokens.mask_gradient_rows(weight, 2)
    if fix:
        optimizer = torch.optim.AdamW([{"params": [weight], "weight_decay": 0.0}], lr=0.1)
        vokens.NewRowsOnlyDecay(optimizer, [weight], 2, weight_decay=0.01)
    else:
        optimizer = torch.optim.AdamW([weight], lr=0.1, weight_decay=0.01)
    for _ in range(3):
        optimizer.zero_grad()
        (weight**2).sum().backward()
        optimizer.step()
    return start, weight.detach()


def test_official_adamw_decays_frozen_rows_and_the_fix_does_not():
    start, official = _decay_step(fix=False)
    _, fixed = _decay_step(fix=True)
    assert not torch.equal(official[:4], start[:4])  # official: frozen rows shrink by (1 - lr*wd) a step
    torch.testing.assert_close(official[:4], start[:4] * (1 - 0.1 * 0.01) ** 3)
    assert torch.equal(fixed[:4], start[:4])  # fix: frozen rows never move
    torch.testing.assert_close(fixed[4:], official[4:])  # new rows: exactly AdamW with weight decay
