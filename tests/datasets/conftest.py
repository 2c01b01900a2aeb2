from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from minigpt4.datasets.shapes import generate_world


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """A small shapes world (fewer images than the default `small`, same formats)."""
    return generate_world(
        tmp_path_factory.mktemp("world"), size="small", seed=0, num_train=24, num_heldout=12
    )


@pytest.fixture(scope="session")
def world_cfg(world):
    return OmegaConf.load(world.datasets_yaml)
