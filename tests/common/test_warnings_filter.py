"""No warning a user cannot act on: a chat answer with each tiny model and one training step, warnings recorded.

Warnings Python hides by default (DeprecationWarning, PendingDeprecationWarning, ResourceWarning) are allowed
only when raised outside our package: one located in minigpt4 is ours to fix.
"""

from __future__ import annotations

import logging
import warnings

import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from minigpt4.common.config import model_default_path
from minigpt4.common.registry import registry
from minigpt4.common.warnings_filter import KNOWN_LOG_RECORDS, quiet_known_warnings
from minigpt4.conversation.chat import Chat
from minigpt4.conversation.templates import template_for

HIDDEN_BY_DEFAULT = (DeprecationWarning, PendingDeprecationWarning, ResourceWarning)


def unexpected(caught: list[warnings.WarningMessage]) -> list[str]:
    return [
        f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}"
        for w in caught
        if not (issubclass(w.category, HIDDEN_BY_DEFAULT) and "/minigpt4/" not in w.filename)
    ]


@pytest.mark.slow
@pytest.mark.parametrize(("arch", "model_type"), [("minigpt4", "tiny_vicuna0"), ("minigpt_v2", "tiny")])
def test_a_chat_answer_and_a_training_step_warn_nothing(arch, model_type):
    cfg = OmegaConf.load(model_default_path(arch, model_type))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_known_warnings()
        torch.manual_seed(0)
        model = registry.get_model_class(arch).from_config(cfg.model)  # v2: LoRA through peft
        vis_cfg = cfg.preprocess.vis_processor.eval
        processor = registry.get_processor_class(vis_cfg.name).from_config(vis_cfg)
        image = processor(Image.new("RGB", (64, 48), (220, 30, 30)))  # (3, H, W)

        model.train()
        samples = {
            "image": image[None],
            "instruction_input": ["<Img><ImageHere></Img> what is it?"],
            "answer": ["a red square"],
        }
        loss = model(samples)["loss"]
        loss.backward()

        model.eval()
        chat = Chat(model, processor, device="cpu")
        conv, images = template_for(arch, model_type).copy(), []
        chat.upload_img(image, conv, images)
        chat.encode_img(images)
        chat.ask("what is this?", conv)
        chat.answer(conv, images, max_new_tokens=3)  # the official repetition_penalty=1.05
        model.generate(image[None], ["<ImageHere> hi"], max_new_tokens=2, repetition_penalty=1.05)
    assert unexpected(caught) == []


def test_the_filters_are_narrow():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_known_warnings()
        for message, category, module in [
            ("`is_gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning, "transformers.modeling_utils"),
            ("`is_gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning, "minigpt4.models.llm"),
            ("`something_else` is deprecated", FutureWarning, "transformers.modeling_utils"),
            ("`is_gradient_checkpointing` is deprecated", UserWarning, "transformers.modeling_utils"),
        ]:  # fmt: skip
            warnings.warn_explicit(message, category, f"{module.replace('.', '/')}.py", 1, module=module)
    # only the first (peft reading transformers' deprecated property) is silenced
    assert [(str(w.message)[:25], w.category, w.filename) for w in caught] == [
        ("`is_gradient_checkpointin", FutureWarning, "minigpt4/models/llm.py"),
        ("`something_else` is depre", FutureWarning, "transformers/modeling_utils.py"),
        ("`is_gradient_checkpointin", UserWarning, "transformers/modeling_utils.py"),
    ]


def test_the_bitsandbytes_cpu_kernel_notice_is_dropped_and_nothing_else(caplog):
    quiet_known_warnings()
    quiet_known_warnings()  # idempotent
    known = KNOWN_LOG_RECORDS[0]
    target = logging.getLogger(known.logger)
    assert len(target.filters) == 1
    with caplog.at_level(logging.WARNING, logger=known.logger):
        target.warning(
            known.message_start + ": %s. Please make sure you already `pip install kernels`", "untrusted"
        )
        target.warning("CPU 8-bit matmul failed: %s", "a real problem")
    assert [r.getMessage() for r in caplog.records] == ["CPU 8-bit matmul failed: a real problem"]


def test_building_the_minigpt5_output_mapper_warns_nothing():
    from minigpt4.models.output_mapper import OutputMapper, OutputMapperConfig

    config = OutputMapperConfig(llm_width=16, width=8, num_queries=4, num_encoder_layers=1, num_decoder_layers=1,
                                feedforward=16, num_heads=2)  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_known_warnings()
        OutputMapper(config)
    assert [str(w.message) for w in caught] == []


def test_importing_the_sd_pipeline_without_torchvision_logs_nothing():
    """diffusers' StableDiffusionPipeline module (MiniGPT-5's decoder) imports CLIP/Siglip image-processor names;
    without torchvision transformers logs a fallback notice for each, which the filter drops (a fresh process:
    transformers logs it once per process)."""
    import subprocess
    import sys

    code = (
        "from minigpt4.common.warnings_filter import quiet_known_warnings; quiet_known_warnings(); "
        "import diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion; "
        "from transformers import CLIPImageProcessor; print(CLIPImageProcessor.__name__)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "requires torchvision" not in done.stderr, done.stderr[-2000:]
    import importlib.util

    if importlib.util.find_spec("torchvision") is None:
        assert done.stdout.strip() == "CLIPImageProcessorPil"


def test_random_parts_are_reported_only_when_the_checkpoint_does_not_hold_them(tmp_path, caplog):
    """The demos open the quickstart run through model.ckpt, which holds the tiny ViT-less Q-Former and LLM:
    no "RANDOM" warning then; without a checkpoint each random part still warns."""
    cfg = OmegaConf.load(model_default_path("minigpt4", "tiny_vicuna0")).model
    model_cls = registry.get_model_class("minigpt4")
    with caplog.at_level(logging.WARNING):
        model = model_cls.from_config(cfg)
    assert {"EVA ViT", "Q-Former", "LLM"} <= {p for p in ("EVA ViT", "Q-Former", "LLM") if p in caplog.text}
    trainable = {k: v for k, v in model.state_dict().items() if k in dict(model.named_parameters())}
    torch.save({"model": trainable}, tmp_path / "run.pth")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        model_cls.from_config(OmegaConf.merge(cfg, {"ckpt": str(tmp_path / "run.pth")}))
    assert "RANDOM" not in caplog.text
