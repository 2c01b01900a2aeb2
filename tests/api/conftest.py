"""Tiny zoo entries built from the official-format parity fixtures (EVA, Q-Former, LLM, MiniGPT checkpoints)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from minigpt4.api.locate import WeightSpec
from minigpt4.api.zoo import MODEL_ZOO, ZooEntry, register_zoo_entry
from tests.conftest import PARITY

MODELS = PARITY / "models"
TINY_VIT = {"vit_width": 48, "vit_depth": 2, "vit_num_heads": 4}


def _specs(prefix: str, with_qformer: bool) -> tuple[WeightSpec, ...]:
    specs = [
        WeightSpec(
            "llama_model", f"{prefix}-llm", "llm", "tiny LLaMA folder", "the parity fixtures", is_dir=True
        ),
        WeightSpec(
            "ckpt", f"{prefix}-ckpt", "minigpt_ckpt.pth", "tiny MiniGPT checkpoint", "the parity fixtures"
        ),
        WeightSpec("vit_ckpt", f"{prefix}-vit", "eva_vit.pth", "tiny EVA ViT", "the parity fixtures"),
    ]
    if with_qformer:
        specs.append(
            WeightSpec("q_former_model", f"{prefix}-qformer", "qformer.pth", "tiny Q-Former", "fixtures")
        )
    return tuple(specs)


TINY_ENTRIES = {
    "minigpt_v2": ZooEntry(
        "test-tiny-v2", "minigpt_v2", "pretrain", "vqa", _specs("test-tiny-v2", False),
        {**TINY_VIT, "image_size": 56, "lora_r": 4, "lora_alpha": 16, "max_txt_len": 64, "chat_template": True,
         "end_sym": "</s>", "prompt_template": "[INST] {} [/INST]"},
    ),
    "minigpt4_vicuna0": ZooEntry(
        "test-tiny-vicuna0", "minigpt4", "pretrain_vicuna0", "caption", _specs("test-tiny-vicuna0", True),
        {**TINY_VIT, "image_size": 42, "num_query_token": 8, "qformer_hidden_size": 32, "qformer_num_layers": 2,
         "qformer_num_heads": 4, "qformer_intermediate_size": 64, "qformer_max_position_embeddings": 32, "max_txt_len": 32, "end_sym": "###",
         "prompt_template": "###Human: {} ###Assistant: "},
    ),
    "minigpt4_llama2": ZooEntry(
        "test-tiny-llama2", "minigpt4", "pretrain_llama2", "caption", _specs("test-tiny-llama2", False),
        {**TINY_VIT, "image_size": 56, "max_txt_len": 32, "end_sym": "</s>", "prompt_template": "[INST] {} [/INST] "},
    ),
}  # fmt: skip


def fixture_weights(variant: str) -> dict[str, Path]:
    """{weight id: path} of a parity fixture variant, for `weights=`."""
    entry = TINY_ENTRIES[variant]
    return {spec.weight_id: MODELS / variant / spec.filename for spec in entry.weights}


@pytest.fixture(scope="package", autouse=True)
def tiny_zoo(tmp_path_factory):
    """Register the tiny entries; point the user config and weights folder at empty places."""
    mp = pytest.MonkeyPatch()
    empty = tmp_path_factory.mktemp("empty-weights")
    mp.setenv("MINIGPT4_WEIGHTS_DIR", str(empty / "weights"))
    mp.setenv("MINIGPT4_WEIGHTS_CONFIG", str(empty / "weights.yaml"))
    for entry in TINY_ENTRIES.values():
        register_zoo_entry(entry, overwrite=True)
    yield TINY_ENTRIES
    for entry in TINY_ENTRIES.values():
        MODEL_ZOO.pop(entry.name, None)
    mp.undo()


@pytest.fixture(scope="session")
def image_file(tmp_path_factory) -> Path:
    """A non-square RGBA PNG (conversion to RGB must match for path and PIL inputs)."""
    pixels = (np.random.default_rng(0).random((70, 90, 4)) * 255).astype("uint8")
    path = tmp_path_factory.mktemp("images") / "cat.png"
    Image.fromarray(pixels, mode="RGBA").save(path)
    return path
