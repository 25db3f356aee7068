"""The disclosure benchmark runs its three targets over mutual TLS and in plaintext.

Correctness only: a very short run, and no rate is held to any bound. What is checked is that
every target answers without errors over the transport asked for, that the gateway's tokens
are bound to the certificate exactly under mutual TLS, and that every call's token id was
claimed and its disclosure logged.
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
BENCH = BENCH_DIR / "disclosure_bench.py"
SECONDS = 0.5


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The bench module, imported as the script imports its neighbours."""
    monkeypatch.syspath_prepend(str(BENCH_DIR))
    import disclosure_bench

    return disclosure_bench


def run_bench(*args: str) -> dict[str, Any]:
    # Run as documented, as a script, so that its imports work from its own directory.
    result = subprocess.run(
        [sys.executable, str(BENCH), "--seconds", str(SECONDS), "--warmup", "0.1",
         "--rounds", "1", "--concurrency", "2", *args],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_production_transport_is_the_default(bench: ModuleType) -> None:
    assert bench.parse_args([]).tls == "mtls"
    assert bench.parse_args(["--tls", "insecure"]).tls == "insecure"
    with pytest.raises(SystemExit):
        bench.parse_args(["--tls", "tls"])


@pytest.mark.slow
@pytest.mark.parametrize("tls", ["mtls", "insecure"])
def test_every_target_answers_over_the_transport_asked_for(tls: str) -> None:
    report = run_bench("--tls", tls)

    assert report["tls"] == tls and report["db"] == "sqlite"
    assert set(report["targets"]) == {"direct", "proxy", "gateway"}
    for figures in report["targets"].values():
        assert figures["errors"] == 0 and figures["rate"] > 0
    sizes = report["payload_bytes"]
    assert sizes["direct_response"] == sizes["proxy_response"] == sizes["gateway_response"]
    tokens = report["gateway_tokens"]
    assert tokens["bound_to_certificate"] is (tls == "mtls")
    # One token per call: the measured disclosures, the warm-up and the case's set-up.
    measured = int(report["targets"]["gateway"]["rate"] * SECONDS)
    assert tokens["claims"] > measured and 1 <= tokens["batches"] <= tokens["claims"]
    assert report["gateway_log"]["records"] > measured
