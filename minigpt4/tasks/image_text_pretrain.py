"""The one official task: image-text (pre)training and finetuning. It has no in-training evaluation."""

from __future__ import annotations

from minigpt4.common.registry import registry
from minigpt4.tasks.base_task import BaseTask


@registry.register_task("image_text_pretrain")
class ImageTextPretrainTask(BaseTask):
    """Official behaviour: evaluation is a no-op; benchmarks run offline through eval_scripts/."""
