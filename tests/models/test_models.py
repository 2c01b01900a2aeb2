"""Tiny MiniGPT-4 / MiniGPT-v2 end to end on CPU: registry, freeze switches, batches of every kind, generation."""

from __future__ import annotations

import pytest
import torch

from minigpt4.common.errors import DataError
from minigpt4.common.registry import registry
from tests.models.conftest import build_tiny, tiny_samples


def test_registry_and_model_types():
    minigpt4 = registry.get_model_class("minigpt4")
    v2 = registry.get_model_class("minigpt_v2")
    assert {"pretrain_vicuna0", "pretrain_llama2", "tiny_vicuna0", "tiny_llama2"} <= set(
        minigpt4.PRETRAINED_MODEL_CONFIG_DICT
    )
    assert {"pretrain", "tiny"} <= set(v2.PRETRAINED_MODEL_CONFIG_DICT)
    assert minigpt4.default_config_path("pretrain_vicuna0").is_file()


@pytest.mark.parametrize("name", ["vicuna0", "llama2", "v2"])
def test_forward_backward_and_per_sample_loss(name):
    model = build_tiny(name).train()
    samples = tiny_samples(name, batch=3)
    loss = model(samples)["loss"]
    loss.backward()
    assert torch.isfinite(loss)
    assert model.llama_proj.weight.grad is not None
    assert model.visual_encoder.blocks[0].attn.q_bias.grad is not None  # tiny configs train the ViT
    per_sample = model(samples, reduction="none")["loss"]
    assert per_sample.shape == (3,)


def test_freeze_switches_follow_the_config():
    model = build_tiny("vicuna0", freeze_vit=True, freeze_qformer=True, freeze_llm=True)
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"llama_proj"}
    model.train()
    assert not model.visual_encoder.training and not model.Qformer.training and not model.ln_vision.training
    assert model.llama_proj.training
    v2 = build_tiny("v2", freeze_vit=True, freeze_llm=True)
    names = [n for n, p in v2.named_parameters() if p.requires_grad]
    assert all(n.startswith("llama_proj") or ".lora_" in n for n in names) and any(
        ".lora_" in n for n in names
    )


def test_unknown_config_keys_are_ignored():
    model = build_tiny("llama2", prompt="ignored by the official code", some_future_key=3)
    assert model.prompt_list  # alignment.txt was read


def test_text_only_and_conversation_batches():
    model = build_tiny("v2")
    text_only = {"instruction_input": ["[vqa] what colour is a lemon?", "say hi"], "answer": ["yellow", "hi"]}
    assert torch.isfinite(model(text_only)["loss"])
    conv = {
        "image": torch.randn(2, 3, 112, 112),
        "conv_q": ["<Img><ImageHere></Img> What is it? !@#Colour? ", "<Img><ImageHere></Img> Describe. "],
        "conv_a": ["a star.!@#red.", "a small circle."],
        "connect_sym": ["!@#", "!@#"],
    }
    _, _, targets = model.build_llm_inputs(conv)
    assert torch.isfinite(model(conv)["loss"])
    kept = [model.llama_tokenizer.decode([t for t in row if t >= 0]) for row in targets.tolist()]
    assert kept[0].strip().startswith("a star.") and "red." in kept[0] and "Colour" not in kept[0]


def test_chat_template_without_instruction_is_a_clear_error():
    model = build_tiny("v2")
    with pytest.raises(DataError, match="chat_template"):
        model({"image": torch.randn(1, 3, 112, 112), "answer": ["x"]})


def test_several_images_in_one_prompt():
    model = build_tiny("llama2")
    images = torch.randn(2, 2, 3, 112, 112)  # two images per sample
    samples = {
        "image": images,
        "instruction_input": ["<Img><ImageHere></Img> and <Img><ImageHere></Img> compare"] * 2,
        "answer": ["same", "different"],
    }
    _embeds, _atts, _ = model.build_llm_inputs(samples)
    image_embeds, _ = model.encode_img(images)  # (4, 16, D)
    # the second image of sample 1 sits after "<Img>...</Img> and <Img>" + the first image
    cond, _cond_atts, *_ = model.preparing_embedding(samples)
    positions = [i for i in range(cond.shape[1]) if torch.allclose(cond[1, i], image_embeds[3, 0])]
    assert len(positions) == 1
    assert torch.isfinite(model(samples)["loss"])


def test_batched_generation_equals_one_by_one():
    model = build_tiny("llama2").eval()
    images = torch.randn(2, 3, 112, 112)
    texts = [
        "<s>[INST] <Img><ImageHere></Img> what is it? [/INST]",
        "<s>[INST] <Img><ImageHere></Img> hi [/INST]",
    ]
    batch = model.generate_ids(images, texts, max_new_tokens=6)
    singles = [model.generate_ids(images[i : i + 1], texts[i : i + 1], max_new_tokens=6) for i in range(2)]
    assert batch.shape == (2, 7) and (batch[:, 0] == 1).all()
    for i in range(2):
        assert batch[i].tolist() == singles[i][0].tolist()
    answers = model.generate(images, texts, max_new_tokens=6)
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    embeds, atts = model.generation_inputs(images, texts)
    assert atts.dtype == torch.int32 and (embeds[atts == 0] == 0).all()


