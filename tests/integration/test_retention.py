"""Retention through a running gateway: a case closed longer ago than the retention period is
shredded, and every request on it is answered FAILED_PRECONDITION, logged, with no source
asked; recent and open cases go on as before. The gateway runs on a clock the test moves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from sqlalchemy import func, select

from gateway.broker.case_access import SHREDDED_CODE
from gateway.broker.case_reading import SHREDDED_MESSAGE
from gateway.broker.log_events import RecordKind
from gateway.core import CompiledPolicy
from gateway.server.app import start_gateway
from gateway.store import CaseRepository
from gateway.store.tables import case_entries
from gateway.tlog.notes import format_time
from tests.integration.harness import Harness, gateway_config, running_harness
from tests.integration.helpers import accept, register

DAYS = 730  # the default retention_days_after_closure


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, days: float) -> None:
        self.now += timedelta(days=days)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC) - timedelta(days=3 * 365))


@pytest.fixture
async def harness_on_clock(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy, clock: Clock
) -> AsyncIterator[Harness]:
    async with running_harness(db_url, dev_keys, shipped_policy, clock=clock) as harness:
        yield harness


def entry_count(harness: Harness, case_id: str) -> int:
    with harness.gateway.engine.begin() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(case_entries)
                .where(case_entries.c.case_id == case_id)
            ).scalar_one()
        )


def sources_asked(harness: Harness) -> int:
    return sum(len(s.servicer.seen) + s.servicer.lookups for s in harness.sources.values())


async def refused_shredded(call: object) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.value.details() == SHREDDED_MESSAGE


async def test_a_case_closed_longer_ago_than_retention_is_shredded_and_refused(
    harness_on_clock: Harness, clock: Clock
) -> None:
    harness = harness_on_clock
    police, director = harness.client("police"), harness.client("zvh")
    old = await register(police, ("zvh", "ggz"))
    await police.add_to_case_file(old, "case.notes", "Neighbours heard shouting at night.")
    await accept(director, old)
    await director.change_phase(old, "registration", "closure")
    open_case = await register(police)
    clock.advance(DAYS - 365)
    recent = await register(police)
    await accept(director, recent)
    await director.change_phase(recent, "registration", "closure")
    clock.advance(366)  # `old` closed 731 days ago, `recent` 366
    entries_of_old = entry_count(harness, old)
    kept = {c: entry_count(harness, c) for c in (open_case, recent)}
    asked_before = sources_asked(harness)

    retention = harness.gateway.retention
    assert retention is not None
    report = await retention.run_once()
    assert report is not None
    assert [c.case_id for c in report.cases] == [old]

    # Its data is gone; the case row stays.
    row = CaseRepository(harness.gateway.engine).get_case(old)
    assert row is not None and row.wrapped_data_key == b"" and row.participants == ()
    assert row.shredded_at == clock.now
    assert entry_count(harness, old) == 0
    # Every use case refuses it clearly, before participation, policy or any source.
    await refused_shredded(police.request_disclosure(old, "analysis_and_plan", "closure"))
    await refused_shredded(police.request_disclosure(old, "assess_and_accept", "registration"))
    await refused_shredded(police.triage(old))
    await refused_shredded(police.add_to_case_file(old, "case.notes", "A late note."))
    await refused_shredded(police.invite(old, "housing"))
    await refused_shredded(director.change_phase(old, "closure", "monitoring"))
    await refused_shredded(
        harness.client("municipality").request_disclosure(old, "assess_and_accept", "registration")
    )
    assert sources_asked(harness) == asked_before
    assert entry_count(harness, old) == 0

    # The recent and the open case are untouched and still served.
    assert {c: entry_count(harness, c) for c in kept} == kept
    for case_id in kept:
        untouched = CaseRepository(harness.gateway.engine).get_case(case_id)
        assert untouched is not None and untouched.shredded_at is None
    opened = await police.request_disclosure(open_case, "assess_and_accept", "registration")
    assert opened.values

    log = harness.gateway.log
    (record,) = log.list_records(kinds=[RecordKind.RETENTION])
    assert record.event.case_id == old and record.event.subject_pseudonym == row.subject_pseudonym
    assert record.event.partner_id == "zvh" and record.event.role == "system"
    assert row.closed_at is not None
    assert dict(record.event.detail) == {
        "closed_at": format_time(row.closed_at),
        "entries_deleted": str(entries_of_old),
        "retention_days": str(DAYS),
    }
    refusals = log.list_records(case_id=old, kinds=[RecordKind.REFUSAL])
    assert [r.event.refusal_code for r in refusals] == [SHREDDED_CODE] * 7
    assert log.verify().ok

    # A second run finds nothing more to do and writes nothing.
    count = log.count()
    again = await retention.run_once()
    assert again is not None and again.cases == ()
    assert log.count() == count
    metrics = harness.gateway.metrics.registry
    assert metrics.get_sample_value("ketenpoort_cases_shredded_total") == 1
    assert (metrics.get_sample_value("ketenpoort_retention_runs_total", {"result": "ok"}) or 0) >= 2


async def test_the_gateway_shreds_on_its_own_every_interval(
    tmp_path: Path, dev_keys: Path, shipped_policy: CompiledPolicy, clock: Clock
) -> None:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    config = gateway_config(url, dev_keys, retention_interval_s=0.05)
    gateway = await start_gateway(config, policy=shipped_policy, sources={}, clock=clock)
    try:
        harness = Harness(gateway, dev_keys, {}, shipped_policy, url, config.registry_path)
        police, director = harness.client("police"), harness.client("zvh")
        case_id = await register(police)
        await accept(director, case_id)
        await director.change_phase(case_id, "registration", "closure")
        clock.advance(DAYS + 1)
        registry = gateway.metrics.registry
        for _ in range(200):
            if registry.get_sample_value("ketenpoort_cases_shredded_total") == 1:
                break
            await asyncio.sleep(0.025)
        assert registry.get_sample_value("ketenpoort_cases_shredded_total") == 1
        assert [
            r.event.case_id for r in gateway.log.list_records(kinds=[RecordKind.RETENTION])
        ] == [case_id]
    finally:
        await gateway.stop(grace=None)
    assert gateway.retention is not None and await gateway.retention.run_once() is None
