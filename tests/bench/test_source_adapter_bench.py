"""The source adapter benchmark runs and reports every figure; correctness only, no latency is
held to any bound (the runtime targets check that every asked field came back)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "source_adapter_bench.py"


def test_the_bench_reports_the_added_latency_of_a_fhir_and_a_sql_source() -> None:
    result = subprocess.run([sys.executable, str(BENCH), "--quick"], capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["targets"]) == {"grpc_floor", "fhir_direct", "fhir_runtime",
                                      "sql_direct", "sql_runtime"}
    for figures in report["targets"].values():
        assert figures["p50_ms"] > 0
    assert set(report["added_latency_p50"]) == {"fhir", "sql"}
    for added in report["added_latency_p50"].values():
        assert len(added["added_ms_per_round"]) == report["rounds"] == 1
