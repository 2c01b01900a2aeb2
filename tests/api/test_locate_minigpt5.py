"""MiniGPT-5's SD-2.1-base folder and .ckpt files are found by the weights lookup (never downloaded)."""

from __future__ import annotations

import pytest

from minigpt4.api.locate import WeightsNotFoundError, locate
from minigpt4.api.zoo import MINIGPT5_STAGE1_CC3M, SD21_BASE


def test_sd_folder_from_environment_and_missing_message(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGPT4_WEIGHTS_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("MINIGPT4_WEIGHTS_CONFIG", str(tmp_path / "none.yaml"))
    with pytest.raises(WeightsNotFoundError, match=r"stable-diffusion-2-1-base.*model\.sd_model"):
        locate(SD21_BASE)
    folder = tmp_path / "sd21"
    folder.mkdir()
    monkeypatch.setenv(SD21_BASE.env_var, str(folder))
    assert locate(SD21_BASE) == folder


def test_ckpt_in_the_weights_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGPT4_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("MINIGPT4_WEIGHTS_CONFIG", str(tmp_path / "none.yaml"))
    (tmp_path / "stage1_cc3m.ckpt").write_bytes(b"")
    assert locate(MINIGPT5_STAGE1_CC3M) == tmp_path / "stage1_cc3m.ckpt"
    assert MINIGPT5_STAGE1_CC3M.config_key == "stage1_ckpt"
