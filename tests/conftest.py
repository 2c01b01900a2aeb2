"""Shared test setup: offline, quiet, deterministic; `gpu` tests skip without CUDA."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = REPO_ROOT / "tests" / "fixtures"
PARITY = FIXTURES / "parity"  # the public parity fixtures, copied into the repository (see its README.md)


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    if not PARITY.is_dir():
        pytest.fail(f"parity fixtures not found at {PARITY}: the checkout is incomplete")
    return PARITY


@pytest.fixture(autouse=True)
def minigpt4_log_level_unset():
    """Tiny builders quieten the `minigpt4` logger (ERROR), also from module-scoped fixtures set up before this
    one: each test starts with the level unset, so tests that read its messages do not depend on test order."""
    import logging

    logger = logging.getLogger("minigpt4")
    level = logger.level
    logger.setLevel(logging.NOTSET)
    yield
    logger.setLevel(level)


@pytest.fixture
def single_thread():
    """Tiny models run 10-40x faster on one thread when the CPU is shared (OpenMP spin-waits otherwise)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
