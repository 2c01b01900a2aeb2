"""The one generation interface (`models/generation.py`): batched prompts, a ready chat context, streaming."""

from __future__ import annotations

import pytest
import torch

from minigpt4.common.registry import registry
from minigpt4.conversation.templates import TEMPLATES, template_for
from minigpt4.models.generation import GenerationResult
from tests.models.conftest import build_tiny

PROMPTS = [
    "<s>[INST] <Img><ImageHere></Img> what is it? [/INST]",
    "<s>[INST] <Img><ImageHere></Img> hi [/INST]",
]


def test_generate_answers_is_the_batched_path_with_new_ids_per_row():
    model = build_tiny("llama2").eval()
    images = torch.randn(2, 3, 112, 112)
    result = model.generate_answers(images, PROMPTS, max_new_tokens=5)
    output_ids = model.generate_ids(images, PROMPTS, max_new_tokens=5)  # (B, 1 + N), BOS placeholder first
    assert isinstance(result, GenerationResult)
    assert (
        result.texts == model.decode_answers(output_ids) == model.generate(images, PROMPTS, max_new_tokens=5)
    )
    assert [row.tolist() for row in result.token_ids] == output_ids[:, 1:].tolist()
    assert result.images is None and result.voken_states is None


def test_the_context_path_and_its_stream_give_the_same_text():
    model = build_tiny("llama2").eval()
    context = model.get_context_emb("<s>[INST] <Img><ImageHere></Img> hi [/INST]", [model.encode_img(
        torch.randn(1, 3, 112, 112))[0]])  # fmt: skip
    kwargs = {"max_new_tokens": 6, "do_sample": False}
    result = model.generate_from_context(context, **kwargs)
    assert len(result.texts) == len(result.token_ids) == 1
    assert result.texts[0] == model.llama_tokenizer.decode(result.token_ids[0], skip_special_tokens=True)
    assert "".join(model.stream_from_context(context, **kwargs)) == result.texts[0]


def test_a_stream_error_reaches_the_consumer():
    model = build_tiny("llama2").eval()
    context = torch.zeros(1, 3, 7)  # wrong width: the LLM raises inside the generation thread
    with pytest.raises(RuntimeError):
        list(model.stream_from_context(context, max_new_tokens=2))


@pytest.mark.parametrize(
    ("arch", "model_type", "template"),
    [("minigpt4", "tiny_vicuna0", "CONV_VISION_Vicuna0"), ("minigpt4", "pretrain_llama2", "CONV_VISION_LLama2"),
     ("minigpt4", "my_llama2_variant", "CONV_VISION_LLama2"), ("minigpt_v2", "tiny", "CONV_VISION_minigptv2")],
)  # fmt: skip
def test_the_chat_template_is_a_fact_of_the_model_class(arch, model_type, template):
    cls = registry.get_model_class(arch)
    assert cls.conversation_template_name(model_type) == template
    assert cls.ANSWERS_WITH_BOXES is (arch == "minigpt_v2")
    chosen = template_for(arch, model_type)
    assert (chosen.system, chosen.roles, chosen.sep) == (TEMPLATES[template].system, TEMPLATES[template].roles,
                                                         TEMPLATES[template].sep)  # fmt: skip
    assert chosen is not TEMPLATES[template]
