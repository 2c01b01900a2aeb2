"""Caption scoring against the shapes world's truth (the quickstart's MiniGPT-4 metric)."""

from minigpt4.evaluation.shapes_captions import caption_accuracy, caption_chance, caption_correct

COLORS, SHAPES = ["red", "blue"], ["circle", "square"]
RED_CIRCLE = [{"color": "red", "shape": "circle"}]


def test_a_caption_must_name_every_object_and_nothing_else():
    assert caption_correct("The image shows a Red circle on a white background.", RED_CIRCLE, COLORS, SHAPES)
    assert caption_correct("two red circles", RED_CIRCLE, COLORS, SHAPES)  # plural
    assert not caption_correct("a red circle and a blue square", RED_CIRCLE, COLORS, SHAPES)
    assert not caption_correct("a blue circle", RED_CIRCLE, COLORS, SHAPES)
    assert not caption_correct("a circle", RED_CIRCLE, COLORS, SHAPES)


def test_chance_is_the_accuracy_of_captions_from_random_training_images():
    images = [{"objects": RED_CIRCLE, "caption": "a red circle"}] * 50
    others = [{"objects": [], "caption": "a blue square"}] * 3 + [{"objects": [], "caption": "a red circle"}]
    assert caption_accuracy(["a red circle"] * 50, images, COLORS, SHAPES) == 1.0
    assert 0.1 < caption_chance(images, others, COLORS, SHAPES) < 0.45  # about 1/4
