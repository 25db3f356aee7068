"""The README's main job: the demo plays the whole case and every check passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli.demo import run_demo


async def test_demo_succeeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_demo(tmp_path / "demo") == 0
    out = capsys.readouterr().out
    assert "0 failed" in out
    assert "[FAIL]" not in out
    assert "incomplete: probation down" in out
