"""Where the package and its bundled configs live: the one place that computes them from `__file__`.

LIBRARY_ROOT is the `minigpt4/` folder, REPO_ROOT the checkout above it (train_configs/, eval_configs/, examples/
when running from a clone). Relative `model.*` paths in configs resolve against LIBRARY_ROOT first.
"""

from __future__ import annotations

from pathlib import Path

LIBRARY_ROOT = Path(__file__).resolve().parents[1]
REPO_ROOT = LIBRARY_ROOT.parent
CONFIG_ROOT = LIBRARY_ROOT / "configs"
MODEL_CONFIG_ROOT = CONFIG_ROOT / "models"
DATASET_CONFIG_ROOT = CONFIG_ROOT / "datasets"
