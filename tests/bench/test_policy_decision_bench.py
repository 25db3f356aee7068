"""The policy decision benchmark runs, and Cedar, asked the same questions, decides as we do.

Correctness only: the bench runs in its tiny mode and no timing is held to any bound.
The Cedar tests need the optional ``bench`` extra (cedarpy) and are skipped without it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
BENCH = BENCH_DIR / "policy_decision_bench.py"
CEDAR_MISSING = "cedarpy is in the optional 'bench' extra: pip install -e '.[bench]'"
EFFECTS = ("disclose", "mask", "withhold")


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The bench module, imported as the script imports its neighbours."""
    monkeypatch.syspath_prepend(str(BENCH_DIR))
    import policy_decision_bench

    return policy_decision_bench


def test_the_bench_times_our_decision_for_a_40_field_record() -> None:
    # Run as documented, as a script, so that its imports work from its own directory.
    result = subprocess.run(
        [sys.executable, str(BENCH), "--tiny", "--json", "--targets", "dict,ours"],
        capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)

    shape = report["policy"]
    assert shape["source"] == "synthetic"
    assert report["record_fields"] == shape["fields"] == 40
    assert shape["rules"] >= 60 and shape["partner_types"] >= 10 and shape["categories"] >= 12
    assert (shape["roles"], shape["purposes"], shape["phases"]) == (4, 5, 6)
    assert shape["overrides"] > 0 and shape["masks"] > 0 and shape["withholds"] > 0
    assert set(report["targets"]) == {"dict", "ours"}
    for figures in report["targets"].values():
        assert figures["median_us"] > 0 and figures["p99_us"] > 0 and figures["mean_us"] > 0
    # The timed records are not trivial: every effect decides some of their fields.
    mix = report["fields_per_record_by_effect"]
    assert all(mix[effect] > 0 for effect in EFFECTS)
    assert sum(mix.values()) == pytest.approx(40, abs=0.2)
    assert "agreement" not in report


def test_the_synthetic_policy_loads_without_errors_or_warnings(bench: ModuleType) -> None:
    policy, source = bench.load(bench.parse_args(["--tiny"]))
    assert source == "synthetic"
    assert policy.warnings == ()
    # Every purpose is granted on some legal basis, as the format requires.
    assert all(p.legal_bases for p in policy.policy.purposes)


def test_cedar_decides_every_field_as_we_do(bench: ModuleType,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("cedarpy", reason=CEDAR_MISSING)
    assert bench.main(["--tiny", "--json"]) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)

    agreement = report["agreement"]
    assert agreement["mismatches"] == 0, agreement["examples"]
    # Every cell of the policy was asked, and refused requests as well as released,
    # masked and withheld fields were among the answers compared.
    assert agreement["requests"] > report["policy"]["cells"]
    assert agreement["fields"] == agreement["requests"] * 40
    assert agreement["refused"] > 0
    assert min(agreement["disclosed"], agreement["masked"], agreement["withheld"]) > 0
    assert set(report["targets"]) == {"dict", "ours", "cedar", "cedar_permit_all"}
    assert set(report["ratios"]["cedar_vs_ours"]) == {"median", "p99", "mean", "cpu_mean"}


def test_the_agreement_check_catches_a_translation_that_ignores_overrides(
        bench: ModuleType) -> None:
    cedarpy = pytest.importorskip("cedarpy", reason=CEDAR_MISSING)
    import cedar_policy

    policy, _ = bench.load(bench.parse_args(["--tiny"]))
    cedar = cedar_policy.translate(policy.policy)
    # Without the rules' `unless` clauses (the refusals keep theirs) a withhold beats an
    # override that should set it aside.
    text = re.sub(r"\nunless \{ \([^;]*\}(?=;)", "", cedar.text)
    careless = dataclasses.replace(cedar, policies=cedarpy.PolicySet.from_str(text))
    fields = tuple(f.id for f in policy.fields)
    requests = [r for r in bench.cell_requests(policy, fields)
                if r.purpose == "coordinate_interventions" and r.partner_id == "probation"]

    assert bench.check_agreement(policy, cedar, requests)["mismatches"] == 0
    found = bench.check_agreement(policy, careless, requests)
    # Probation gets the treatment status, the diagnosis as a presence and whether a care
    # team is involved only through override rules; the careless translation withholds them.
    assert found["mismatches"] > 0
    assert {e["field"] for e in found["examples"]} <= {
        "ggz.treatment_status", "addiction.treatment", "ggz.diagnosis", "ggz.care_involved"}
    assert all(e["ours"]["released"] and not e["cedar"]["released"] for e in found["examples"])
