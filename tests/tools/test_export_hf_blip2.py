"""`export hf-blip2` on the tiny Vicuna v0 MiniGPT-4: plain transformers loads it and computes what we compute.

Ours is the model as our Chat runs it: `blip2_image_eval` pixels, `get_context_emb` of the Vicuna v0 chat prompt,
`llama_model`. Theirs is `Blip2Processor` + the exported chat template + `Blip2ForConditionalGeneration`.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from transformers import Blip2ForConditionalGeneration, Blip2Processor
from transformers.utils import logging as hf_logging

from minigpt4.api.hub import from_pretrained
from minigpt4.common.errors import CheckpointError
from minigpt4.common.registry import registry
from minigpt4.conversation.templates import CONV_VISION_Vicuna0
from minigpt4.models.checkpoint_shards import TensorFile, WeightSource
from minigpt4.processors.image import Blip2ImageEvalProcessor
from minigpt4.tools.export import export_hf_blip2, import_hf_blip2
from minigpt4.tools.export.command import main

QUESTION = "What is in this image?"
MAX_NEW_TOKENS = 8


def build(model_type: str, seed: int = 0):
    cls = registry.get_model_class("minigpt4")
    cfg = OmegaConf.load(cls.default_config_path(model_type))
    torch.manual_seed(seed)
    logging.getLogger("minigpt4").setLevel(logging.ERROR)
    return cls.from_config(cfg.model).eval(), cfg


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model, cfg = build("tiny_vicuna0")
    out = tmp_path_factory.mktemp("hf_blip2")
    report = export_hf_blip2(
        model, out, model_config=cfg.model, preprocess=cfg.preprocess, max_shard_size="200KB"
    )
    yield model, cfg, out, report
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def loaded(exported):
    _, _, out, _ = exported
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    hf_logging.get_logger().addHandler(handler)
    try:
        hf_model, info = Blip2ForConditionalGeneration.from_pretrained(str(out), output_loading_info=True)
        processor = Blip2Processor.from_pretrained(str(out))
    finally:
        hf_logging.get_logger().removeHandler(handler)
    return hf_model.eval(), processor, info, records


def image() -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 130, 3), dtype=np.uint8))


def our_inputs(model, cfg):
    pixels = Blip2ImageEvalProcessor.from_config(cfg.preprocess.vis_processor.eval)(image())[None]
    conv = CONV_VISION_Vicuna0.copy()
    conv.append_message(conv.roles[0], f"<Img><ImageHere></Img> {QUESTION}")
    conv.append_message(conv.roles[1], None)
    with torch.no_grad():
        image_embeds, _ = model.encode_img(pixels)
        context = model.get_context_emb(conv.get_prompt(), [image_embeds])  # (1, L, D)
    return pixels, context


def their_inputs(processor):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}]
    prompt = processor.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return processor(images=image(), text=prompt, return_tensors="pt")


def test_loads_with_no_missing_or_unexpected_weights(exported, loaded):
    _, _, _, report = exported
    hf_model, processor, info, records = loaded
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set()
    assert info["mismatched_keys"] == set() and not info["error_msgs"]
    assert not [r for r in records if "newly initialized" in r or "not used" in r or "not initialized" in r]
    assert len(report.shards) > 1  # sharded: the writer held one shard at a time
    assert report.num_tensors == len(hf_model.state_dict())
    assert processor.tokenizer.convert_tokens_to_ids("<image>") == hf_model.config.image_token_index
    assert hf_model.config.image_token_index == report.image_token_index


def test_processor_gives_our_pixels_and_prompt_ids(exported, loaded):
    model, cfg, _, _ = exported
    _, processor, _, _ = loaded
    pixels, _ = our_inputs(model, cfg)
    inputs = their_inputs(processor)
    assert torch.equal(inputs["pixel_values"], pixels)  # PIL bicubic, /255, CLIP normalisation: bit-identical
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    ids = inputs["input_ids"][0].tolist()
    assert ids.count(image_id) == model.tokens_per_image and ids[0] == model.llama_tokenizer.bos_token_id
    first_image = ids.index(image_id)
    assert processor.tokenizer.decode(ids[first_image - 3 : first_image]).endswith(
        "<Img>"
    )  # image mid-prompt


def test_logits_equal_ours(exported, loaded):
    model, cfg, _, report = exported
    hf_model, processor, _, _ = loaded
    _, context = our_inputs(model, cfg)
    with torch.no_grad():
        ours = model.llama_model(inputs_embeds=context).logits  # (1, L, V)
        theirs = hf_model(**their_inputs(processor)).logits  # (1, L, V + 1)
    vocab = ours.shape[-1]
    assert theirs.shape[:2] == ours.shape[:2]
    diff = (theirs[..., :vocab] - ours).abs().max().item()
    print(f"tiny vicuna0: max abs logit diff {diff:.3g} over {ours.numel()} logits")
    assert diff <= 1e-5
    assert not theirs[..., report.image_token_index].any()  # the image token's LM-head row is zero


def test_greedy_generate_gives_our_ids(exported, loaded):
    model, cfg, _, _ = exported
    hf_model, processor, _, _ = loaded
    _, context = our_inputs(model, cfg)
    inputs = their_inputs(processor)
    options = dict(max_new_tokens=MAX_NEW_TOKENS, do_sample=False, num_beams=1)
    with torch.no_grad():
        ours = model.llama_model.generate(inputs_embeds=context, **options)
        theirs = hf_model.generate(**inputs, **options)
    assert theirs[0, inputs["input_ids"].shape[1] :].tolist() == ours[0].tolist()
    suppressed = hf_model.generate(
        **inputs, max_new_tokens=1, suppress_tokens=[hf_model.config.image_token_index],
        output_scores=True, return_dict_in_generate=True,
    )  # fmt: skip
    assert suppressed.scores[0][0, hf_model.config.image_token_index] == float("-inf")


def test_cli_refuses_llama2_and_saves_it_as_our_folder(tmp_path, capsys):
    cfg_path = tmp_path / "tiny_llama2_eval.yaml"
    cfg_path.write_text("model:\n  arch: minigpt4\n  model_type: tiny_llama2\n")
    assert main(["hf-blip2", "--cfg-path", str(cfg_path), "--out", str(tmp_path / "hf")]) == 1
    assert "no transformers class" in capsys.readouterr().err
    assert main(["minigpt", "--cfg-path", str(cfg_path), "--out", str(tmp_path / "ours")]) == 0
    assert from_pretrained(tmp_path / "ours").has_qformer is False
    assert main(["import", "hf-blip2", str(tmp_path / "ours"), "--out", str(tmp_path / "back")]) == 1
    assert "no config.json" in capsys.readouterr().err


def test_round_trip_is_bit_identical(exported, tmp_path):
    model, cfg, out, _ = exported
    back = import_hf_blip2(out, tmp_path / "ours", max_shard_size="200KB")
    assert back.from_export
    state = model.state_dict()
    seen = set()
    for file in WeightSource.open(tmp_path / "ours").files:
        with TensorFile(file) as opened:
            for key in opened.names():
                tensor = opened.get(key)
                assert tensor.dtype == state[key].dtype and torch.equal(tensor, state[key]), key
                seen.add(key)
    assert seen == set(state)
    saved = OmegaConf.load(tmp_path / "ours" / "minigpt4_config.yaml")
    expected = {
        k: v
        for k, v in OmegaConf.to_container(cfg.model).items()
        if k not in ("ckpt", "vit_ckpt", "q_former_model")
    }
    assert {k: v for k, v in OmegaConf.to_container(saved.model).items() if k != "llama_model"} == {
        k: v for k, v in expected.items() if k != "llama_model"
    }
    rebuilt = from_pretrained(tmp_path / "ours")
    assert (
        rebuilt.llama_tokenizer("###Human: a cat").input_ids
        == model.llama_tokenizer("###Human: a cat").input_ids
    )


def test_llama2_and_v2_have_no_blip2_class(tmp_path):
    model, cfg = build("tiny_llama2")
    with pytest.raises(CheckpointError, match="no transformers class"):
        export_hf_blip2(model, tmp_path, model_config=cfg.model)
    assert not list(tmp_path.iterdir())  # nothing written
