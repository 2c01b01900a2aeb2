"""The MiniGPT-v2 box string `{<x1><y1><x2><y2>}` (parity family `bbox_format`).

Each coordinate is its pixel value divided by the original image width (x) or height (y), times 100, truncated
toward zero with `int()` exactly as the official datasets do; x2 = x + w, y2 = y + h from a COCO/VG [x, y, w, h].
Values are not clamped: boxes beyond the image give numbers above 100 or truncated negatives (official).
"""

from __future__ import annotations

from collections.abc import Sequence

BOX_SCALE = 100


def normalised_box(bbox_xywh: Sequence[float], image_width: int, image_height: int) -> list[int]:
    """[x, y, w, h] pixels -> [x1, y1, x2, y2] on the 0-100 grid (official float order, int truncation)."""
    x, y, w, h = bbox_xywh
    return [
        int(x / image_width * BOX_SCALE),
        int(y / image_height * BOX_SCALE),
        int((x + w) / image_width * BOX_SCALE),
        int((y + h) / image_height * BOX_SCALE),
    ]


def box_string(bbox_xywh: Sequence[float], image_width: int, image_height: int) -> str:
    """[x, y, w, h] pixels of an image of the given size -> '{<x1><y1><x2><y2>}'."""
    return "{{<{}><{}><{}><{}>}}".format(*normalised_box(bbox_xywh, image_width, image_height))


def phrase_with_boxes(phrase: str, boxes: Sequence[str]) -> str:
    """'<p>phrase</p> {box}<delim>{box}': the detection answer format (several boxes joined by <delim>)."""
    return f"<p>{phrase}</p> " + "<delim>".join(boxes)