def test_get_context_emb_adds_bos_to_the_first_segment_only():
    model = build_tiny("llama2").eval()
    image_embeds, _ = model.encode_img(torch.randn(1, 3, 112, 112))
    context = model.get_context_emb("<s>[INST] <Img><ImageHere></Img> hi [/INST]", [image_embeds])
    bos = model.embed_tokens(torch.tensor([1]))[0]
    assert torch.allclose(context[0, 0], bos) and torch.allclose(context[0, 1], bos)  # official double BOS
    with pytest.raises(DataError, match="placeholder"):
        model.get_context_emb("no image", [image_embeds])


def test_multi_select_ranks_by_loss_and_masks_missing_candidates():
    model = build_tiny("v2").eval()
    images = torch.randn(2, 3, 112, 112)
    texts = ["<Img><ImageHere></Img> [vqa] which?"] * 2
    candidates = [["red", "blue"], ["a very long and unlikely answer here", "green"], ["x", "y"]]
    ranks = model.multi_select(images, texts, candidates, num_cand=[3, 2])
    assert sorted(ranks[0]) == [0, 1, 2] and ranks[1][-1] == 2
    losses = [
        model({"image": images, "instruction_input": texts, "answer": c}, reduction="none")["loss"]
        for c in candidates
    ]
    order = torch.argsort(torch.stack(losses, 1), dim=1)
    assert ranks[0] == order[0].tolist()


def test_answers_are_cut_at_max_txt_len_which_can_drop_end_sym():
    model = build_tiny("llama2", max_txt_len=3)
    _, _, _, _, targets = model.preparing_embedding(tiny_samples("llama2", batch=2))
    assert targets.shape[1] == 3
    assert (targets != model.llama_tokenizer.eos_token_id).all()  # "</s>" was cut off


def test_official_fp16_vit_runs_frozen_on_cpu():
    model = build_tiny("llama2", vit_precision="fp16", freeze_vit=True)
    assert model.visual_encoder.blocks[0].attn.qkv.weight.dtype == torch.float16
    assert model.visual_encoder.pos_embed.dtype == torch.float32
    embeds, _atts = model.encode_img(torch.randn(2, 3, 112, 112))
    assert embeds.shape == (2, 16, 64) and torch.isfinite(embeds).all()
    unfrozen = build_tiny("llama2", vit_precision="fp16", freeze_vit=False)
    assert (
        unfrozen.visual_encoder.blocks[0].attn.qkv.weight.dtype == torch.float32
    )  # official: fp32 when trained


def test_stage2_prompt_list_and_stage1_without_prompt():
    model = build_tiny("vicuna0")
    assert len(model.prompt_list) == 4 and all(
        p.startswith("###Human: <Img><ImageHere></Img> ") for p in model.prompt_list
    )
    cond, *_ = model.preparing_embedding(tiny_samples("vicuna0", batch=2))
    assert cond.shape[1] > model.tokens_per_image
    stage1 = build_tiny("vicuna0", prompt_path="")
    cond, _atts, *_ = stage1.preparing_embedding(tiny_samples("vicuna0", batch=2))
    assert cond.shape[1] == stage1.tokens_per_image == 8  # image tokens right after BOS, no text prompt


@pytest.mark.parametrize("as_sequence", [False, True])
def test_stop_words_end_rows(as_sequence):
    model = build_tiny("llama2").eval()
    images = torch.randn(2, 3, 112, 112)
    texts = ["<s>[INST] <Img><ImageHere></Img> what is it? [/INST]"] * 2
    free = model.generate_ids(images, texts, max_new_tokens=8)
    first, second = free[0, 1].item(), free[0, 2].item()
    stops = [[first, second]] if as_sequence else [second]
    stopped = model.generate_ids(images, texts, max_new_tokens=8, stop_words_ids=stops)
    assert stopped[0, :3].tolist() == free[0, :3].tolist()
    assert stopped.shape[1] == 3 or (stopped[0, 3:] == model.llama_model.generation_config.pad_token_id).all()


def test_placeholder_bos_penalty_matches_a_bos_in_the_input_ids():
    from transformers import RepetitionPenaltyLogitsProcessor

    from minigpt4.models.generation import PlaceholderBosPenalty

    scores = torch.tensor([[2.0, 3.0, -1.0, 0.5], [2.0, -3.0, 1.0, 0.5]])
    generated = torch.tensor([[2, 3], [1, 3]])  # row 1 already generated BOS (id 1)
    ours = PlaceholderBosPenalty(2.0, 1)(
        generated, RepetitionPenaltyLogitsProcessor(2.0)(generated, scores.clone())
    )
    with_placeholder = torch.cat([torch.ones(2, 1, dtype=torch.long), generated], 1)  # the 4.30 input_ids
    official = RepetitionPenaltyLogitsProcessor(2.0)(with_placeholder, scores.clone())
    torch.testing.assert_close(ours, official)


def test_generate_with_repetition_penalty_runs():
    model = build_tiny("llama2").eval()
    answers = model.generate(torch.randn(1, 3, 112, 112), ["<Img><ImageHere></Img> hi"], max_new_tokens=4,
                             repetition_penalty=1.05, do_sample=True, top_p=0.9)  # fmt: skip
    assert isinstance(answers[0], str)
