"""MiniGPT-5 chat: the official MMDialog prompt, several images, text then image, seeds, forced images,
and the #13/#17 failure (the model never emits [IMG0]) ruled out with the current transformers tokenizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from minigpt4.conversation import minigpt5_chat
from minigpt4.conversation.minigpt5_chat import Minigpt5Chat, single_turn_prompt
from minigpt4.datasets.formats import mmdialog, vist
from tests.conversation.tiny_minigpt5 import FAST, tiny_minigpt5

VOKENS = "".join(f"[IMG{i}]" for i in range(8))


@pytest.fixture(scope="module")
def chat():
    model, processor = tiny_minigpt5()
    return Minigpt5Chat(model, processor, device="cpu")


def red() -> Image.Image:
    return Image.new("RGB", (40, 30), (220, 20, 20))


def test_prompts_are_the_official_training_formats():
    assert minigpt5_chat.SYSTEM_PROMPT == mmdialog.SYSTEM_PROMPT
    assert minigpt5_chat.VIST_SYSTEM_PROMPT == vist.SYSTEM_PROMPT
    history = "a###Human: x <Img><ImageHere></Img>\n###Assistant: y\n###Human: z\n###Assistant: w <Img><ImageHere></Img>\n"
    assert minigpt5_chat.trim_oldest_exchange(history, [1, 2]) == mmdialog.trim_oldest_exchange(
        history, [1, 2]
    )
    assert single_turn_prompt("cc3m", "a red circle", 0) == "a red circle"
    assert single_turn_prompt("mmdialog", "hi", 1) == (
        mmdialog.SYSTEM_PROMPT + "###Human: hi <Img><ImageHere></Img>\n###Assistant:"
    )


def test_conversation_with_several_images_follows_mmdialog(chat):
    conv = chat.new_conversation()
    chat.upload_img(red(), conv)
    chat.upload_img(Image.new("RGB", (20, 20), (0, 0, 200)), conv)
    chat.ask("what are these?", conv)
    assert conv.prompt() == (
        mmdialog.SYSTEM_PROMPT
        + "###Human: what are these? <Img><ImageHere></Img> <Img><ImageHere></Img>\n###Assistant:"
    )
    assert len(conv.images) == 2 and conv.images[0].shape == (3, 112, 112)
    answer = chat.answer(conv, seed=1, force_image=True, **FAST)
    assert answer.images and conv.history.endswith(f" {answer.text} <Img><ImageHere></Img>\n")
    assert len(conv.images) == 3  # the drawn image joins the conversation as the official data has it
    chat.ask("and now?", conv)
    assert conv.prompt().endswith("###Human: and now?\n###Assistant:")


def test_stream_yields_text_then_image_then_done_with_progress(chat):
    conv = chat.new_conversation()
    chat.ask("draw a red circle", conv)
    steps = []
    events = list(chat.stream_answer(conv, seed=0, force_image=True, on_step=lambda i, n: steps.append((i, n)),
                                     **FAST))  # fmt: skip
    assert [e.kind for e in events] == ["text", "image", "done"]
    assert events[0].wants_image and events[0].image is None  # the text arrives before the picture
    assert isinstance(events[1].image, Image.Image) and events[1].image.size == (32, 32)
    assert steps and steps[-1][0] == steps[-1][1]


def test_same_seed_same_text_and_image_other_seed_other_image(chat):
    def draw(seed):
        conv = chat.new_conversation()
        chat.ask("draw a red circle", conv)
        answer = chat.answer(conv, seed=seed, force_image=True, **FAST)
        return answer.text, np.asarray(answer.images[0])

    text_a, image_a = draw(7)
    text_b, image_b = draw(7)
    _, image_c = draw(8)
    assert text_a == text_b and np.array_equal(image_a, image_b)
    assert not np.array_equal(image_a, image_c)


def test_vokens_are_single_tokens_and_img0_gives_an_image(chat):
    """#13/#17: with newer transformers the official tokenizer split the vokens and [IMG0] never came. Here each
    voken is one id with the tokenizer of the installed transformers, and a sampled [IMG0] yields an image."""
    model = chat.model
    ids = model.llama_tokenizer(VOKENS, add_special_tokens=False).input_ids
    assert ids == model.voken_ids
    assert model.llama_tokenizer.convert_ids_to_tokens(model.first_voken_id) == "[IMG0]"
    conv = chat.new_conversation()
    chat.ask("Generate an image with the scene description: a red circle", conv)
    lm_head = model.llama_model.get_output_embeddings()

    def prefer_img0(module, inputs, logits):  # a model that asks for an image on its own (no force_image)
        boosted = logits.clone()
        boosted[..., model.first_voken_id] += 1e4
        return boosted

    handle = lm_head.register_forward_hook(prefer_img0)
    try:
        answer = chat.answer(conv, seed=0, **FAST)
    finally:
        handle.remove()
    assert answer.wants_image and len(answer.images) == 1
    assert model.first_voken_id in answer.token_ids.tolist()


def test_force_image_gives_an_image_for_any_prompt(chat):
    conv = chat.new_conversation()
    chat.ask("hello", conv)
    assert chat.answer(conv, seed=3, force_image=True, **FAST).images


def test_unknown_option_is_an_error(chat):
    conv = chat.new_conversation()
    chat.ask("hello", conv)
    with pytest.raises(TypeError, match="guidance_scale"):
        list(chat.stream_answer(conv, guidance=3))


def test_tensor_upload_is_used_as_is(chat):
    conv = chat.new_conversation()
    chat.upload_img(torch.zeros(1, 3, 112, 112), conv)
    assert conv.pending[0].shape == (3, 112, 112)


def test_story_style_is_the_official_vist_generation_prompt(chat):
    conv = chat.new_conversation("story")
    chat.add_scene("there is a red circle.", red(), conv)
    chat.ask("the circle comes back.", conv)
    assert conv.prompt() == vist.SYSTEM_PROMPT + vist.GENERATION_PROMPTS[0].format(
        prompt=vist.history_prompt(["there is a red circle."]), step_text="the circle comes back."
    )
    answer = chat.answer(conv, seed=0, force_image=True, **FAST)
    assert answer.images and conv.captions[-1] == "the circle comes back." and len(conv.images) == 2


def test_single_turn_vist_prompt_is_the_official_gen_prompt():
    assert single_turn_prompt("vist", "a red circle.", 0) == vist.SYSTEM_PROMPT + vist.GENERATION_PROMPTS[
        0
    ].format(prompt="", step_text="a red circle.")
    assert single_turn_prompt(
        "vist", "then it comes back.", 1
    ) == vist.SYSTEM_PROMPT + vist.GENERATION_PROMPTS[0].format(
        prompt="<Img><ImageHere></Img>\n", step_text="then it comes back."
    )
