"""A source that hangs under load (SIGSTOP) costs the gateway its deadline only until its
circuit breaker opens: after that its fields are marked unavailable without asking it, the
other source's fields keep arriving, and the breaker's state is in the metrics. Let go again
(SIGCONT), it answers the breaker's trial call and the breaker closes.

Counted, not timed: every call to the hung source either waited for its deadline (the gateway's
ketenpoort_source_timeouts_total) or was answered by the open breaker at once
(ketenpoort_source_calls_total{result="circuit_open"}); the waiting ones are only those in
flight when the breaker opened, and its trial calls.

Two sources, each a process of its own (tests/integration/source_process.py), configured as an
operator configures them ([[sources]], [source_breaker]): mutual TLS, sealed requests, sealed
and signed answers.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from adapters.circuit_breaker import BreakerSettings
from adapters.client import OpenedDisclosure, PartnerClient, PartnerCredentials
from gateway.api.v1 import common_pb2
from gateway.core import CompiledPolicy
from gateway.server.app import Gateway, start_gateway
from gateway.server.config import SourceEndpoint
from gateway.server.metrics import Metrics
from tests.integration.harness import ROLES, gateway_config
from tests.integration.helpers import accept, register
from tests.integration.source_process import source_process

pytestmark = pytest.mark.slow

DEADLINE_S = 1.0
BREAKER = BreakerSettings(failure_threshold=3, open_for_s=3.0)
WORKERS = 4
REQUESTS = 40
# The recovery is waited for by asking again, at most this often.
RECOVERY_ATTEMPTS = 60
RECOVERY_PAUSE_S = 0.5
OPEN, CLOSED = 2.0, 0.0


def client(gateway: Gateway, keys: Path, partner: str) -> PartnerClient:
    return PartnerClient(
        f"127.0.0.1:{gateway.port}",
        PartnerCredentials.from_key_dir(keys, partner),
        role=ROLES.get(partner, "chain_partner"),
    )


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def by_source(answer: OpenedDisclosure, source: str) -> dict[str, int]:
    """Field -> availability of the released fields of one source."""
    return {
        f.field: f.availability
        for f in answer.response.fields
        if f.source == source and f.outcome != common_pb2.OUTCOME_WITHHELD
    }


def transitions(caplog: pytest.LogCaptureFixture, partner: str) -> list[str]:
    lines = [r.getMessage() for r in caplog.records if r.name == "ketenpoort.sources"]
    return [line for line in lines if f"circuit of {partner}'s source" in line]


async def test_a_hung_source_is_not_waited_for_once_its_breaker_opens(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ketenpoort.sources")
    with (
        source_process(dev_keys, "police") as police_source,
        source_process(dev_keys, "ggz") as ggz_source,
    ):
        config = gateway_config(
            db_url,
            dev_keys,
            source_deadline_s=DEADLINE_S,
            source_breaker=BREAKER,
            sources=(
                SourceEndpoint("police", police_source.address),
                SourceEndpoint("ggz", ggz_source.address),
            ),
        )
        gateway = await start_gateway(config, policy=shipped_policy)
        metrics = gateway.metrics
        ggz = client(gateway, dev_keys, "ggz")
        try:
            police = client(gateway, dev_keys, "police")
            director = client(gateway, dev_keys, "zvh")
            case_id = await register(police, ("zvh", "ggz"))
            await accept(director, case_id)
            await director.change_phase(case_id, "registration", "triage")
            await director.change_phase(case_id, "triage", "case_meeting")
            for c in (police, director):
                await c.close()

            async def ask() -> OpenedDisclosure:
                return await ggz.request_disclosure(case_id, "analysis_and_plan", "case_meeting")

            # Both sources answer: the fields the ggz is given from each.
            whole = await ask()
            police_fields = by_source(whole, "police")
            ggz_fields = by_source(whole, "ggz")
            assert police_fields and ggz_fields
            available = common_pb2.AVAILABILITY_AVAILABLE
            assert set(police_fields.values()) == set(ggz_fields.values()) == {available}
            ggz_values = {f: whole.values[f] for f in ggz_fields}
            for partner in ("police", "ggz"):
                assert sample(metrics, "ketenpoort_source_circuit_state", source=partner) == 0
                assert sample(metrics, "ketenpoort_source_timeouts_total", source=partner) == 0

            # The police's system hangs; the ggz asks, WORKERS at a time, REQUESTS times.
            police_source.hang()
            caplog.clear()
            answers: list[OpenedDisclosure] = []
            queue = list(range(REQUESTS))

            async def worker() -> None:
                while queue:
                    queue.pop()
                    answers.append(await ask())

            await asyncio.gather(*(worker() for _ in range(WORKERS)))

            # Every answer: the police's fields unavailable, the ggz's as before.
            assert len(answers) == REQUESTS
            unavailable = common_pb2.AVAILABILITY_SOURCE_UNAVAILABLE
            for answer in answers:
                assert by_source(answer, "police") == dict.fromkeys(police_fields, unavailable)
                assert not set(police_fields) & set(answer.values)
                assert {f: answer.values.get(f) for f in ggz_fields} == ggz_values
                assert list(answer.response.unavailable_sources).count("police") == 1

            # Counted: the calls that waited for the deadline, and those the open breaker
            # answered at once. Only the calls in flight when it opened and its trials waited.
            waited = sample(metrics, "ketenpoort_source_timeouts_total", source="police")
            not_asked = sample(
                metrics, "ketenpoort_source_calls_total", source="police", result="circuit_open"
            )
            assert waited + not_asked == REQUESTS
            trials = sum("half-open" in line for line in transitions(caplog, "police"))
            assert BREAKER.failure_threshold <= waited
            assert waited <= BREAKER.failure_threshold + WORKERS - 1 + trials
            assert not_asked >= REQUESTS - (BREAKER.failure_threshold + WORKERS - 1 + trials)
            assert trials < not_asked  # most requests did not wait at all

            # Visible in the metrics as scraped: the police's breaker open, the ggz's closed.
            scraped = generate_latest(metrics.registry).decode()
            assert 'ketenpoort_source_circuit_state{source="police"} 2.0' in scraped
            assert 'ketenpoort_source_circuit_state{source="ggz"} 0.0' in scraped
            assert f'ketenpoort_source_timeouts_total{{source="police"}} {waited}' in scraped
            assert 'ketenpoort_source_timeouts_total{source="ggz"} 0.0' in scraped
            # The log says so once per change, never once per call.
            lines = [r.getMessage() for r in caplog.records if r.name == "ketenpoort.sources"]
            assert sum("did not answer within" in line for line in lines) == 1
            assert len(lines) <= 2 + 2 * trials

            # Let go: after open_for_s one trial call reaches it, and its answer closes the
            # breaker. Asked again until the police's fields arrive.
            police_source.resume()
            for _ in range(RECOVERY_ATTEMPTS):
                again = await ask()
                if set(by_source(again, "police").values()) == {available}:
                    break
                await asyncio.sleep(RECOVERY_PAUSE_S)
            else:
                raise AssertionError("the police's source was not asked again")
            assert {f: again.values[f] for f in police_fields} == {
                f: whole.values[f] for f in police_fields
            }
            assert sample(metrics, "ketenpoort_source_circuit_state", source="police") == CLOSED
            changes = transitions(caplog, "police")
            assert "half-open" in changes[-2] and "is closed" in changes[-1]
        finally:
            await ggz.close()
            await gateway.stop(grace=None)
