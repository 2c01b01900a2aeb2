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
    recipe = SdRecipe(vae_steps=40, vae_batch=16, unet_steps=60, unet_batch=16)
    out = tmp_path / "tiny_sd"
    report = pretrain_tiny_sd(tmp_path / "world" / "cc3m" / "cc3m_train.tsv", out, recipe)

    assert report["pairs"] == 64
    first, last = report["vae_loss"]
    assert last < 0.5 * first
    first, last = report["unet_loss"]
    assert last < first
    assert json.loads((out / "pretrain_report.json").read_text())["recipe"]["unet_steps"] == 60
    assert not (tmp_path / "tiny_sd.partial").exists()

    decoder = StableDiffusionDecoder(out)
    assert decoder.image_size == 32 and decoder.conditioning_width == 32
    assert decoder.scaling_factor == pytest.approx(report["scaling_factor"])
    images = sample_captions(out, ["a red circle", "a blue square"], steps=3)
    assert [image.size for image in images] == [(32, 32), (32, 32)]


def test_bad_tsv_line_names_file_and_line(tmp_path):
    from minigpt4.common.errors import DataError
    from minigpt4.runners.sd_recipe import read_pairs

    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("caption\timage_path\nA red circle.\n")
    with pytest.raises(DataError, match=r"pairs.tsv line 2"):
        read_pairs(tsv, 32)
