"""The quickstart's tiny image encoder: pretrained on caption pairs, saved as eva_vit_g.pth, loaded by vit_ckpt."""

import json
import math

import pytest
import torch

from minigpt4.common.config import Config
from minigpt4.common.errors import DataError
from minigpt4.datasets.shapes import generate_world
from minigpt4.models.minigpt4 import MiniGPT4
from minigpt4.runners.encoder_recipe import (
    CaptionWords,
    EncoderRecipe,
    order_loss,
    position_loss,
    pretrain_encoder,
    read_caption_pairs,
)

STAGE1 = "train_configs/shapes/minigpt4_stage1.yaml"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    generate_world(root, num_train=60, num_heldout=6, max_objects=1)
    return root


def test_caption_words_drop_words_every_caption_shares():
    words = CaptionWords(["A red circle.", "A blue circle.", "A red square."])
    assert words.vocab == ["blue", "circle", "red", "square"]
    assert words.targets.tolist() == [[0, 1, 1, 0], [1, 1, 0, 0], [0, 0, 1, 1]]


def test_caption_words_in_order_pad_with_ignored_slots():
    words = CaptionWords(["A red circle.", "A red circle and a blue square.", "A blue square."])
    assert words.vocab == ["and", "blue", "circle", "red", "square"]
    assert words.order.tolist() == [[3, 2, -100, -100, -100], [3, 2, 0, 1, 4], [1, 4, -100, -100, -100]]


def test_order_loss_scores_the_words_slot_by_slot_and_ignores_padding():
    order = torch.tensor([[3, 2, -100], [1, 4, 0]])
    right = torch.full((2, 3, 5), -20.0).scatter(2, order.clamp(min=0).unsqueeze(2), 20.0)
    assert order_loss(right, order) < 1e-6
    swapped = right.flip(1)  # the same words, in the other order
    assert order_loss(swapped, order) > 10
    padding_only = right.clone()
    padding_only[0, 2] = torch.randn(5)  # the padded slot's logits do not count
    assert order_loss(padding_only, order) < 1e-6


def test_position_loss_is_low_only_when_each_token_names_its_own_place():
    places = torch.eye(5).repeat(3, 1, 1) * 20  # token i puts its mass on place i
    assert position_loss(places) < 1e-6
    assert position_loss(places.flip(1)) > 10  # every token names another's place
    assert position_loss(torch.zeros(3, 5, 5)).item() == pytest.approx(math.log(5))


@pytest.mark.slow
def test_pretrained_encoder_learns_and_loads_through_vit_ckpt(world, tmp_path, repo_root, monkeypatch):
    monkeypatch.setenv("SHAPES_WORLD", str(world))
    model_cfg = Config.from_path(repo_root / STAGE1, purpose="train").model_cfg
    out = tmp_path / "tiny_eva_vit.pth"
    # position_weight 1.0, not the default 0.1, so that 600 steps of a 60-image world show the tokens learning
    report = pretrain_encoder(
        [world / "cc_sbu_align", world / "two_object_captions"],
        model_cfg,
        out,
        EncoderRecipe(steps=600, warmup_steps=10, position_weight=1.0),
    )
    assert report["loss"] < 0.4  # from ~0.69 (a random multi-label guess)
    assert report["vocab"] >= 7  # 4 colours + 3 shapes
    assert report["position_loss"] < 2.0  # from ln(65) ~ 4.2: the tokens learn where they are
    assert report["order_loss"] < 0.7  # from ln(vocab) ~ 2: the pooled token spells the caption in order

    state = torch.load(out, map_location="cpu", weights_only=True)
    assert state["patch_embed.proj.weight"].shape == (128, 3, 14, 14)  # the config's vit_width, patch 14
    model_cfg.vit_ckpt = str(out)
    model = MiniGPT4.from_config(model_cfg)
    assert torch.equal(model.visual_encoder.blocks[2].mlp.fc2.weight, state["blocks.2.mlp.fc2.weight"])
    assert not any(p.requires_grad for p in model.visual_encoder.parameters())  # frozen as the real ViT


def test_missing_images_are_named(world, tmp_path):
    align = tmp_path / "cc_sbu_align"
    (align / "image").mkdir(parents=True)
    records = json.loads((world / "cc_sbu_align" / "filter_cap.json").read_text())
    (align / "filter_cap.json").write_text(json.dumps(records))
    with pytest.raises(DataError, match=r"images are missing, e\.g\. .*100001\.jpg"):
        read_caption_pairs(align)
    with pytest.raises(DataError, match=r"filter_cap\.json: missing"):
        read_caption_pairs(tmp_path)
