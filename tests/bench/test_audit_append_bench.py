"""The accountability log benchmark runs and counts what the log holds.

Correctness only: the bench runs in its quick mode and no rate is held to any bound. What is
checked is the report's shape and that every append the bench counted is a record in the
log, which verifies.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "audit_append_bench.py"
WRITERS = ["1", "16", "64"]
BASELINES = {"row_per_commit", "rows_100_per_commit"}


def run_bench(db: str) -> dict[str, Any]:
    # Run as documented, as a script, so that its imports work from its own directory.
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--db", db],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_bench_counts_every_durable_append_as_a_record(db: str) -> None:
    report = run_bench(db)
    figures = report["databases"][db]
    if "skipped" in figures:
        pytest.skip(figures["skipped"])

    assert report["benchmark"] == "audit_append" and report["quick"] is True
    assert report["writers"] == [1, 16, 64]
    assert report["event"]["fields"] == 12 and report["event"]["body_bytes"] > 1000
    assert set(figures["baselines"]) == BASELINES
    for baseline in figures["baselines"].values():
        assert baseline["rate"] > 0 and baseline["commit_ms_p50"] <= baseline["commit_ms_p99"]
    assert list(figures["log"]) == WRITERS
    checkpoints = report["checkpoints"]["enabled"]
    for writers, point in figures["log"].items():
        assert point["errors"] == 0, point["first_error"]
        assert point["rate"] > 0 and 0 < point["p50_ms"] <= point["p99_ms"]
        assert 1 <= point["mean_batch"] <= int(writers)
        assert set(point["ratios"]) == {f"vs_{name}" for name in BASELINES}
        records = point["records"]
        # Every append that returned is a record, and nothing else is.
        assert records["appended_per_round"] == records["in_log_per_round"]
        assert records["in_log_per_round"] == records["committed_per_round"]
        assert min(records["in_log_per_round"]) > 0
        assert records["all_in_log"] and records["verified"]
        if checkpoints:
            assert min(point["checkpoints_per_round"]) >= 1
    aim = figures["aim"]
    assert aim["writers"] == 64 and aim["measured"] == figures["log"]["64"]["rate"]
    assert aim["met"] == (aim["measured"] >= aim["records_per_s"])
