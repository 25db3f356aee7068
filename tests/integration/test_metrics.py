"""Prometheus metrics count what happened without carrying any value or secret."""

from __future__ import annotations

from prometheus_client import generate_latest

from gateway.cli.demo_data import SOURCE_RECORDS, SUBJECT
from tests.integration.harness import Harness
from tests.integration.helpers import register, to_case_meeting


async def test_metrics_count_requests_decisions_and_sources(harness: Harness) -> None:
    police, director = harness.client("police"), harness.client("zvh")
    case_id = await register(police)
    await to_case_meeting(director, case_id)
    await police.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
    text = generate_latest(harness.gateway.metrics.registry).decode()

    assert 'ketenpoort_requests_total{code="OK",method="RequestDisclosure"} 1.0' in text
    assert 'ketenpoort_requests_total{code="OK",method="ChangePhase"} 2.0' in text
    assert 'ketenpoort_field_decisions_total{category="identifying",outcome="disclosed"}' in text
    assert 'ketenpoort_source_calls_total{result="ok",source="police"} 1.0' in text
    assert "ketenpoort_up 1.0" in text
    assert harness.policy.version in text
    secrets = [SUBJECT.bsn, SUBJECT.name, SUBJECT.address, case_id]
    secrets += [v for r in SOURCE_RECORDS.values() for v in r.fields.values() if len(v) > 3]
    for value in secrets:
        assert value not in text
