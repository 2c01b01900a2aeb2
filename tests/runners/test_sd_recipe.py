"""The quickstart's tiny Stable Diffusion recipe: both losses fall on the world's caption -> image pairs, and the
folder it writes is one `StableDiffusionDecoder` (what `model.sd_model` reads) opens and samples from."""

import json

import pytest

from minigpt4.datasets.shapes import generate_world
from minigpt4.models.image_decoder import StableDiffusionDecoder
from minigpt4.runners.sd_recipe import SdRecipe, pretrain_tiny_sd, sample_captions


@pytest.mark.slow
def test_recipe_reduces_both_losses_and_writes_a_loadable_sd_folder(tmp_path):
    generate_world(tmp_path / "world", num_train=64, num_heldout=6)
    recipe = SdRecipe(vae_steps=40, vae_batch=16, unet_steps=60, unet_batch=16, vae_attempts=1)
    out = tmp_path / "tiny_sd"
    report = pretrain_tiny_sd(tmp_path / "world" / "cc3m" / "cc3m_train.tsv", out, recipe)

    assert report["pairs"] == 64
    first, last = report["vae_loss"]
    assert last < 0.5 * first
    first, last = report["unet_loss"]
    assert last < first
    assert json.loads((out / "pretrain_report.json").read_text())["recipe"]["unet_steps"] == 60
    assert not (tmp_path / "tiny_sd.partial").exists()
    assert not (tmp_path / "tiny_sd.tokenizer").exists()

    decoder = StableDiffusionDecoder(out)
    assert decoder.image_size == 32 and decoder.conditioning_width == 32
    assert decoder.scaling_factor == pytest.approx(report["scaling_factor"])
    # the folder's tokenizer reads the world's words whole (whole_word_tokens, on by default)
    assert decoder.tokenizer.tokenize("a red circle") == ["a</w>", "red</w>", "circle</w>"]
    images = sample_captions(out, ["a red circle", "a blue square"], steps=3)
    assert [image.size for image in images] == [(32, 32), (32, 32)]


def test_whole_word_tokenizer_makes_each_caption_word_one_token(tmp_path):
    from transformers import CLIPTokenizer

    from minigpt4.runners.sd_recipe import TOKENIZER, caption_words, write_whole_word_tokenizer

    words = caption_words(["A green circle.", "A red square.", "Greenish reds!"])
    assert words == ["a", "circle", "green", "greenish", "red", "reds", "square"]
    write_whole_word_tokenizer(words, tmp_path / "tok")
    tokenizer = CLIPTokenizer.from_pretrained(str(tmp_path / "tok"))
    for word in words:
        assert tokenizer.tokenize(word) == [word + "</w>"]
    # letters keep their ids (the asset's byte-level vocabulary), new words come after the special tokens
    base = CLIPTokenizer.from_pretrained(str(TOKENIZER))
    assert tokenizer.convert_tokens_to_ids("x</w>") == base.convert_tokens_to_ids("x</w>")
    assert min(tokenizer.convert_tokens_to_ids([w + "</w>" for w in words if len(w) > 1])) >= len(base)
    assert len(tokenizer.tokenize("greenhouse")) > 1  # other text still splits into pieces


def test_bad_tsv_line_names_file_and_line(tmp_path):
    from minigpt4.common.errors import DataError
    from minigpt4.runners.sd_recipe import read_pairs

    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("caption\timage_path\nA red circle.\n")
    with pytest.raises(DataError, match=r"pairs.tsv line 2"):
        read_pairs(tsv, 32)


def test_a_vae_the_judge_rejects_is_retrained_from_the_next_seed(tmp_path, caplog):
    """Two VAE steps reconstruct nothing the judge can read: every attempt is judged, each from its own seed,
    and the best is kept with a warning. A bar of 0 accepts the first."""
    import logging

    generate_world(tmp_path / "world", num_train=24, num_heldout=6)
    tsv = tmp_path / "world" / "cc3m" / "cc3m_train.tsv"
    recipe = SdRecipe(vae_steps=2, vae_batch=8, unet_steps=1, unet_batch=8, vae_attempts=3, vae_seed=5)
    with caplog.at_level(logging.INFO, logger="minigpt4.runners.sd_recipe"):
        report = pretrain_tiny_sd(tsv, tmp_path / "rejected", recipe)
    assert [attempt["seed"] for attempt in report["vae_attempts"]] == [5, 6, 7]
    assert all(attempt["colour_acc"] < 0.95 for attempt in report["vae_attempts"])
    assert "retrained from seed 6" in caplog.text and "keeping the best" in caplog.text

    accepting = SdRecipe(
        vae_steps=2, vae_batch=8, unet_steps=1, unet_batch=8, vae_attempts=3, vae_min_judged=0.0
    )
    report = pretrain_tiny_sd(tsv, tmp_path / "accepted", accepting)
    assert len(report["vae_attempts"]) == 1 and report["vae_attempts"][0]["seed"] == 1  # SdRecipe.vae_seed


def test_judge_reads_the_world_back_from_a_perfect_reconstruction(tmp_path):
    """The gate's judge path (TSV images -> tensors -> PIL -> judge) is right on the world's own pixels."""
    from minigpt4.evaluation.shapes_judge import judge_targets
    from minigpt4.runners.sd_recipe import read_pairs, read_targets

    generate_world(tmp_path / "world", num_train=24, num_heldout=6)
    tsv = tmp_path / "world" / "cc3m" / "cc3m_train.tsv"
    _, images = read_pairs(tsv, 32)

    class Identity:  # a VAE whose decoder returns exactly what its encoder saw
        def encode(self, x):
            return type("Out", (), {"latent_dist": type("Dist", (), {"mean": x})()})()

        def decode(self, z):
            return type("Out", (), {"sample": z})()

    from minigpt4.runners.sd_recipe import reconstruct

    scores = judge_targets(reconstruct(Identity(), images), read_targets(tsv))
    assert scores["colour_acc"] == 1.0 and scores["shape_acc"] == 1.0
