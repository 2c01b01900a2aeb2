"""The quickstart's MiniGPT-5 part at a tiny size: from the parts of a (random) MiniGPT-4, it pretrains the SD
stand-in, trains both stages through train.py, generates for the held-out prompts and writes the `minigpt5` entry
of results.json with every metric beside its chance level and the seconds of each step."""

import json

import pytest
import torch

from minigpt4.cli import quickstart_minigpt5 as part
from minigpt4.datasets.shapes import generate_world
from minigpt4.runners.sd_recipe import SdRecipe


def test_only_minigpt5_needs_an_earlier_run(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGPT4_QUICKSTART", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"minigpt4_tiny/checkpoint_best\.pth"):
        part.run_only_minigpt5([])


def random_minigpt4_parts(out):
    """What prepare_parts writes from a MiniGPT-4 run, from a random tiny MiniGPT-4 (and its encoder file)."""
    from minigpt4.common.config import Config
    from minigpt4.common.paths import REPO_ROOT
    from minigpt4.common.registry import registry

    cfg = Config.from_path(
        REPO_ROOT / "train_configs/shapes/minigpt4_stage2.yaml",
        ["model.vit_ckpt=", "model.ckpt="],
        purpose="train",
    ).model_cfg
    torch.manual_seed(0)
    model = registry.get_model_class(cfg.arch).from_config(cfg)
    torch.save(model.visual_encoder.state_dict(), out / "tiny_eva_vit.pth")
    part.write_parts(model)


@pytest.mark.slow
def test_minigpt5_part_writes_its_results_entry(tmp_path, monkeypatch):
    world, out = tmp_path / "world", tmp_path / "quickstart"
    out.mkdir()
    generate_world(world, num_train=40, num_heldout=6)
    monkeypatch.setenv("SHAPES_WORLD", str(world))
    monkeypatch.setenv("MINIGPT4_QUICKSTART", str(out))
    monkeypatch.setattr(part, "prepare_parts", lambda checkpoint: random_minigpt4_parts(out))
    (out / "minigpt4_tiny").mkdir()
    (out / "minigpt4_tiny" / "checkpoint_best.pth").write_bytes(b"")  # only its presence is checked here
    (out / "results.json").write_text(json.dumps({"caption_acc": 0.5}))
    monkeypatch.setattr(part, "run_minigpt5", _tiny(part.run_minigpt5))

    results = part.run_only_minigpt5(["run.iters_per_epoch=2", "run.progress_bar=false"])

    assert json.loads((out / "results.json").read_text()) == results
    assert results["caption_acc"] == 0.5  # the MiniGPT-4 figures stay
    entry = results["minigpt5"]
    for key in ("colour_acc", "shape_acc", "story_acc", "voken_rate"):
        assert 0.0 <= entry[key] <= 1.0
        assert 0.0 < entry[key + "_chance"] < 1.0
        assert key in entry["targets"]
    assert entry["colour_acc_chance"] == 0.25 and entry["story_acc_chance"] == pytest.approx(1 / 12)
    assert set(entry["unseen_pairs"]) == {"colour_acc", "shape_acc", "count"}
    assert entry["counts"]["caption_prompts"] + entry["unseen_pairs"]["count"] > 0
    assert entry["counts"]["story_prompts"] > 0
    assert set(entry["seconds"]) == {
        "parts",
        "tiny_sd",
        "minigpt5_stage1",
        "minigpt5_stage2",
        "evaluate",
        "total",
    }
    assert (out / "minigpt5_stage2" / "checkpoint_best.pth").is_file()
    assert (out / "tiny_sd_shapes" / "model_index.json").is_file()
    rows = part.results_rows(entry)
    assert len(rows) == 6 and all(row.startswith("| MiniGPT-5") for row in rows)


def _tiny(run):
    def tiny_run(checkpoint, options, sd_recipe=None):
        recipe = SdRecipe(vae_steps=2, vae_batch=8, unet_steps=2, unet_batch=8)
        return run(checkpoint, options, recipe)

    return tiny_run
