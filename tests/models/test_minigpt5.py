"""MiniGPT-5 on the tiny model types: losses as the official code combines them, what trains, the injectable
draws, generation (8-voken step, batch = rows alone, same seed = same image), official checkpoints."""

from __future__ import annotations

import pytest
import torch

from minigpt4.common.errors import CheckpointError, ConfigError
from minigpt4.models.minigpt5 import TrainingDraws
from tests.models.conftest import build_tiny, tiny_cfg

VOKENS = "[IMG0][IMG1][IMG2][IMG3][IMG4][IMG5][IMG6][IMG7]"


@pytest.fixture(scope="module")
def stage1():
    return build_tiny("m5_stage1", seed=0).eval()


@pytest.fixture(scope="module")
def stage2():
    return build_tiny("m5_stage2", seed=0).eval()


def batch(model, captions=("a red circle", "a blue square"), image_rows=(0, 1)):
    samples = model.tokenize_pairs(
        ["a red circle", "###Human: <Img><ImageHere></Img> draw the next one ###Assistant:"],
        [f"{VOKENS} ###", f"a blue square {VOKENS} ###"],
    )
    samples["input_images"] = [None, torch.randn(1, 3, 112, 112, generator=torch.Generator().manual_seed(1))]
    samples["output_image"] = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2)) * 2 - 1
    samples["captions"] = list(captions)
    return samples


def fixed_draws(n=2, cfg=(0.5, 0.5)):
    g = torch.Generator().manual_seed(3)
    return TrainingDraws(
        cfg=torch.tensor(cfg),
        timesteps=torch.tensor([10, 900])[:n],
        noise=torch.randn(n, 4, 8, 8, generator=g),
        vae_eps=torch.randn(n, 4, 8, 8, generator=g),
    )


def test_trainable_parameters_stage1_and_stage2(stage1, stage2):
    t1 = sorted(stage1.official_state_dict())
    assert "model.llama_model.model.embed_tokens.weight" in t1 and "t2i_decoder_prompt" in t1
    assert all(k.startswith(("model.llama_model.model.embed", "model.llama_model.lm_head", "fc.", "t2i",
                             "llm_to_t2i_mapping.")) for k in t1)  # fmt: skip
    t2 = sorted(stage2.official_state_dict())
    assert not any(k.startswith(("fc.", "t2i_decoder_prompt")) for k in t2)  # frozen in stage 2
    assert "model.llama_model.base_model.model.lm_head.modules_to_save.default.weight" in t2
    assert "model.llama_model.base_model.model.model.layers.1.self_attn.v_proj.lora_B.default.weight" in t2
    assert not any("original_module" in k or "llama_proj" in k or "Qformer" in k for k in t2)


def test_losses_combine_as_official(stage1):
    out = stage1.compute_losses(batch(stage1), fixed_draws())
    expected = 0.01 * out.text_loss + out.image_loss + 0.1 * out.caption_loss
    torch.testing.assert_close(out.loss, expected)
    assert out.voken_index.tolist()[0][0] == 0 and out.voken_states.shape == (2, 8, 64)
    # same draws -> same losses; other timesteps -> another image loss
    again = stage1.compute_losses(batch(stage1), fixed_draws())
    assert float(again.loss) == float(out.loss)
    other = fixed_draws()
    other.timesteps = torch.tensor([500, 20])
    assert float(stage1.compute_losses(batch(stage1), other).image_loss) != float(out.image_loss)


def test_caption_loss_only_when_every_sample_has_a_caption(stage1):
    out = stage1.compute_losses(batch(stage1, captions=("a red circle", None)), fixed_draws())
    assert out.caption_loss is None
    torch.testing.assert_close(out.loss, 0.01 * out.text_loss + out.image_loss)


def test_text_only_batch_is_text_loss_only(stage1):
    samples = stage1.tokenize_pairs(["hello"], ["world ###"])
    out = stage1.compute_losses(samples)
    assert out.image_loss is None
    torch.testing.assert_close(out.loss, 0.01 * out.text_loss)


