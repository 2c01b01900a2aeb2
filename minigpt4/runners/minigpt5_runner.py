"""`runner_minigpt5`: the base runner with MiniGPT-5's optimizer and a periodic sample in the run directory.

Everything else (epochs of iterations, gradient accumulation, bf16 autocast, atomic checkpoints of the trainable
tensors only, exact mid-epoch resume) is `RunnerBase`'s. Added here:
* the optimizer comes from the task (`task.build_optimizer`: official AdamW groups, 10x lr for the mapper in
  stage 1) and the scheduler is rebuilt over it;
* every `run.sample_every_steps` iterations (counted like `save_every_steps`: global steps at which the optimizer
  stepped; official: every 500 optimizer steps), one sample is generated for a fixed prompt (the first record
  of the first training dataset) and written as `samples/step_<N>.png` + `.json` (prompt, text, target). Sampling
  runs under a forked RNG in eval mode, so training draws exactly what it would without it (resume stays
  bit-exact).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from minigpt4.common.dist import is_main_process
from minigpt4.common.optims import build_lr_scheduler
from minigpt4.common.registry import registry
from minigpt4.runners.optimization import Stepper
from minigpt4.runners.runner import RunnerBase

logger = logging.getLogger(__name__)


@registry.register_runner("runner_minigpt5")
class Minigpt5Runner(RunnerBase):
    def __init__(
        self, cfg: Any, task: Any, model: torch.nn.Module, datasets: dict, job_id: str | None = None
    ):
        super().__init__(cfg, task, model, datasets, job_id)
        if hasattr(task, "build_optimizer"):
            self.optimizer = task.build_optimizer(self.unwrapped_model, self.run_cfg)
            self.scheduler = build_lr_scheduler(self.optimizer, self.run_cfg, self.iters_per_epoch)
        self.sample_every = int(self.run_cfg.get("sample_every_steps", 0) or 0)
        self.sample_prompt = first_record(datasets)
        self.stepper = SamplingStepper(self.optimizer, self.scaler, self.run_cfg, self._after_optimizer_step)

    def _after_optimizer_step(self) -> None:
        step = self.state.global_step + 1  # the loop counts this iteration right after the step
        if self.sample_every and step % self.sample_every == 0 and is_main_process():
            self.write_sample(step)

    @torch.no_grad()
    def write_sample(self, step: int) -> Path | None:
        """samples/step_<step>.png (when `[IMG0]` was generated) and .json; returns the JSON path."""
        if self.sample_prompt is None:
            return None
        model = self.unwrapped_model
        source, target = self.sample_prompt
        run = self.run_cfg
        devices = [self.device.index] if self.device.type == "cuda" and self.device.index is not None else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(int(run.get("seed", 42)) + step)
            was_training = model.training
            model.eval()
            try:
                result = model.generate_answers(
                    None,
                    [source],
                    max_new_tokens=int(run.get("sample_max_new_tokens", 64)),
                    guidance_scale=float(run.get("sample_guidance_scale", 7.5)),
                    num_inference_steps=int(run.get("sample_inference_steps", 50)),
                )
            finally:
                model.train(was_training)
        folder = self.run_dir / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        image = None
        if result.images[0]:
            image = folder / f"step_{step:07d}.png"
            result.images[0][0].save(image)
        record = {"step": step, "prompt": source, "target": target, "text": result.texts[0],
                  "image": image.name if image else None}  # fmt: skip
        path = folder / f"step_{step:07d}.json"
        path.write_text(json.dumps(record, indent=1))
        logger.info("sample at step %d: %r (image: %s)", step, result.texts[0], bool(image))
        return path


class SamplingStepper(Stepper):
    """Stepper that calls `after_step()` after each optimizer step."""

    def __init__(self, optimizer, scaler, run_cfg, after_step) -> None:
        super().__init__(optimizer, scaler, run_cfg)
        self.after_step = after_step

    def maybe_step(self, iteration: int) -> bool:
        stepped = super().maybe_step(iteration)
        if stepped:
            self.after_step()
        return stepped


def first_record(datasets: dict) -> tuple[str, str] | None:
    """(source, target) of the first record with an output image in the first training dataset."""
    for splits in datasets.values():
        records = getattr(splits.get("train"), "records", None) or []
        for record in records:
            if record.output_image is not None:
                return record.source, record.target
    return None
