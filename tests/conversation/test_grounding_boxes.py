"""Grounding boxes: parsing answers, drawing them, and turning a sketch into a box."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from minigpt4.conversation.grounding_boxes import (
    PALETTE,
    GroundedBox,
    answer_html,
    box_from_mask,
    colour_phrases_html,
    draw_answer,
    draw_boxes,
    format_box,
    has_box,
    parse_boxes,
    read_answer,
)


def test_grounding_answer_with_delim_gives_one_box_per_coordinate_group():
    answer = "<p>a dog</p> {<0><0><50><50>}<delim>{<50><50><100><100>} near <p>a tree</p> {<10><20><30><40>}"
    boxes = parse_boxes(answer, width=200, height=100)
    assert boxes == [
        GroundedBox("a dog", 0.0, 0.0, 100.0, 50.0),
        GroundedBox("a dog", 100.0, 50.0, 200.0, 100.0),
        GroundedBox("a tree", 20.0, 20.0, 60.0, 40.0),
    ]


def test_refer_answer_is_one_box_without_phrase():
    assert parse_boxes("{<10><20><30><40>}", 100, 200) == [GroundedBox(None, 10.0, 40.0, 30.0, 80.0)]


@pytest.mark.parametrize("answer", ["a plain sentence", "{<1><2><3>}", "", "<p>cut</p> {<1><2>"])
def test_answers_without_a_complete_box_give_nothing(answer):
    assert parse_boxes(answer, 100, 100) == []
    assert draw_boxes(Image.new("RGB", (64, 48)), answer) is None


def test_draw_boxes_uses_distinct_colours_per_phrase_and_display_width():
    image = Image.new("RGB", (1000, 600), (128, 128, 128))
    drawn = draw_boxes(image, "<p>one</p> {<10><10><40><40>} <p>two</p> {<60><60><90><90>}")
    assert drawn.size == (500, 300)
    pixels = np.asarray(drawn)
    # left edges of the two rectangles, below their labels
    assert tuple(pixels[100, 50]) == PALETTE[0]
    assert tuple(pixels[240, 300]) == PALETTE[1]


def test_colour_phrases_html_removes_boxes_and_colours_phrases():
    text = colour_phrases_html(
        "<p>a cat</p> {<1><2><3><4>}<delim>{<5><6><7><8>} sits on <p>a mat</p> {<1><2><3><4>}."
    )
    assert "{" not in text and "&lt;p&gt;" not in text
    assert '<span style="color:#ff0000; font-weight:bold">a cat</span> sits on' in text
    assert '<span style="color:#00ff00; font-weight:bold">a mat</span>.' in text


def test_box_from_mask_and_format():
    mask = np.zeros((200, 400), dtype=np.uint8)
    mask[50:100, 100:300] = 1
    box = box_from_mask(mask)
    assert box == (25, 25, 74, 49)
    assert format_box(box) == "{<25><25><74><49>}"
    assert has_box("[identify] what is this " + format_box(box))
    assert not has_box("[identify] what is this")
    assert box_from_mask(np.zeros((10, 10))) is None


@pytest.mark.parametrize(
    ("answer", "boxes", "text", "problem"),
    [
        ("<p>a red circle</p> {<10><20><30><40>}", 1, "a red circle", None),
        ("<p>car</p> {<0><0><50><50>}<delim>{<50><50><100><100>}", 2, "car", None),
        ("{<30><42><81><93>}", 1, "", None),  # the [refer] answer
        ("a red circle</p>a red circle", 0, "a red circle a red circle", "</p>"),
        ("0><28><70><88>}", 0, "", "0><28><70><88>}"),  # a box whose start was cut
        ("<p>cut</p> {<1><2>", 0, "cut", "{<1><2>"),
        ("<p>x</p> {<50><20><30><40>}", 0, "x", "{<50><20><30><40>}"),  # x2 < x1
        ("red", 0, "red", None),
    ],
)
def test_read_answer_draws_only_well_formed_boxes_and_reports_the_rest(answer, boxes, text, problem):
    read = read_answer(answer)
    assert len(read.boxes) == boxes
    assert read.text.replace("\x00box0\x00", "") == text
    if problem is None:
        assert read.problems == []
    else:
        assert any(problem in p for p in read.problems), read.problems
        assert "malformed box text" in answer_html(answer) and "&lt;p&gt;" not in answer_html(answer)
    drawn = draw_answer(Image.new("RGB", (100, 100)), answer)
    assert (drawn is None) == (boxes == 0)