def test_cfg_drop_zeroes_states_and_targets_the_empty_caption(stage1):
    out = stage1.compute_losses(batch(stage1), fixed_draws(cfg=(0.05, 0.5)))
    assert out.dropped.tolist() == [True, False]
    assert out.voken_states[0].abs().sum() == 0 and out.voken_states[1].abs().sum() > 0
    empty = stage1.image_decoder.empty_text_feature()
    torch.testing.assert_close(out.caption_target[0], empty[0])
    torch.testing.assert_close(out.mapping_feature[0:1], stage1.unconditional_feature(1))


def test_only_new_vocabulary_rows_get_gradient(stage1):
    stage1.zero_grad()
    stage1.train()
    stage1(batch(stage1), fixed_draws())["loss"].backward()
    stage1.eval()
    for weight in stage1.vocabulary_weights():
        assert weight.grad[:-9].abs().sum() == 0 and weight.grad[-9:].abs().sum() > 0
    assert stage1.output_mapper.t2i_decoder_prompt.grad.abs().sum() > 0
    assert stage1.llama_proj.weight.grad is None
    stage1.zero_grad()


def test_generation_forced_image_and_same_seed_same_image(stage1):
    # greedy: the official boost (10x the max score) makes [IMG0] the argmax; sampled, a tiny random LLM's flat
    # distribution can still miss it (the boost is the official one, not a guarantee)
    def run(seed):
        return stage1.generate_answers(None, ["a red circle"], max_new_tokens=4, force_generation=True, do_sample=False,
                                       num_inference_steps=3, generator=torch.Generator().manual_seed(seed))  # fmt: skip

    first, second = run(7), run(7)
    assert len(first.images[0]) == 1 and first.images[0][0].size == (32, 32)
    assert first.token_ids[0][0] == stage1.first_voken_id
    assert first.texts == second.texts
    assert list(first.images[0][0].getdata()) == list(second.images[0][0].getdata())
    assert first.voken_states.shape == (1, 8, 64) and first.voken_states.abs().sum() > 0
    greedy = {"max_new_tokens": 4, "do_sample": False, "generate_images": False}
    assert (
        stage1.generate(None, ["a red circle"], **greedy)
        == stage1.generate_answers(None, ["a red circle"], **greedy).texts
    )
    other = run(8)  # another seed: other initial latents, another image
    assert list(other.images[0][0].getdata()) != list(first.images[0][0].getdata())


def test_batched_generation_equals_each_row_alone(stage1):
    prompts = ["a red circle", "###Human: <Img><ImageHere></Img> what next? ###Assistant:"]
    images = [None, torch.randn(1, 3, 112, 112, generator=torch.Generator().manual_seed(5))]
    forced = torch.tensor([[stage1.first_voken_id, 40, 41], [42, stage1.first_voken_id, 43]])
    embeds, atts = stage1.generation_inputs_for(prompts, images)
    together = stage1.trace_generation(embeds, atts, forced_tokens=forced)
    for row in range(2):
        e, a = stage1.generation_inputs_for(prompts[row : row + 1], images[row : row + 1])
        alone = stage1.trace_generation(e, a, forced_tokens=forced[row : row + 1])
        torch.testing.assert_close(together.voken_states[row], alone.voken_states[0], atol=1e-5, rtol=1e-5)
        assert together.sequences[row].tolist() == alone.sequences[0].tolist()
    assert together.has_image.tolist() == [True, True]


def test_mapper_width_must_match_the_decoder():
    cls, cfg = tiny_cfg("m5_stage1", mapper_width=48)
    with pytest.raises(ConfigError, match="cross_attention_dim"):
        cls.from_config(cfg)


