"""The shipped tiny tokenizer/LLM config are what `python -m minigpt4.assets.build` regenerates."""

from __future__ import annotations

import json

from minigpt4.assets.build import main


def test_build_command_regenerates_the_shipped_files(repo_root, tmp_path):
    assert main(["--out", str(tmp_path)]) == 0
    shipped = repo_root / "minigpt4" / "assets" / "tiny_llama"
    for name in ("tokenizer.model", "tokenizer_config.json", "config.json", "generation_config.json"):
        assert (tmp_path / name).read_bytes() == (shipped / name).read_bytes(), name
    assert not any(p.suffix in (".safetensors", ".bin") for p in shipped.iterdir())  # config only, no weights
    assert sum(p.stat().st_size for p in shipped.iterdir()) < 1_000_000
    config = json.loads((shipped / "config.json").read_text())
    assert config["hidden_size"] == 64 and config["num_hidden_layers"] == 2
