"""Prompt strings of the three official templates: the parity fixtures plus the behaviours the demos rely on."""

from __future__ import annotations

import pytest

from minigpt4.conversation.templates import (
    CONV_VISION_LLama2,
    CONV_VISION_minigptv2,
    CONV_VISION_Vicuna0,
    prepare_texts,
    template_for,
)
from minigpt4.tools.parity.families.conversation import check
from tests.conftest import PARITY

FIXTURE = PARITY / "functions" / "conversation.json"


def test_parity_family_conversation_passes():
    report = check(FIXTURE)
    assert report.ok, report.line()
    assert report.total >= 200


def test_copy_is_independent_of_the_template():
    conv = CONV_VISION_Vicuna0.copy()
    conv.append_message(conv.roles[0], "hello")
    assert CONV_VISION_Vicuna0.messages == []
    assert conv.messages == [["Human: ", "hello"]]


def test_several_images_across_turns_render_in_order():
    conv = CONV_VISION_minigptv2.copy()
    conv.append_message(conv.roles[0], "<Img><ImageHere></Img> what is this?")
    conv.append_message(conv.roles[1], "a cat")
    conv.append_message(conv.roles[0], "<Img><ImageHere></Img> and this?")
    conv.append_message(conv.roles[1], None)
    assert conv.get_prompt() == (
        "<s>[INST] <Img><ImageHere></Img> what is this? [/INST]a cat<s>[INST] <Img><ImageHere></Img> and this? [/INST]"
    )


@pytest.mark.parametrize(
    ("arch", "model_type", "expected"),
    [
        ("minigpt4", "pretrain_vicuna0", CONV_VISION_Vicuna0),
        ("minigpt4", "tiny_vicuna0", CONV_VISION_Vicuna0),
        ("minigpt4", "pretrain_llama2", CONV_VISION_LLama2),
        ("minigpt4", "tiny_llama2", CONV_VISION_LLama2),
        ("minigpt_v2", "pretrain", CONV_VISION_minigptv2),
        ("minigpt_v2", "tiny", CONV_VISION_minigptv2),
    ],
)
def test_template_for_model_types(arch, model_type, expected):
    conv = template_for(arch, model_type)
    assert (conv.system, conv.roles, conv.sep) == (expected.system, expected.roles, expected.sep)
    assert conv is not expected


def test_template_for_unknown_model_type_names_the_known_ones():
    with pytest.raises(ValueError, match="pretrain_vicuna0"):
        template_for("minigpt4", "mystery")


def test_prepare_texts_v2():
    assert prepare_texts(["[vqa] what?"], CONV_VISION_minigptv2) == [
        "<s>[INST] <Img><ImageHere></Img> [vqa] what? [/INST]"
    ]
