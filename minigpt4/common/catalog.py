"""Built-in modules per registry kind, imported on the first lookup of that kind.

This replaces the official wildcard imports: `import minigpt4` imports no model, and
asking the registry for a model imports exactly the modules listed under "model".
Each module registers its classes with the decorators of `registry.py`;
`tests/common/test_registry.py` checks this table and the decorators agree.
"""

from __future__ import annotations

BUILTIN_MODULES: dict[str, tuple[str, ...]] = {
    "model": ("minigpt4.models.minigpt4", "minigpt4.models.minigpt_v2", "minigpt4.models.minigpt5"),
    "builder": ("minigpt4.datasets.builders",),
    "task": ("minigpt4.tasks.image_text_pretrain", "minigpt4.tasks.minigpt5_generation"),
    "runner": ("minigpt4.runners.runner", "minigpt4.runners.minigpt5_runner"),
    "processor": ("minigpt4.processors.text", "minigpt4.processors.image"),
    "lr_scheduler": ("minigpt4.common.optims",),
}
