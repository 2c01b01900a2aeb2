"""The quickstart's text-only LLM pretraining (train_configs/shapes/minigptv2_text_pretrain.yaml) teaches the tiny
random LLM to answer "Is there a <colour> <shape>?" about a description: the comparison it then reuses on images."""

from __future__ import annotations

import argparse
import itertools

import torch

from minigpt4 import REPO_ROOT
from minigpt4.cli.quickstart import STAGES, build_trained, last_checkpoint
from minigpt4.cli.train import run_training
from minigpt4.datasets.shapes import generate_world
from minigpt4.datasets.shapes.scene import COLORS, SHAPES
from minigpt4.models import prompting
from minigpt4.processors.text import pre_caption

CONFIG = "train_configs/shapes/minigptv2_text_pretrain.yaml"


def yes_no_logit_margins(model, pairs):
    """logit('yes') - logit('no') at the answer position for each (description, question)."""
    tokenizer = model.llama_tokenizer
    yes, no = (tokenizer(word, add_special_tokens=False).input_ids[0] for word in ("yes", "no"))
    texts = [pre_caption(f"The image shows {d}. {q}") for d, q in pairs]  # as the text processor trains it
    prompts = prompting.apply_template(model.prompt_template, texts)
    with torch.no_grad():
        margins = []
        for prompt in prompts:  # one by one: no padding to account for
            embeds, atts = model.prompt_wrap(None, None, [prompt])
            logits = model.llama_model(inputs_embeds=embeds, attention_mask=atts).logits[0, -1]
            margins.append(float(logits[yes] - logits[no]))
    return margins


def test_text_pretraining_teaches_the_tiny_llm_to_compare_words(tmp_path, monkeypatch):
    assert (
        CONFIG,
        "minigpt_v2_text",
        None,
    ) in STAGES  # the quickstart runs it, and the finetune starts from it
    world = generate_world(
        tmp_path / "world", size="small", num_train=4000, num_heldout=6, max_objects=1
    )  # the quickstart's
    monkeypatch.setenv("SHAPES_WORLD", str(world.root))
    options = [
        f"run.output_dir={tmp_path}",
        "model.vit_ckpt=",
    ]  # the config's 1500 steps; text only: no encoder
    run_training(argparse.Namespace(cfg_path=str(REPO_ROOT / CONFIG), options=options))
    model, _ = build_trained(last_checkpoint(tmp_path / "minigpt_v2_text"))

    objects = [f"a {c} {s}" for c, s in itertools.product(COLORS, SHAPES)]
    pairs = [(d, f"Is there {q}?") for d, q in itertools.product(objects, objects)]  # all 144, 12 true
    margins = yes_no_logit_margins(model, pairs)
    said_yes = [m > 0 for m in margins]
    true = [d == q[9:-1] for d, q in pairs]
    recall = sum(y and t for y, t in zip(said_yes, true)) / sum(true)
    specificity = sum(not y and not t for y, t in zip(said_yes, true)) / (len(true) - sum(true))
    assert (recall + specificity) / 2 > 0.85  # balanced: "no" to everything scores 0.5
