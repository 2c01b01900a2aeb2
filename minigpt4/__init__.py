"""minigpt4: a faithful, fast re-implementation of the MiniGPT family as a research training framework.

Importing the package is cheap: models, builders and tasks are imported on first lookup
(see `minigpt4.common.registry`).
"""

from __future__ import annotations

from minigpt4.common.paths import LIBRARY_ROOT, REPO_ROOT
from minigpt4.common.registry import registry

__version__ = "0.1.0"

registry.register_path("library_root", str(LIBRARY_ROOT))
registry.register_path("repo_root", str(REPO_ROOT))
registry.register("MAX_INT", 2**63 - 1)
registry.register("SPLIT_NAMES", ["train", "val", "test"])

# The Python API (`from minigpt4 import inference_model`) is imported on first use, keeping `import minigpt4` cheap.
_API_NAMES = (
    "from_pretrained",
    "inference_model",
    "list_models",
    "load_model",
    "load_model_and_preprocess",
    "load_preprocess",
    "save_pretrained",
)


def __getattr__(name: str):
    if name in _API_NAMES:
        import minigpt4.api

        return getattr(minigpt4.api, name)
    raise AttributeError(f"module 'minigpt4' has no attribute {name!r}")


__all__ = ["LIBRARY_ROOT", "REPO_ROOT", "__version__", "registry", *_API_NAMES]
