"""minigpt4: a faithful, fast re-implementation of the MiniGPT family as a research training framework.

Importing the package is cheap: models, builders and tasks are imported on first lookup
(see `minigpt4.common.registry`).
"""

from __future__ import annotations

from pathlib import Path

from minigpt4.common.registry import registry

__version__ = "0.1.0"

LIBRARY_ROOT = Path(__file__).resolve().parent
REPO_ROOT = LIBRARY_ROOT.parent

registry.register_path("library_root", str(LIBRARY_ROOT))
registry.register_path("repo_root", str(REPO_ROOT))
registry.register("MAX_INT", 2**63 - 1)
registry.register("SPLIT_NAMES", ["train", "val", "test"])

__all__ = ["LIBRARY_ROOT", "REPO_ROOT", "__version__", "registry"]
