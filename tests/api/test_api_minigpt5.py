"""MiniGPT-5 through the Python API: {"pred_text", "pred_images"}, batches, zoo names and their weights, and the
quickstart's tiny model found where `make quickstart` writes it (or a sentence saying to run it)."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from minigpt4.api import inference_model
from minigpt4.api.inference import clear_cache
from minigpt4.api.locate import WeightsNotFoundError
from minigpt4.api.minigpt5 import QUICKSTART_RUN, is_minigpt5_run, quickstart_root
from minigpt4.api.zoo import get_entry, list_models
from minigpt4.common.errors import CheckpointError
from tests.conversation.tiny_minigpt5 import FAST, tiny_minigpt5

OFFICIAL = ("minigpt-5_vicuna-7b_cc3m", "minigpt-5_vicuna-7b_vist", "minigpt-5_vicuna-7b_mmdialog")


@pytest.fixture(autouse=True)
def no_user_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGPT4_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("MINIGPT4_WEIGHTS_CONFIG", str(tmp_path / "none.yaml"))
    monkeypatch.setenv("MINIGPT4_QUICKSTART", str(tmp_path / "quickstart"))
    clear_cache()
    yield
    clear_cache()


def test_one_prompt_without_image_gives_text_and_an_image():
    model, _ = tiny_minigpt5()
    out = inference_model(model, None, "draw a red circle", force_image=True, **FAST)
    assert set(out) == {"prompt", "pred_text", "pred_images"}
    assert isinstance(out["pred_text"], str)
    assert len(out["pred_images"]) == 1 and isinstance(out["pred_images"][0], Image.Image)
    again = inference_model(model, None, "draw a red circle", force_image=True, **FAST)
    assert out["pred_text"] == again["pred_text"]  # seed 0 by default
    assert out["pred_images"][0].tobytes() == again["pred_images"][0].tobytes()


def test_batch_of_prompts_with_and_without_images():
    model, _ = tiny_minigpt5()
    red = Image.new("RGB", (30, 30), (200, 0, 0))
    outs = inference_model(
        model, [None, red, [red, red]], ["a", "b", "c"], batch_size=2, force_image=True, **FAST
    )
    assert [o["prompt"] for o in outs] == ["a", "b", "c"]
    assert all(len(o["pred_images"]) == 1 for o in outs)


def test_official_zoo_names_and_the_weights_they_need():
    assert set(OFFICIAL) | {"minigpt-5_tiny_shapes"} <= set(list_models("minigpt-5"))
    vist = get_entry("minigpt-5_vicuna-7b_vist")
    ids = {spec.weight_id for spec in vist.weights}
    assert {"vicuna-7b-v0", "minigpt-4_vicuna-7b", "eva_vit_g", "blip2_qformer", "stable-diffusion-2-1-base",
            "minigpt-5_stage1-cc3m", "minigpt-5_stage2-vist"} == ids  # fmt: skip
    assert {s.filename for s in get_entry("minigpt-5_vicuna-7b_mmdialog").weights} >= {"stage2_mmdialog.ckpt"}
    with pytest.raises(WeightsNotFoundError, match=r"missing weight 'vicuna-7b-v0'.*Vicuna-7B v0"):
        inference_model("minigpt-5_vicuna-7b_vist", None, "a story")


def test_shapes_name_says_run_make_quickstart_when_missing():
    with pytest.raises(CheckpointError, match=r"run `make quickstart` first"):
        inference_model("minigpt-5_tiny_shapes", None, "a red circle")


def test_shapes_name_opens_the_quickstart_run_folder(tmp_path):
    model, _ = tiny_minigpt5()
    run = tmp_path / "quickstart" / "minigpt5_stage2"
    run.mkdir(parents=True)
    checkpoint = run / "checkpoint_best.pth"
    torch.save({"model": {k: v.clone() for k, v in model.official_state_dict().items()}}, checkpoint)
    cfg = OmegaConf.create({"model": OmegaConf.to_container(model.minigpt4_config)})
    cfg.model.stage1_ckpt = str(checkpoint)  # the quickstart's stage-2 config names its stage-1 run
    OmegaConf.save(cfg, run / "config.yaml")
    out = inference_model("minigpt-5_tiny_shapes", None, "there is a red circle.", device="cpu", force_image=True,
                          **FAST)  # fmt: skip
    assert len(out["pred_images"]) == 1
    direct = inference_model(model, None, "there is a red circle.", force_image=True, **FAST)
    # same weights; the zoo entry prompts in the VIST format, the bare model in the MMDialog one
    assert isinstance(direct["pred_text"], str)


def test_a_run_whose_stage2_tensors_are_missing_is_refused_not_garbage(tmp_path):
    """Official #10: without IS_STAGE2 the stage-2 LoRA silently did not load and the model talked garbage. Here a
    checkpoint without the LoRA tensors is an error naming them."""
    from tests.conversation.tiny_minigpt5 import write_fake_run

    run = write_fake_run(tmp_path / "quickstart" / "minigpt5_stage2")
    state = torch.load(run / "checkpoint_best.pth", weights_only=True)["model"]
    torch.save({"model": {k: v for k, v in state.items() if "lora_" not in k}}, run / "checkpoint_best.pth")
    with pytest.raises(CheckpointError, match="lora_"):
        inference_model("minigpt-5_tiny_shapes", None, "a red circle", device="cpu")


# Where `make quickstart` left its runs, read before the autouse fixture points MINIGPT4_QUICKSTART elsewhere.
TRAINED_ROOT = quickstart_root()


@pytest.mark.slow
def test_the_trained_quickstart_model_answers_a_story_with_text_and_a_picture(monkeypatch):
    """With `make quickstart` done, the zoo name opens the trained tiny model: text and an image of the scene."""
    if not is_minigpt5_run(TRAINED_ROOT / QUICKSTART_RUN):
        pytest.skip("`make quickstart` has not trained the tiny MiniGPT-5 here")
    monkeypatch.setenv("MINIGPT4_QUICKSTART", str(TRAINED_ROOT))
    out = inference_model("minigpt-5_tiny_shapes", None, "there is a red circle.", device="cpu", do_sample=False,
                          repetition_penalty=1.0, guidance_scale=3.0, num_inference_steps=15)  # fmt: skip
    assert out["pred_text"].strip(), out
    assert len(out["pred_images"]) == 1 and isinstance(out["pred_images"][0], Image.Image)
