"""The parity tool itself: output format, exit status, and the foundation's families on the shared fixtures."""

import json
import shutil
import subprocess
import sys

import pytest

from minigpt4.tools.parity.command import run_directory


def run_tool(directory):
    return subprocess.run(
        [sys.executable, "-m", "minigpt4.tools.parity", str(directory)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("family", ["lr_schedule", "config_merge"])
def test_foundation_families_pass_on_shared_fixtures(parity_dir, tmp_path, family):
    source = parity_dir / "functions" / family
    target = tmp_path / "functions"
    target.mkdir()
    if source.is_dir():
        shutil.copytree(source, target / family)
    else:
        shutil.copy(source.with_suffix(".json"), target / f"{family}.json")
    result = run_tool(target)
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{family} PASS "), result.stdout + result.stderr
    assert lines[-1].startswith("total PASS 1/1")
    assert result.returncode == 0


def test_unknown_family_is_reported_not_implemented_and_fails(tmp_path):
    (tmp_path / "brand_new_family.json").write_text(json.dumps({"cases": [1, 2, 3]}))
    result = run_tool(tmp_path)
    assert result.stdout.splitlines()[0] == "brand_new_family FAIL 0/3 (not implemented)"
    assert result.returncode == 1


def test_changed_expected_value_is_caught_with_first_failure(parity_dir, tmp_path):
    data = json.loads((parity_dir / "functions" / "lr_schedule.json").read_text())
    data["cases"][1]["steps"][5][2] *= 1.001
    (tmp_path / "lr_schedule.json").write_text(json.dumps(data))
    [report] = run_directory(tmp_path)
    assert not report.ok and report.passed == report.total - 1
    assert "epoch 0 step 5" in report.first_failure


def test_config_merge_detects_a_changed_official_value(parity_dir, tmp_path):
    shutil.copytree(parity_dir / "functions" / "config_merge", tmp_path / "config_merge")
    case = tmp_path / "config_merge" / "minigpt4_stage2_finetune.json"
    data = json.loads(case.read_text())
    data["config"]["run"]["init_lr"] = 1e-3
    case.write_text(json.dumps(data))
    [report] = run_directory(tmp_path)
    assert report.passed == report.total - 1
    assert "run.init_lr" in report.first_failure


def test_missing_directory_exits_2(tmp_path):
    assert run_tool(tmp_path / "nope").returncode == 2
