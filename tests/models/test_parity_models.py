"""`python -m minigpt4.tools.parity tests/fixtures/parity/models/<variant>` passes for every fixture variant."""

from __future__ import annotations

import pytest

from minigpt4.tools.parity.command import main

VARIANTS = ["minigpt4_vicuna0", "minigpt4_llama2", "minigpt_v2"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_model_variant_parity(parity_dir, variant, capsys):
    status = main([str(parity_dir / "models" / variant)])
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line and not line.startswith(" ")]
    assert status == 0, out
    assert lines[-1].startswith("total PASS"), out
    assert all(" PASS " in line for line in lines), out
    assert any(line.startswith("generate PASS") for line in lines)
