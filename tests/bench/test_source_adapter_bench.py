"""The source adapter benchmark runs every target and reports the added latency of a FHIR and a
SQL source. Correctness only: a fraction of a second per target, and no latency or rate is
held to any bound (the bench itself checks that every target's calls bring the system's
values for the subject: the adapter's and the runtime's all asked fields, the gateway's
disclosure is complete)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _pg_reason, pg_server_url

BENCH = Path(__file__).resolve().parents[2] / "bench" / "source_adapter_bench.py"
KIND_TARGETS = {"system_direct", "adapter", "runtime_inmemory", "runtime",
                "disclosure_inmemory", "disclosure"}


def run_bench(*args: str) -> dict[str, Any]:
    # As documented: a script, so that it imports its neighbours from its own directory.
    result = subprocess.run([sys.executable, str(BENCH), "--quick", *args],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def sane(figures: dict[str, Any]) -> None:
    assert figures["errors"] == 0 and figures["rate"] > 0
    assert 0 < figures["p50_ms"] <= figures["p99_ms"] < 10_000
    assert "client" in figures["cpu_us_per_call"]


@pytest.mark.slow
def test_the_bench_reports_what_a_fhir_and_a_sql_source_add() -> None:
    # With PostgreSQL the one run covers every kind (FHIR, SQLite and PostgreSQL); without a
    # server it still runs FHIR and SQLite.
    url = pg_server_url()
    db = "sqlite" if _pg_reason(url) is not None else "postgres"
    options = ["--db", db]
    if db == "postgres":
        # The bench makes its own schema there and drops it afterwards.
        options += ["--pg-url", url.render_as_string(hide_password=False)]
    report = run_bench(*options)

    kinds = {"fhir", "sql_sqlite"} | ({"sql_postgres"} if db == "postgres" else set())
    assert report["benchmark"] == "source_adapter" and report["quick"] is True
    assert report["db"] == db and report["tls"] == "mtls"
    assert set(report["targets"]) == {"grpc_floor"} | kinds
    sane(report["targets"]["grpc_floor"])
    for kind in kinds:
        assert set(report["targets"][kind]) == KIND_TARGETS
        for figures in report["targets"][kind].values():
            sane(figures)
        # The gateway asked the source for some of the kind's fields, by BSN among others.
        assert report["fields"][kind] and "bsn" in report["identifiers"][kind]
        added = report["added"][kind]
        targets = report["targets"][kind]
        per_disclosure = added["per_disclosure"]
        assert per_disclosure["p50_ms"] == pytest.approx(
            targets["disclosure"]["p50_ms"] - targets["disclosure_inmemory"]["p50_ms"],
            abs=0.002)
        assert per_disclosure["p50_ratio"] > 0 and per_disclosure["rate_ratio"] > 0
        assert isinstance(per_disclosure["paired_ms"], float)
        assert len(per_disclosure["paired_ms_per_round"]) == report["rounds"] == 1
        direct = added["runtime_vs_system_direct"]
        assert direct["p50_ms"] == pytest.approx(
            targets["runtime"]["p50_ms"] - targets["system_direct"]["p50_ms"], abs=0.002)
        assert "paired_ms" in direct
    # The FHIR server was asked for the Patient and for the asked fields' resource types only.
    asked = report["fhir_server_requests"]
    assert asked["Patient"] > 0
    assert set(asked) <= {"Patient", "Condition", "EpisodeOfCare", "CarePlan"}


def test_quick_is_small_and_postgres_is_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH.parent))  # as the script imports its neighbours
    import source_adapter_bench as bench

    quick = bench.parse_args(["--quick"])
    assert quick.rounds == 1 and quick.seconds < 1
    assert bench.parse_args([]).kinds == ("fhir", "sql_sqlite")
    assert bench.parse_args(["--db", "postgres"]).kinds == ("fhir", "sql_sqlite", "sql_postgres")
    with pytest.raises(SystemExit):
        bench.parse_args(["--concurrency", "0"])
