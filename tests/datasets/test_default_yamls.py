"""The 25 official default dataset YAMLs (official placeholder values, typo fixes declared in one place)."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from minigpt4.common.registry import registry
from minigpt4.datasets.official_quirks import PLACEHOLDER_PATH_FIXES, fix_placeholder_path

CONFIGS = Path(__file__).resolve().parents[2] / "minigpt4" / "configs" / "datasets"


def test_each_builder_has_a_default_yaml_naming_itself():
    for name in registry.list_builders():
        node = OmegaConf.load(CONFIGS / name / "default.yaml")
        assert list(node.datasets) == [name]
        assert node.datasets[name].data_type == ("text" if name == "unnatural_instruction" else "images")
        assert registry.get_builder_class(name).default_config_path() == CONFIGS / name / "default.yaml"


def test_no_official_typo_survives_and_fixes_are_declared():
    assert PLACEHOLDER_PATH_FIXES == {
        "filtered_flikcr": "filtered_flickr",
        "multi_task_conversation.json": "multitask_conversation.json",
    }
    for path in CONFIGS.glob("*/default.yaml"):
        text = path.read_text().split("\n", 1)[1]
        assert all(typo not in text for typo in PLACEHOLDER_PATH_FIXES), path


def test_defaults_equal_the_official_merged_values_after_the_fixes(parity_dir):
    def fix(value):
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fix(v) for v in value]
        return fix_placeholder_path(value) if isinstance(value, str) else value

    checked = 0
    for case in (parity_dir / "functions" / "config_merge").glob("*.json"):
        if case.name == "index.json":
            continue
        for name, node in json.loads(case.read_text())["config"].get("datasets", {}).items():
            ours = OmegaConf.to_container(OmegaConf.load(CONFIGS / name / "default.yaml"))["datasets"][name]
            assert ours == fix({"data_type": node["data_type"], "build_info": node["build_info"]}), name
            checked += 1
    assert checked >= 25
