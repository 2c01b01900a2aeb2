"""MiniGPT-v2 grounding boxes: parse them out of answers, draw them on images, turn a sketch into a box.

Answer format (official): `<p>phrase</p> {<x1><y1><x2><y2>}`, several boxes of one phrase separated by
`<delim>`, coordinates integers 0-100 relative to the image width (x) and height (y). A bare
`{<x1><y1><x2><y2>}` (the [refer] answer) is one box without a phrase. Parsing follows the official demo_v2
rules; drawing is our own PIL code with the demo's 16-colour palette and its width-500 display size.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BOX_SCALE = 100  # coordinates in answers are 0..100
DISPLAY_WIDTH = 500  # official demo_v2 draws on an image resized to this width

# official demo_v2 palette (RGB), in order: a phrase's colour is its index in the answer modulo 16
PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0),
    (0, 255, 0),
    (0, 0, 255),
    (210, 210, 0),
    (255, 0, 255),
    (0, 255, 255),
    (114, 128, 250),
    (0, 165, 255),
    (0, 128, 0),
    (144, 238, 144),
    (238, 238, 175),
    (255, 191, 0),
    (0, 128, 0),
    (226, 43, 138),
    (255, 0, 255),
    (0, 215, 255),
)

_PHRASE_GROUP = re.compile(
    r"<p>(.*?)\}(?!<)", re.DOTALL
)  # "<p>phrase</p> {box}<delim>{box}" up to the last }
_BOX = re.compile(r"\{\s*<(-?\d+)>\s*<(-?\d+)>\s*<(-?\d+)>\s*<(-?\d+)>\s*\}")
_INTEGER = re.compile(r"-?\d+")


@dataclass(frozen=True)
class GroundedBox:
    """One box in pixels of the image it was parsed for. `phrase` is None for a bare [refer] box."""

    phrase: str | None
    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)


def _scaled(integers: list[str], width: int, height: int) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (int(value) for value in integers)
    return (
        x1 / BOX_SCALE * width,
        y1 / BOX_SCALE * height,
        x2 / BOX_SCALE * width,
        y2 / BOX_SCALE * height,
    )


def parse_boxes(answer: str, width: int, height: int) -> list[GroundedBox]:
    """Boxes of an answer, rescaled from 0-100 to pixels of a `width` x `height` image, in answer order.

    Grounding/detection answers give one GroundedBox per box (a phrase with `<delim>` boxes gives several);
    otherwise an answer holding exactly four integers is one phrase-less box (official refer mode);
    anything else gives [].
    """
    last_brace = answer.rfind("}")
    complete = answer[: last_brace + 1] if last_brace != -1 else answer  # drop an unfinished trailing box
    groups = _PHRASE_GROUP.findall(complete)
    if groups:
        boxes = []
        for group in groups:
            if group.count("</p>") != 1:
                continue  # official: a group that does not split into phrase + boxes is skipped
            phrase, box_text = group.split("</p>")
            for box_string in box_text.split("<delim>"):
                integers = _INTEGER.findall(box_string)
                if len(integers) == 4:
                    boxes.append(GroundedBox(phrase.strip(), *_scaled(integers, width, height)))
        return boxes
    integers = _INTEGER.findall(answer)
    if len(integers) == 4:
        return [GroundedBox(None, *_scaled(integers, width, height))]
    return []


def phrase_colours(boxes: list[GroundedBox]) -> dict[str | None, tuple[int, int, int]]:
    """A distinct palette colour per phrase, in order of first appearance."""
    colours: dict[str | None, tuple[int, int, int]] = {}
    for box in boxes:
        if box.phrase not in colours:
            colours[box.phrase] = PALETTE[len(colours) % len(PALETTE)]
    return colours


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def draw_boxes(image: Image.Image, answer: str, display_width: int = DISPLAY_WIDTH) -> Image.Image | None:
    """The image resized to `display_width` (aspect kept) with the answer's boxes and phrase labels drawn.

    Returns None when the answer has no box (official parsing, `parse_boxes`). Each phrase gets its own colour;
    a box is a 3-px rectangle with the phrase on a filled label above it (inside the image when the box touches
    the top).
    """
    canvas = _display_canvas(image, display_width)
    return _render(canvas, parse_boxes(answer, *canvas.size))


def _display_canvas(image: Image.Image, display_width: int) -> Image.Image:
    height = max(1, round(image.height * display_width / image.width))
    return image.convert("RGB").resize((display_width, height), Image.BICUBIC)


def _render(canvas: Image.Image, boxes: list[GroundedBox]) -> Image.Image | None:
    """Draw `boxes` (pixels of `canvas`) on `canvas`; None when there is none."""
    if not boxes:
        return None
    colours = phrase_colours(boxes)
    draw = ImageDraw.Draw(canvas)
    font = _font(max(12, canvas.width // 32))
    for box in boxes:
        colour = colours[box.phrase]
        x1, x2 = sorted((box.x1, box.x2))
        y1, y2 = sorted((box.y1, box.y2))
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=3)
        if box.phrase:
            left, top, right, bottom = draw.textbbox((0, 0), box.phrase, font=font)
            label_w, label_h = right - left + 6, bottom - top + 6
            label_y = y1 - label_h if y1 - label_h >= 0 else y1
            draw.rectangle((x1, label_y, x1 + label_w, label_y + label_h), fill=colour)
            text_colour = (0, 0, 0) if sum(colour) > 400 else (255, 255, 255)
            draw.text((x1 + 3 - left, label_y + 3 - top), box.phrase, fill=text_colour, font=font)
    return canvas


def colour_phrases_html(answer: str) -> str:
    """The answer as HTML for the chat: boxes removed, each grounded phrase in its box colour (official demo)."""
    boxes = parse_boxes(answer, BOX_SCALE, BOX_SCALE)
    colours = phrase_colours(boxes)
    text = html.escape(answer, quote=False)

    def colour_group(match: re.Match) -> str:
        phrase = html.unescape(match.group(1)).strip()
        colour = colours.get(phrase)
        if colour is None:
            return html.escape(phrase, quote=False)
        hex_colour = "#{:02x}{:02x}{:02x}".format(*colour)
        return f'<span style="color:{hex_colour}; font-weight:bold">{html.escape(phrase, quote=False)}</span>'

    # "&lt;p&gt;phrase&lt;/p&gt; {box}<delim>{box}" -> coloured phrase
    escaped_group = re.compile(
        r"&lt;p&gt;(.*?)&lt;/p&gt;(?:\s*\{[^}]*\}(?:\s*&lt;delim&gt;)?)*",
        re.DOTALL,
    )
    return escaped_group.sub(colour_group, text).strip()


def box_from_mask(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """The 0-100 box `(x1, y1, x2, y2)` around a drawn sketch, or None when nothing was drawn.

    mask: (H, W), non-zero where the user drew. Official demo_v2: resize the mask to 100x100 (nearest) and
    take the first/last non-empty column and row.
    """
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {mask.shape}")
    small = np.asarray(
        Image.fromarray((mask > 0).astype(np.uint8) * 255).resize((BOX_SCALE, BOX_SCALE), Image.NEAREST)
    )
    rows = np.flatnonzero(small.any(axis=1))
    cols = np.flatnonzero(small.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def format_box(box: tuple[int, int, int, int]) -> str:
    """`{<x1><y1><x2><y2>}`, the text form of a 0-100 box in MiniGPT-v2 prompts."""
    return "{" + "".join(f"<{value}>" for value in box) + "}"


def has_box(text: str) -> bool:
    """True when the text already holds a `{<x1><y1><x2><y2>}` box."""
    return _BOX.search(text) is not None


# --- strict reading for display (the demos): well-formed boxes drawn, anything else reported -----------------
_BOX_TEXT = r"\{\s*<-?\d+>\s*<-?\d+>\s*<-?\d+>\s*<-?\d+>\s*\}"
_GROUP_STRICT = re.compile(
    r"<p>([^<>{}]*)</p>\s*(" + _BOX_TEXT + r"(?:\s*<delim>\s*" + _BOX_TEXT + r")*)", re.DOTALL
)
_BARE_BOX = re.compile(_BOX_TEXT)
# what is left of box markup once the well-formed parts are taken out: a stray tag, brace or "<12>" piece
_MARKUP_PIECE = r"(?:</?p>|<delim>|[{}]|<?-?\d+>|<-?\d+)"
_MARKUP_LEFT = re.compile(_MARKUP_PIECE + r"(?:\s*" + _MARKUP_PIECE + r")*")
_BARE_MARK = "\x00box{}\x00"  # where a bare box stood in `GroundedAnswer.text` (replaced by `answer_html`)


@dataclass(frozen=True)
class GroundedAnswer:
    """An answer read for display: `boxes` in 0-100 units (only well-formed, in-range ones), `text` without any
    box markup (phrases kept), `phrases` as (phrase, box indices), `problems` the malformed pieces, verbatim."""

    boxes: list[GroundedBox]
    text: str
    problems: list[str]


def read_answer(answer: str) -> GroundedAnswer:
    """Strict reading of a grounded answer for the demos (the official demo draws any 4 integers; we draw only
    complete `{<x1><y1><x2><y2>}` boxes with coordinates in 0-100 and report every other piece of markup).

    `<p>phrase</p> {box}<delim>{box}` gives one box per {box} with the phrase; a bare `{box}` outside a group
    gives a phrase-less box (the [refer] answer). Broken forms, e.g. `a red circle</p>a red circle` or
    `0><28><70><88>}` (a box whose start was cut), are listed in `problems` and never drawn. A bare box's place
    in `text` is marked for `answer_html`."""
    boxes: list[GroundedBox] = []
    problems: list[str] = []

    def _box(text: str, phrase: str | None) -> None:
        values = [int(v) for v in _INTEGER.findall(text)]
        if all(0 <= v <= BOX_SCALE for v in values) and values[0] < values[2] and values[1] < values[3]:
            boxes.append(GroundedBox(phrase, *(float(v) for v in values)))
        else:
            problems.append(text.strip())

    def group(match: re.Match) -> str:
        phrase = match.group(1).strip()
        for box_text in _BARE_BOX.findall(match.group(2)):
            _box(box_text, phrase)
        return phrase

    text = _GROUP_STRICT.sub(group, answer)

    def bare(match: re.Match) -> str:
        count = len(boxes)
        _box(match.group(0), None)
        return _BARE_MARK.format(count) if len(boxes) > count else ""

    text = _BARE_BOX.sub(bare, text)
    problems += [piece.strip() for piece in _MARKUP_LEFT.findall(text) if piece.strip()]
    text = _MARKUP_LEFT.sub(" ", text)
    return GroundedAnswer(boxes, re.sub(r"\s+", " ", text).strip(), problems)


def answer_html(answer: str) -> str:
    """The chat text of an answer: markup never shown raw. Grounded phrases in their box colour, boxes removed,
    and a note naming any malformed box text (which is not drawn)."""
    read = read_answer(answer)
    colours = phrase_colours(read.boxes)
    text = html.escape(read.text, quote=False)
    for phrase, colour in colours.items():
        if phrase:
            hex_colour = "#{:02x}{:02x}{:02x}".format(*colour)
            escaped = html.escape(phrase, quote=False)
            text = text.replace(
                escaped, f'<span style="color:{hex_colour}; font-weight:bold">{escaped}</span>', 1
            )
    for index, box in enumerate(read.boxes):  # a bare [refer] box: its coordinates in its colour
        hex_colour = "#{:02x}{:02x}{:02x}".format(*colours[box.phrase])
        where = "box ({:g}, {:g})-({:g}, {:g})".format(*box.xyxy)
        text = text.replace(
            html.escape(_BARE_MARK.format(index)),
            f'<span style="color:{hex_colour}; font-weight:bold">{where}</span>',
        )
    if read.problems:
        shown = ", ".join(f"`{p}`" for p in read.problems[:3])
        text = f"{text} (malformed box text in the answer, not drawn: {shown})".strip()
    return text or "(empty answer)"


def draw_answer(image: Image.Image, answer: str, display_width: int = DISPLAY_WIDTH) -> Image.Image | None:
    """Like `draw_boxes`, for the strictly read boxes of `answer` (`read_answer`); None when it has none."""
    canvas = _display_canvas(image, display_width)
    sx, sy = canvas.width / BOX_SCALE, canvas.height / BOX_SCALE
    boxes = [
        GroundedBox(box.phrase, box.x1 * sx, box.y1 * sy, box.x2 * sx, box.y2 * sy)
        for box in read_answer(answer).boxes
    ]
    return _render(canvas, boxes)
