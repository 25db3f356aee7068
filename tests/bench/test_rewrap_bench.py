"""The re-wrap benchmark runs and reports every figure; correctness only, no rate is held to
any bound (the bench itself checks that each run re-wrapped every live key)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "rewrap_bench.py"


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_bench_reports_status_and_rewrap_figures(db: str) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--db", db, "--batch", "100,500"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    if "skipped" in result.stderr:
        pytest.skip(result.stderr.strip())
    figures = json.loads(result.stdout)["databases"][db]
    assert figures["live"] == 1900
    for key in ("status_s", "data_keys_under_s", "pending_s"):
        assert figures[key] > 0
    assert set(figures["batches"]) == {"100", "500"}
    for point in figures["batches"].values():
        assert point["rewrap_s"] > 0 and point["keys_per_s"] > 0
