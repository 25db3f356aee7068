"""`ketenpoort audit report -o FILE` leaves the report readable by its owner only, also when
FILE already existed with a wider mode."""

from __future__ import annotations

import stat
from pathlib import Path

from gateway.cli.audit_report import OUTPUT_MODE, _write


def test_an_existing_file_is_narrowed_before_the_report_is_written(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    target.chmod(0o644)
    _write(target, b'{"report": true}')
    assert target.read_bytes() == b'{"report": true}'
    assert stat.S_IMODE(target.stat().st_mode) == OUTPUT_MODE


def test_a_new_file_is_made_owner_only(tmp_path: Path) -> None:
    target = tmp_path / "rapport.html"
    _write(target, b"<html></html>")
    assert stat.S_IMODE(target.stat().st_mode) == OUTPUT_MODE
