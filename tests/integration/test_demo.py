"""The README's main job: the demo plays its three cases and every check passes; and its
checks are real: against a policy that says otherwise, the demo fails."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway.cli.demo import run_demo
from gateway.policyfiles import load_policy_dir
from gateway.server.config import shipped_policy_dir


async def test_demo_succeeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_demo(tmp_path / "demo") == 0
    out = capsys.readouterr().out
    assert "0 failed" in out
    assert "[FAIL]" not in out
    assert "incomplete: probation down" in out
    for title in ("Case 1: Code Rood", "Case 2: Drang en dwang", "Case 3: Mensenhandel"):
        assert title in out
    # The summary tables show where the persons of a case are treated differently.
    assert "persons: 1=perpetrator (alleged_perpetrator), 2=victim (victim)" in out
    assert "··DD" in out
    assert "made before the BSN was known" in out


async def test_demo_fails_when_a_view_differs_from_the_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The gateway runs the shipped policy; the demo checks its answers against one in which
    the police's AVIM no longer learns who the presumed trafficking victim is. Its answers,
    which do name her, must count as wrong; the others stay right."""
    changed = tmp_path / "policies"
    shutil.copytree(shipped_policy_dir(), changed)
    rules = changed / "rules" / "approaches.yaml"
    text = rules.read_text()
    marker = "partner_types: [trafficking_care_coordination, police, zvh]"
    assert text.count(marker) == 1
    rules.write_text(text.replace(marker, "partner_types: [trafficking_care_coordination, zvh]"))

    assert await run_demo(tmp_path / "demo", expect=load_policy_dir(changed)) == 1
    out = capsys.readouterr().out
    assert "demo FAILED" in out
    assert "[FAIL] police_avim / analysis_and_plan" in out
    assert "[ok] trafficking-care-coordination / analysis_and_plan" in out
