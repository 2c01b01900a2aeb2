"""`python -m minigpt4.tools.parity tests/fixtures/parity/minigpt5[/<stage>]` passes family by family."""

from __future__ import annotations

import pytest

from minigpt4.tools.parity.command import main

FAMILIES = {"build", "checkpoint", "tokenization", "vision", "llm_inputs", "llm_outputs", "vokens", "mapper",
            "diffusion", "losses", "generation", "pipeline"}  # fmt: skip


def run(capsys, directory):
    status = main([str(directory)])
    out = capsys.readouterr().out
    return status, [line for line in out.splitlines() if line and not line.startswith(" ")], out


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["stage1", "stage2"])
def test_minigpt5_stage_parity(parity_dir, stage, capsys):
    status, lines, out = run(capsys, parity_dir / "minigpt5" / stage)
    assert status == 0, out
    assert {line.split()[0] for line in lines[:-1]} == FAMILIES
    assert all(" PASS " in line for line in lines), out


@pytest.mark.slow
def test_a_changed_expected_value_fails_its_family(parity_dir, tmp_path, capsys):
    import json
    import shutil

    shutil.copytree(parity_dir / "minigpt5" / "stage1", tmp_path / "stage1")
    expected = tmp_path / "stage1" / "expected.json"
    data = json.loads(expected.read_text())
    data["train.caption_loss"] *= 1.01
    expected.write_text(json.dumps(data))
    status, lines, out = run(capsys, tmp_path / "stage1")
    assert status == 1
    failing = [line for line in lines if " FAIL " in line]
    assert len(failing) == 2 and failing[0].startswith("losses FAIL 3/4"), out
