"""One-line and batched inference on tiny official-format models."""

from __future__ import annotations

import pytest
from PIL import Image

from minigpt4.api.inference import MiniGPTInferencer, clear_cache, get_inferencer, inference_model
from minigpt4.common.errors import DataError

from .conftest import TINY_ENTRIES, fixture_weights

GENERATION = {"max_new_tokens": 6}


@pytest.fixture(scope="module")
def v2_weights():
    clear_cache()
    yield fixture_weights("minigpt_v2")
    clear_cache()


def test_image_path_and_pil_image_give_the_same_answer(v2_weights, image_file):
    from_path = inference_model("test-tiny-v2", image_file, weights=v2_weights, **GENERATION)
    from_pil = inference_model("test-tiny-v2", Image.open(image_file), weights=v2_weights, **GENERATION)
    assert set(from_path) == {"pred_caption"} and from_path["pred_caption"]
    assert from_path == from_pil


def test_question_gives_pred_answer(v2_weights, image_file):
    result = inference_model(
        "test-tiny-v2", image_file, "[vqa] what shape is it", weights=v2_weights, **GENERATION
    )
    assert result["question"] == "[vqa] what shape is it" and isinstance(result["pred_answer"], str)


def test_batch_answers_equal_single_answers(v2_weights, image_file):
    other = Image.open(image_file).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    images = [image_file, other, Image.open(image_file)]
    questions = ["[vqa] what colour is the square", None, "[refer] the circle"]
    batched = inference_model(
        "test-tiny-v2", images, questions, weights=v2_weights, batch_size=3, **GENERATION
    )
    singles = [
        inference_model("test-tiny-v2", im, q, weights=v2_weights, **GENERATION)
        for im, q in zip(images, questions)
    ]
    assert batched == singles
    in_twos = inference_model(
        "test-tiny-v2", images, questions, weights=v2_weights, batch_size=2, **GENERATION
    )
    assert in_twos == singles


def test_batch_is_one_generate_call_on_the_device(v2_weights, image_file):
    inferencer = get_inferencer("test-tiny-v2", v2_weights)
    calls = []
    original = inferencer.model.generate_answers

    def counting(images, texts, **kwargs):
        calls.append((tuple(images.shape), images.device, len(texts)))
        return original(images, texts, **kwargs)

    inferencer.model.generate_answers = counting
    try:
        inferencer([image_file] * 5, None, batch_size=4, **GENERATION)
    finally:
        del inferencer.model.generate_answers
    assert [c[0] for c in calls] == [(4, 3, 56, 56), (1, 3, 56, 56)]
    assert all(c[1] == inferencer.device for c in calls)


def test_model_is_cached_between_calls(v2_weights):
    assert get_inferencer("test-tiny-v2", v2_weights) is get_inferencer("test-tiny-v2", v2_weights)


def test_v2_boxes_are_converted_to_pixels_of_the_input_image(v2_weights):
    inferencer = get_inferencer("test-tiny-v2", v2_weights)
    image = Image.new("RGB", (200, 100))
    refer = inferencer._result("{<10><20><50><60>}", "[refer] the cat", image)
    assert refer["pred_boxes"] == [[20.0, 20.0, 100.0, 60.0]] and refer["pred_phrases"] == [None]
    grounded = inferencer._result(
        "<p>a cat</p> {<0><0><50><50>}<delim>{<50><50><100><100>}", "[grounding] x", image
    )
    assert grounded["pred_boxes"] == [[0.0, 0.0, 100.0, 50.0], [100.0, 50.0, 200.0, 100.0]]
    assert grounded["pred_phrases"] == ["a cat", "a cat"]
    assert "pred_boxes" not in inferencer._result("a cat", "[vqa] what", image)


def test_mismatched_questions_raise(v2_weights, image_file):
    with pytest.raises(DataError, match="2 images but 3 questions"):
        inference_model("test-tiny-v2", [image_file] * 2, ["a", "b", "c"], weights=v2_weights)
    with pytest.raises(DataError, match="image file not found"):
        inference_model("test-tiny-v2", image_file.parent / "missing.png", weights=v2_weights)


@pytest.mark.parametrize("variant", ["minigpt4_vicuna0", "minigpt4_llama2"])
def test_minigpt4_variants_caption(variant, image_file):
    entry = TINY_ENTRIES[variant]
    result = inference_model(
        entry.name, [image_file, image_file], weights=fixture_weights(variant), **GENERATION
    )
    assert len(result) == 2 and result[0] == result[1] and isinstance(result[0]["pred_caption"], str)
    inferencer = get_inferencer(entry.name, fixture_weights(variant))
    expected_role = "###Human: " if variant.endswith("vicuna0") else "<s>[INST] "
    assert expected_role in inferencer.prompts(["hi"])[0]
    clear_cache()


def test_inferencer_from_built_model(v2_weights, image_file):
    model = get_inferencer("test-tiny-v2", v2_weights).model
    direct = MiniGPTInferencer(model)(image_file, **GENERATION)
    assert direct == inference_model(model, image_file, **GENERATION)
