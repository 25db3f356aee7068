"""The token benchmark runs and reports every figure beside its baseline.

Correctness only: the bench runs in its quick mode and no timing is held to any bound. What
is checked is the report's shape, that every admitted claim was committed (the admission's
own counters), and how a disclosure bench report is read.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
BENCH = BENCH_DIR / "token_bench.py"
CPU_TARGETS = {"ed25519_sign", "mint", "ed25519_verify", "verify_bound", "verify_unbound"}


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The bench module, imported as the script imports its neighbours."""
    monkeypatch.syspath_prepend(str(BENCH_DIR))
    import token_bench

    return token_bench


def run_bench(*args: str) -> dict[str, Any]:
    # Run as documented, as a script, so that its imports work from its own directory.
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick", *args],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


@pytest.mark.slow
@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_bench_reports_token_costs_against_their_baselines(db: str) -> None:
    report = run_bench("--db", db, "--concurrency", "1,8")
    claims = report["claims"][db]
    if "skipped" in claims:
        pytest.skip(claims["skipped"])

    assert report["benchmark"] == "token" and report["quick"] is True
    assert set(report["cpu_per_token"]) == CPU_TARGETS
    for figures in report["cpu_per_token"].values():
        assert figures["cpu_mean_us"] > 0 and figures["mean_us"] > 0
    call = report["grpc_call"]
    assert call["tls"] == "mtls" and call["errors"] == 0 and call["server_cpu_us"] > 0
    floor = claims["one_claim_per_commit"]
    assert floor["rate"] > 0 and floor["p50_ms"] <= floor["p99_ms"]
    assert set(claims["admission"]) == {"1", "8"}
    for point in claims["admission"].values():
        assert point["errors"] == 0 and point["rate"] > 0
        # Every admitted call's claim was committed (calls in flight at the deadline too).
        assert point["claims"] >= int(point["rate"] * report["seconds"])
        assert 1 <= point["batches"] <= point["claims"]
    assert claims["admission"]["1"]["mean_batch"] == 1.0
    ratios = report["ratios"]
    for name in ("mint_vs_ed25519_sign", "verify_bound_vs_ed25519_verify",
                 "verify_bound_vs_grpc_call_server"):
        assert ratios[name] > 0
    assert set(ratios["claims_vs_one_claim_per_commit"][db]) == {"1", "8"}
    gateway = report["per_call"]["gateway"][db]
    assert gateway["claims_at_concurrency"] == 8 and gateway["cpu_us"] > 0


def test_the_claim_cost_is_read_at_the_gateways_batch(bench: ModuleType) -> None:
    points = {
        "1": {"mean_batch": 1.0, "cpu_us_per_claim": 1000.0},
        "16": {"mean_batch": 16.0, "cpu_us_per_claim": 100.0},
    }
    assert bench.claim_cpu_at_batch(points, 1.0) == 1000.0
    assert bench.claim_cpu_at_batch(points, 16.0) == 100.0
    # Linear in 1/batch between the points; the nearest point outside them.
    between = 100 + 900 * (1 / 2 - 1 / 16) / (1 - 1 / 16)
    assert bench.claim_cpu_at_batch(points, 2.0) == pytest.approx(between)
    assert bench.claim_cpu_at_batch(points, 64.0) == 100.0
    assert bench.claim_cpu_at_batch(points, 0.5) == 1000.0


def test_a_disclosure_report_is_read_for_its_gateway(bench: ModuleType) -> None:
    cpu = {name: {"cpu_mean_us": 100.0} for name in CPU_TARGETS}
    cpu["verify_unbound"] = {"cpu_mean_us": 90.0}
    cpu["mint"] = {"cpu_mean_us": 50.0}
    admission = {"sqlite": {"admission": {
        "1": {"mean_batch": 1.0, "cpu_us_per_claim": 400.0, "rate": 1000.0},
        "16": {"mean_batch": 16.0, "cpu_us_per_claim": 100.0, "rate": 8000.0},
    }}}
    disclosure = {
        "db": "sqlite", "tls": "mtls", "concurrency": 16,
        "targets": {"gateway": {"rate": 400.0, "p50_ms": 30.0,
                                "cpu_us_per_request": {"gateway": 2000.0, "client": 500.0}}},
        "gateway_tokens": {"mean_batch": 16.0},
    }
    out = bench.against_disclosure(disclosure, cpu, admission)
    assert out["token_cpu_us_per_request"] == 200.0  # bound verify + claim at batch 16
    assert out["token_share_of_gateway_cpu"] == 0.1
    assert out["mint_share_of_client_cpu"] == 0.1
    assert out["claim_capacity_vs_gateway_rate"] == 20.0
    plaintext = dict(disclosure, tls="insecure", gateway_tokens={"mean_batch": 1.0})
    assert bench.against_disclosure(plaintext, cpu, admission)["token_cpu_us_per_request"] == 490.0
    postgres = dict(disclosure, db="postgres")
    assert "skipped" in bench.against_disclosure(postgres, cpu, admission)
