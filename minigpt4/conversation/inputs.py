"""Checks on what a chat user sends: the message text and uploaded image files.

Each check raises `ChatInputError` with a sentence meant for the chat window, so the demos can show it and
keep serving instead of failing the request.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

from minigpt4.common.errors import DataError

MAX_MESSAGE_CHARS = 2000
MAX_IMAGE_PIXELS = 50_000_000  # 50 MP: larger uploads are refused before decoding (memory, time)


class ChatInputError(DataError):
    """A message or upload the chat cannot use; `str(error)` is a readable sentence for the user."""


def check_message(text: str | None, max_chars: int = MAX_MESSAGE_CHARS) -> str:
    """The message, stripped; raises for an empty or over-long one."""
    message = (text or "").strip()
    if not message:
        raise ChatInputError("Please type a message first (it is empty).")
    if len(message) > max_chars:
        raise ChatInputError(
            f"Your message is {len(message)} characters long; the limit is {max_chars}. Please shorten it."
        )
    return message


def open_upload(image: str | Path | Image.Image | None, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """A decoded RGB image from an uploaded file path (or a PIL image); raises for missing, corrupt or huge ones."""
    if image is None:
        raise ChatInputError("Please upload an image first (drop a picture into the image box).")
    if isinstance(image, Image.Image):
        return _checked_size(image, max_pixels, "the image").convert("RGB")
    path = Path(image)
    name = path.name
    try:
        with Image.open(path) as opened:
            _checked_size(opened, max_pixels, name)
            return opened.convert("RGB")
    except ChatInputError:
        raise
    except FileNotFoundError as exc:
        raise ChatInputError(f"The upload {name} was not received; please upload it again.") from exc
    except Image.DecompressionBombError as exc:
        raise ChatInputError(
            f"{name} is too large to open safely; please upload a picture below {max_pixels // 1_000_000} megapixels."
        ) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ChatInputError(
            f"{name} is not a readable image (corrupt or not a picture); please upload a PNG, JPEG or WebP file."
        ) from exc


def _checked_size(image: Image.Image, max_pixels: int, name: str) -> Image.Image:
    width, height = image.size
    if width * height > max_pixels:
        raise ChatInputError(
            f"{name} is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels); the limit is "
            f"{max_pixels / 1e6:.0f} megapixels. Please downscale it (the model sees 224 or 448 pixels anyway)."
        )
    if width == 0 or height == 0:
        raise ChatInputError(f"{name} is empty ({width}x{height} pixels).")
    return image
