"""MiniGPT-5 stage 2: MMDialog conversations (official `dataloader.py:MMDialogDataset`).

`<storage>/<file>` holds JSON lines `{"conversation_id", "conversation": [{"turn": [{"__TEXT__": ...},
{"__MEDIA__": "<id>"}?]}, ...]}`; the image of a turn is `<folder of the file>/<id>.jpg`. Per conversation (two
turns or more), with `history` starting as the system prompt:

* turn i gets the role `###Human:` (even i) or `###Assistant:` (odd i); source = history + role;
* every turn i >= 1 is a sample `mmdialog{conversation_id}_{i}`: target `{text} [IMG0]..[IMG7] ###` when the turn
  has an image (the output image), else `{text} ###`; inputs = the images still in the history (`[None]` if none);
* the turn then joins the history: source + ` {text} <Img><ImageHere></Img>\\n` (with image) or ` {text}\\n`;
* after each assistant turn from the fourth turn on (odd i > 2) the oldest exchange is dropped: the first
  `###Human: ... ###Human:` span becomes `###Human:`, with the images it held;
* a conversation is cut (its later turns dropped) at a turn whose text is empty or ends with `.jpg`, whose image
  is one of the two official banned ids or is missing, or, outside test mode, whose text is longer than 50 LLaMA
  tokens.

Ours: a line that is not JSON, a record without a `conversation` list, or a turn without text is skipped /
cuts its conversation, counted, instead of crashing the build; every cut is counted by reason. The token count
of the 50-token rule is taken without BOS (`add_special_tokens=False`). No pickle cache.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from minigpt4.datasets.files import require_file
from minigpt4.datasets.formats.minigpt5 import (
    IMAGE_SLOT,
    VOKEN_TEXT,
    Minigpt5Dataset,
    Minigpt5Record,
    SkipCounter,
    TokenizerAdapter,
)

LAYOUT = (
    "JSON lines {conversation_id, conversation: [{turn: [{__TEXT__: text}, {__MEDIA__: id}?]}, ...]}; the image "
    "of a turn at <folder of the file>/<id>.jpg"
)
SYSTEM_PROMPT = (
    "Give the following images in <Img>ImageContent</Img> format. You will be able to see the images once I "
    "provide it to you. Please generate conversations with appropriate images."
)
BANNED_MEDIA_IDS = frozenset({"-3872362534310063124", "3713630103994725971"})
MAX_TURN_TOKENS = 50
OLDEST_EXCHANGE = re.compile("###Human:(.*?)###Human:", re.DOTALL)


def trim_oldest_exchange(history: str, images: list[str]) -> tuple[str, list[str]]:
    """Drop the first `###Human: ... ###Human:` span (official `str.replace` of the match) and its images."""
    match = OLDEST_EXCHANGE.search(history)
    if match is None:
        return history, images
    dropped = match.group(0)
    return history.replace(dropped, "###Human:"), images[dropped.count(IMAGE_SLOT) :]


def _turn_parts(conv: Any) -> tuple[str, str | None] | None:
    """(text, media id or None) of one turn, or None when malformed."""
    turn = conv.get("turn") if isinstance(conv, dict) else None
    if not isinstance(turn, list) or not turn or not isinstance(turn[0], dict):
        return None
    text = turn[0].get("__TEXT__")
    if not isinstance(text, str):
        return None
    if len(turn) == 1:
        return text, None
    media = turn[1].get("__MEDIA__") if isinstance(turn[1], dict) else None
    return (text, str(media)) if media is not None else None


def mmdialog_records(
    data_path: str | Path,
    tokenizer: TokenizerAdapter,
    test: bool = False,
    check_images: bool = True,
    max_turn_tokens: int = MAX_TURN_TOKENS,
    name: str = "mmdialog",
) -> tuple[list[Minigpt5Record], SkipCounter, int]:
    """Records of one JSON-lines file, the skip counter and the number of conversations read."""
    path = require_file(data_path, f"{name} conversations", LAYOUT)
    folder = path.parent
    skipped = SkipCounter(name, path)
    records: list[Minigpt5Record] = []
    conversations = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        conversations += 1
        where = f"{path.name} line {number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            skipped.skip("lines that are not JSON", where)
            continue
        conversation = data.get("conversation") if isinstance(data, dict) else None
        if not isinstance(conversation, list) or "conversation_id" not in data:
            skipped.skip("records without conversation_id and a conversation list", where)
            continue
        if len(conversation) < 2:
            skipped.skip("conversations of fewer than 2 turns", where)
            continue
        records.extend(
            _conversation_records(
                data["conversation_id"], conversation, folder, tokenizer, test, check_images, max_turn_tokens,
                skipped, where,
            )
        )  # fmt: skip
    return records, skipped, conversations


def _cut_reason(
    parts: tuple[str, str | None] | None,
    folder: Path,
    tokenizer: TokenizerAdapter,
    test: bool,
    check_images: bool,
    max_turn_tokens: int,
) -> str | None:
    if parts is None:
        return "malformed turns"
    text, media = parts
    if not text.strip():
        return "empty texts"
    if text.endswith(".jpg"):
        return "texts ending in .jpg"
    if media is not None and media in BANNED_MEDIA_IDS:
        return "the two banned image ids"
    if media is not None and check_images and not (folder / f"{media}.jpg").is_file():
        return "missing images"
    if not test and tokenizer.count(text) > max_turn_tokens:
        return f"texts over {max_turn_tokens} tokens"
    return None


def _conversation_records(
    conversation_id: Any,
    conversation: list[Any],
    folder: Path,
    tokenizer: TokenizerAdapter,
    test: bool,
    check_images: bool,
    max_turn_tokens: int,
    skipped: SkipCounter,
    where: str,
) -> list[Minigpt5Record]:
    records: list[Minigpt5Record] = []
    history = SYSTEM_PROMPT
    images: list[str] = []
    for i, conv in enumerate(conversation):
        parts = _turn_parts(conv)
        reason = _cut_reason(parts, folder, tokenizer, test, check_images, max_turn_tokens)
        if reason is not None:
            skipped.skip(f"conversations cut at {reason}", f"{where} turn {i}")
            break
        text, media = parts
        image = str(folder / f"{media}.jpg") if media is not None else None
        source = history + ("###Human:" if i % 2 == 0 else "###Assistant:")
        if i > 0:
            target = f"{text} {VOKEN_TEXT} ###" if image is not None else f"{text} ###"
            inputs = tuple(images) or (None,)
            records.append(
                Minigpt5Record(source, target, inputs, image, None, f"mmdialog{conversation_id}_{i}")
            )
        if image is not None:
            history = f"{source} {text} {IMAGE_SLOT}\n"
            images.append(image)
        else:
            history = f"{source} {text}\n"
        if i % 2 == 1 and i > 2:
            history, images = trim_oldest_exchange(history, images)
    return records


class MMDialogDataset(Minigpt5Dataset):
    LAYOUT = LAYOUT
    UNIT = "conversations"

    @classmethod
    def read(cls, path, storage, tokenizer, *, test, choose, build_info, name):
        return mmdialog_records(
            path,
            tokenizer,
            test=test,
            check_images=bool(build_info.get("check_images", True)),
            max_turn_tokens=int(build_info.get("max_turn_tokens", MAX_TURN_TOKENS)),
            name=name,
        )
