"""models/weight_sources.py: one true line about where the weights came from; warnings only for real gaps."""

from __future__ import annotations

import logging

import pytest
import torch
from omegaconf import OmegaConf

from minigpt4.common.config import model_default_path
from minigpt4.common.registry import registry
from minigpt4.models.checkpoint import trainable_state_dict

UNTRUE_WHEN_THE_CHECKPOINT_HOLDS_IT = ("RANDOM", "random weights", "not in the file", "holds no")


@pytest.fixture(scope="module")
def tiny():
    """(model class, config, a complete checkpoint's tensors) of the tiny MiniGPT-4 (every part trainable)."""
    cfg = OmegaConf.load(model_default_path("minigpt4", "tiny_vicuna0")).model
    model_cls = registry.get_model_class("minigpt4")
    torch.manual_seed(0)
    state = trainable_state_dict(model_cls.from_config(cfg))
    return model_cls, cfg, state


def _build(tiny, tmp_path, state, caplog, **options):
    model_cls, cfg, _ = tiny
    torch.save({"model": state}, tmp_path / "run.pth")
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        model_cls.from_config(OmegaConf.merge(cfg, {"ckpt": str(tmp_path / "run.pth"), **options}))
    return [r for r in caplog.records if r.levelno >= logging.INFO]


def test_a_complete_checkpoint_gives_one_true_line(tiny, tmp_path, caplog):
    _, _, state = tiny
    records = _build(tiny, tmp_path, state, caplog)
    texts = [r.getMessage() for r in records]
    assert not [t for t in texts if any(claim in t for claim in UNTRUE_WHEN_THE_CHECKPOINT_HOLDS_IT)], texts
    said = [t for t in texts if t.startswith("weights:")]
    assert len(said) == 1, texts
    assert f"MiniGPT checkpoint {tmp_path / 'run.pth'} -> " in said[0]
    for part in ("visual_encoder", "Qformer", "query_tokens", "llama_proj", "llama_model"):
        assert part in said[0]
    assert [r.getMessage() for r in records if r.levelno >= logging.WARNING] == []


def test_a_checkpoint_lacking_tensors_still_warns(tiny, tmp_path, caplog):
    _, _, state = tiny
    without_llm = {k: v for k, v in state.items() if not k.startswith("llama_model.")}
    records = _build(tiny, tmp_path, without_llm, caplog, ckpt_allow_missing=True)
    warnings = [r.getMessage() for r in records if r.levelno >= logging.WARNING]
    assert any(w.startswith("LLM:") and "RANDOM" in w for w in warnings), warnings

    without_proj = {k: v for k, v in state.items() if not k.startswith("llama_proj.")}
    records = _build(tiny, tmp_path, without_proj, caplog, ckpt_allow_missing=True)
    warnings = [r.getMessage() for r in records if r.levelno >= logging.WARNING]
    assert any("lacks 2 trainable tensors (e.g. llama_proj." in w for w in warnings), warnings


def test_random_init_says_a_part_starts_random_on_purpose_instead_of_warning(tiny, tmp_path, caplog):
    _, _, state = tiny
    without_llm = {k: v for k, v in state.items() if not k.startswith("llama_model.")}
    records = _build(tiny, tmp_path, without_llm, caplog, ckpt_allow_missing=True, random_init=["llm"])
    assert [r.getMessage() for r in records if r.levelno >= logging.WARNING] == []
    said = [r.getMessage() for r in records if r.levelno == logging.INFO]
    assert any(t.startswith("LLM:") and "RANDOM" in t and "model.random_init" in t for t in said), said

    # a part the list does not name still warns
    without_both = {k: v for k, v in without_llm.items() if not k.startswith(("Qformer.", "query_tokens"))}
    records = _build(tiny, tmp_path, without_both, caplog, ckpt_allow_missing=True, random_init=["llm"])
    warnings = [r.getMessage() for r in records if r.levelno >= logging.WARNING]
    assert [w.split(":")[0] for w in warnings] == ["Q-Former"], warnings


def test_random_init_names_an_unknown_part(tiny, tmp_path, caplog):
    from minigpt4.common.errors import ConfigError

    _, _, state = tiny
    with pytest.raises(ConfigError, match=r"model.random_init: 'lm' is no pretrained part.*'llm'"):
        _build(tiny, tmp_path, state, caplog, random_init=["lm"])
