"""The record size benchmark runs and reports a size per record on each database; sizes only,
held to no bound but that they are positive and a record costs at least part of its body."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "record_size_bench.py"


@pytest.mark.postgres
def test_the_bench_reports_bytes_per_record() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--records", "600", "--fields", "12", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = {row["database"] for row in rows}
    assert "sqlite" in kinds
    if "postgres" not in kinds:
        pytest.skip(result.stderr.strip())
    for row in rows:
        assert row["records"] == 600 and row["fields"] == 12
        assert row["bytes_per_record"] > row["body_bytes_per_record"] / 4
        assert 0 < row["backup_bytes_per_record"] < row["bytes_per_record"]
