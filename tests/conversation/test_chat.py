"""Chat on the real tiny models (random weights): answer, streaming, several images, stop strings, bad images."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from minigpt4.common.errors import DataError
from minigpt4.conversation.chat import Chat, is_image_embedding
from minigpt4.conversation.templates import CONV_VISION_LLama2, CONV_VISION_minigptv2, CONV_VISION_Vicuna0
from tests.conversation.tiny import TINY_TYPES, tiny_session


@pytest.fixture(scope="module")
def chat() -> Chat:
    """The tiny MiniGPT-v2 (its templates are only strings: any template works with any tiny model here)."""
    return tiny_session("minigpt_v2", "tiny").chat


def _image(colour=(200, 30, 30)) -> Image.Image:
    return Image.new("RGB", (40, 30), colour)


def _start(chat: Chat, template, question: str):
    conv, img_list = template.copy(), []
    assert chat.upload_img(_image(), conv, img_list) == "Received."
    chat.encode_img(img_list)
    chat.ask(question, conv)
    return conv, img_list


def test_answer_is_stored_in_the_conversation(chat):
    conv, img_list = _start(chat, CONV_VISION_minigptv2, "describe this image")
    torch.manual_seed(0)
    text, ids = chat.answer(conv, img_list, max_new_tokens=12)
    assert conv.messages[-1] == [" [/INST]", text]
    assert 1 <= len(ids) <= 12
    assert text == chat.model.llama_tokenizer.decode(ids, skip_special_tokens=True).split("###")[0].strip()


@pytest.mark.parametrize(("arch", "model_type"), TINY_TYPES)
def test_streaming_yields_the_same_text_as_answer(arch, model_type):
    session = tiny_session(arch, model_type)
    chat, template = session.chat, session.template
    conv_a, img_a = _start(chat, template, "what is this?")
    torch.manual_seed(3)
    text, _ = chat.answer(conv_a, img_a, max_new_tokens=16, temperature=0.7)
    conv_b, img_b = _start(chat, template, "what is this?")
    torch.manual_seed(3)
    pieces = list(chat.stream_answer_text(conv_b, img_b, max_new_tokens=16, temperature=0.7))
    assert len(pieces) >= 2, "the answer arrives in several pieces"
    assert pieces[-1] == text
    assert conv_b.messages[-1][1] == text
    assert conv_a.get_prompt() == conv_b.get_prompt()
    assert text, "a random tiny model still says something in 16 tokens"


def test_several_images_in_one_conversation(chat, monkeypatch):
    conv, img_list = _start(chat, CONV_VISION_minigptv2, "what is this?")
    chat.answer(conv, img_list, max_new_tokens=4)
    chat.upload_img(_image((0, 0, 255)), conv, img_list)
    chat.ask("and this one?", conv)
    chat.encode_img(img_list)
    assert len(img_list) == 2 and all(is_image_embedding(e) for e in img_list)
    assert not torch.equal(img_list[0], img_list[1]), "each image keeps its own embedding"
    seen = {}
    original = chat.model.get_context_emb

    def recording(prompt, images):
        seen["prompt"], seen["images"] = prompt, list(images)
        return original(prompt, images)

    monkeypatch.setattr(chat.model, "get_context_emb", recording)
    chat.answer(conv, img_list, max_new_tokens=4)
    assert seen["prompt"].count("<ImageHere>") == 2
    assert seen["prompt"].endswith("<s>[INST] <Img><ImageHere></Img> and this one? [/INST]")
    assert len(seen["images"]) == 2


def _force_token(chat: Chat, token_id: int):
    """Make the LM always predict `token_id` (a forward hook on lm_head)."""

    def hook(module, inputs, logits):
        forced = torch.full_like(logits, -1e4)
        forced[..., token_id] = 1e4
        return forced

    return chat.model.llama_model.lm_head.register_forward_hook(hook)


def test_template_stop_strings_end_generation(chat):
    tokenizer = chat.model.llama_tokenizer
    hash_id = tokenizer.convert_tokens_to_ids("#")
    handle = _force_token(chat, hash_id)
    try:
        conv, img_list = _start(chat, CONV_VISION_Vicuna0, "hi")
        text, ids = chat.answer(conv, img_list, max_new_tokens=20)
        assert len(ids) == 3 and text == ""  # stopped on "###", which the answer cleaning cuts off
        conv, img_list = _start(chat, CONV_VISION_LLama2, "hi")
        _, ids = chat.answer(conv, img_list, max_new_tokens=20)
        assert len(ids) == 20  # Llama-2 stops only on EOS
    finally:
        handle.remove()


def test_eos_stops_generation(chat):
    handle = _force_token(chat, 2)
    try:
        conv, img_list = _start(chat, CONV_VISION_LLama2, "hi")
        text, ids = chat.answer(conv, img_list, max_new_tokens=20)
        assert len(ids) == 1 and text == ""
    finally:
        handle.remove()


def test_long_conversation_is_truncated_from_the_left(chat, caplog):
    conv, img_list = _start(chat, CONV_VISION_LLama2, "word " * 300)
    kwargs = chat.answer_prepare(conv, img_list, max_new_tokens=50, max_length=200)
    assert kwargs["inputs_embeds"].shape[1] == 150
    assert "exceeds max_length" in caplog.text


def test_generation_error_reaches_the_stream_consumer(chat, monkeypatch):
    conv, img_list = _start(chat, CONV_VISION_LLama2, "hi")

    def broken(**kwargs):
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr(chat.model.llama_model, "generate", broken)
    with pytest.raises(RuntimeError, match="simulated"):
        list(chat.stream_answer_text(conv, img_list, max_new_tokens=4))


def test_bad_images_raise_data_error(chat, tmp_path):
    not_image = tmp_path / "notes.txt"
    not_image.write_text("hello")
    with pytest.raises(DataError, match="not a readable image"):
        chat.upload_img(str(not_image), CONV_VISION_LLama2.copy(), [])
    with pytest.raises(DataError, match="not found"):
        chat.upload_img(str(tmp_path / "missing.png"), CONV_VISION_LLama2.copy(), [])
    with pytest.raises(DataError, match="expected an image"):
        chat.upload_img(42, CONV_VISION_LLama2.copy(), [])