def test_official_checkpoints_round_trip_and_stage2_rule(tmp_path, stage1):
    from minigpt4.models.checkpoint import read_state_dict

    path = tmp_path / "stage1.ckpt"
    torch.save(
        {"state_dict": stage1.official_state_dict(), "epoch": 0, "hyper_parameters": {"lr": 2e-5}}, path
    )
    assert set(read_state_dict(path)) == set(stage1.official_state_dict())
    target = build_tiny("m5_stage2", seed=9, stage1_ckpt=str(path), ckpt_allow_missing=True)
    own = target.state_dict()
    for copy in ("original_module", "modules_to_save.default"):
        key = f"llama_model.base_model.model.model.embed_tokens.{copy}.weight"
        torch.testing.assert_close(own[key], stage1.state_dict()["llama_model.model.embed_tokens.weight"])
    torch.testing.assert_close(
        own["output_mapper.fc.0.weight"], stage1.state_dict()["output_mapper.fc.0.weight"]
    )


def test_stage1_checkpoint_missing_tensors_is_an_error(tmp_path, stage1):
    state = {k: v for k, v in stage1.official_state_dict().items() if not k.startswith("fc.")}
    path = tmp_path / "partial.ckpt"
    torch.save({"state_dict": state}, path)
    with pytest.raises(CheckpointError, match=r"missing, e\.g\. output_mapper\.fc"):
        build_tiny("m5_stage1", stage1_ckpt=str(path))


def test_unknown_key_in_checkpoint_is_reported(tmp_path, stage1):
    state = dict(stage1.official_state_dict(), **{"model.llama_model.extra.weight": torch.zeros(1)})
    path = tmp_path / "extra.ckpt"
    torch.save({"state_dict": state}, path)
    with pytest.raises(CheckpointError, match="unexpected key"):
        build_tiny("m5_stage1", stage1_ckpt=str(path))


def test_official_mixed_precision_bf16_llm_and_sd_fp32_vocabulary_and_mapper():
    model = build_tiny("m5_stage2", seed=0, llama_dtype="bfloat16", sd_dtype="bfloat16")
    assert model.image_decoder.unet.dtype == torch.bfloat16
    assert all(w.dtype == torch.float32 for w in model.vocabulary_weights())
    assert model.output_mapper.fc[0].weight.dtype == torch.float32
    samples = model.tokenize_pairs(["a red circle"], [f"{VOKENS} ###"])
    samples["output_image"] = torch.zeros(1, 3, 32, 32)
    samples["captions"] = ["a red circle"]
    losses = model(samples, fixed_draws(n=1, cfg=(0.5,)))
    losses["loss"].backward()
    assert torch.isfinite(losses["loss"]) and set(losses) == {
        "loss",
        "text_loss",
        "image_loss",
        "caption_loss",
    }
    result = model.generate_answers(None, ["a red circle"], max_new_tokens=2, force_generation=True,
                                    do_sample=False, num_inference_steps=2)  # fmt: skip
    assert len(result.images[0]) == 1


def test_a_row_that_stops_early_keeps_its_stop_and_is_padded(stage1):
    embeds, atts = stage1.generation_inputs_for(["a red circle", "a blue square"])
    eos = stage1.llama_tokenizer.eos_token_id
    trace = stage1.trace_generation(embeds, atts, forced_tokens=torch.tensor([[5, eos, 7, 8], [5, 6, 7, 8]]))
    assert trace.lengths.tolist() == [2, 4] and trace.finished.tolist() == [True, False]
    assert trace.sequences[0, 1:].tolist() == [5, eos, eos, eos]


@pytest.mark.parametrize("stage", ["stage1", "stage2"])  # stage 2: the LLM is LoRA-wrapped (peft)
def test_training_and_cached_generation_raise_no_transformers_deprecation(stage, request):
    """The LLM's KV cache is passed under the name this transformers version takes (no FutureWarning per call)."""
    import warnings

    model = request.getfixturevalue(stage)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        model.compute_losses(batch(model), fixed_draws())
        model.generate_answers(
            None, ["a red circle"], max_new_tokens=3, do_sample=False, generate_images=False
        )
