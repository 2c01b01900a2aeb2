"""MiniGPT-5 test helpers: the parity fixture's tokenizer with the 9 MiniGPT-5 tokens, tiny files in the three
official layouts (spec minigpt5_anatomy.md §3), and builder configs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf
from PIL import Image

from minigpt4.models.tokenizer import LegacyLlamaTokenizer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "parity" / "minigpt5"
NEW_TOKENS = [*(f"[IMG{i}]" for i in range(8)), "<ImageHere>"]


class _AddedTokensStripTokenizer(LegacyLlamaTokenizer):
    """transformers-4.31 handling of tokens added as plain strings (they eat the whitespace around them), for as
    long as `models.vokens.add_voken_tokens` (issue #21) is not on this branch."""

    def add_minigpt5_tokens(self) -> None:
        self.add_special_tokens({"additional_special_tokens": NEW_TOKENS}, replace_extra_special_tokens=False)
        self._split_tokens = sorted(set(self._split_tokens) | set(NEW_TOKENS), key=len, reverse=True)
        self._split_pattern = re.compile("(" + "|".join(re.escape(t) for t in self._split_tokens) + ")")

    def tokenize(self, text: str, **kwargs: Any) -> list[str]:
        chunks = self._split_pattern.split(text)
        for i in range(1, len(chunks), 2):
            if chunks[i] in NEW_TOKENS:
                chunks[i - 1], chunks[i + 1] = chunks[i - 1].rstrip(), chunks[i + 1].lstrip()
        return [
            piece
            for chunk in chunks
            if chunk
            for piece in (
                [chunk] if chunk in self._split_tokens else self.sp_model.encode(chunk, out_type=str)
            )
        ]


def fixture_tokenizer(stage: str = "stage1") -> Any:
    """The fixture's LLaMA tokenizer set up as official MiniGPT-5 does: pad = eos, then the 9 new tokens."""
    folder = FIXTURES / stage / "tokenizer"
    try:
        from minigpt4.models.vokens import add_voken_tokens
    except ImportError:  # the model of issue #21 is not merged yet
        tokenizer = _AddedTokensStripTokenizer.from_pretrained(str(folder))
        tokenizer.pad_token = tokenizer.eos_token
        tokenizer.add_minigpt5_tokens()
        return tokenizer
    tokenizer = LegacyLlamaTokenizer.from_pretrained(str(folder))
    add_voken_tokens(tokenizer)
    return tokenizer


def fixture_json(stage: str, name: str) -> Any:
    return json.loads((FIXTURES / stage / name).read_text())


def write_image(path: Path, size: tuple[int, int] = (20, 12), value: int = 90) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def minigpt5_cfg(storage: Path, train: str | None = None, val: str | None = None, test: str | None = None,
                 input_size: int = 16, output_size: int = 16, **extra: Any):  # fmt: skip
    """A merged `datasets.<name>` node: paths, small sizes, no flips (deterministic tests)."""
    build_info = {
        "storage": str(storage),
        "train_data_path": train,
        "val_data_path": val,
        "test_data_path": test,
    }
    build_info.update(extra)
    return OmegaConf.create(
        {
            "data_type": "images",
            "build_info": build_info,
            "vis_processor": {
                "train": {"name": "minigpt5_input_image", "image_size": input_size},
                "eval": {"name": "minigpt5_input_image", "image_size": input_size},
            },
            "output_vis_processor": {
                "train": {"name": "minigpt5_output_image", "image_size": output_size},
                "eval": {"name": "minigpt5_output_image", "image_size": output_size, "normalize": False},
            },
        }
    )
