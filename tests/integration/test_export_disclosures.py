"""A partner's export of its own disclosures over real gRPC, on SQLite and PostgreSQL.

The gateway runs on a clock the test moves a day at a time, so the disclosures fall in three
periods; every expectation is computed from the log itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from adapters.client import PartnerClient
from gateway.api.v1 import common_pb2, exchange_pb2, exchange_pb2_grpc
from gateway.broker.log_events import LogRecord, RecordKind
from gateway.core import CompiledPolicy
from gateway.tlog.notes import format_time
from tests.integration.harness import Harness, running_harness
from tests.integration.helpers import accept, register

EXPORTED = [RecordKind.DISCLOSURE, RecordKind.TRIAGE]
RELEASED = {"disclosed", "masked"}
OUTCOME_WORD = {
    common_pb2.OUTCOME_DISCLOSED: "disclosed",
    common_pb2.OUTCOME_MASKED: "masked",
    common_pb2.OUTCOME_WITHHELD: "withheld",
}


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Periods:
    """Day boundaries: period n runs from starts[n] to starts[n + 1]."""

    starts: list[datetime]


@pytest.fixture
async def exports(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy
) -> AsyncIterator[tuple[Harness, Periods]]:
    clock = Clock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    async with running_harness(db_url, dev_keys, shipped_policy, clock=clock) as harness:
        periods = await _fill(harness, clock)
        yield harness, periods


async def _fill(harness: Harness, clock: Clock) -> Periods:
    police = harness.client("police", user_ref="agent-7")
    director, ggz = harness.client("zvh"), harness.client("ggz", user_ref="ggz-3")
    starts = [clock.now]
    case_id = await register(police, ("zvh", "ggz"))
    await accept(director, case_id)
    await director.change_phase(case_id, "registration", "triage")
    await director.triage(case_id)
    await director.change_phase(case_id, "triage", "case_meeting")
    await police.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
    await ggz.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
    clock.now += timedelta(days=1)
    starts.append(clock.now)
    for _ in range(3):
        await police.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
    await ggz.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
    with pytest.raises(grpc.aio.AioRpcError):  # a refusal is no disclosure
        await police.request_disclosure(case_id, "curiosity", "case_meeting")
    clock.now += timedelta(days=1)
    starts.append(clock.now)
    await police.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
    clock.now += timedelta(days=1)
    starts.append(clock.now)
    return Periods(starts)


async def _pages(client: PartnerClient, **request: object) -> list[exchange_pb2.ExportPage]:
    return [page async for page in client.export_pages(**request)]  # type: ignore[arg-type]


def _records(harness: Harness, since: datetime, until: datetime) -> list[LogRecord]:
    return [
        r
        for r in harness.gateway.log.list_records(kinds=EXPORTED, since=since, until=until)
        if r.event.status in ("ok", "incomplete")
    ]


async def test_recipient_export_is_the_callers_disclosures_in_the_period(
    exports: tuple[Harness, Periods],
) -> None:
    harness, periods = exports
    police = harness.client("police", user_ref="agent-7")
    since, until = periods.starts[1], periods.starts[2]
    expected = [r for r in _records(harness, since, until) if r.event.partner_id == "police"]
    assert len(expected) == 3

    pages = await _pages(police, since=since, until=until, page_size=2)
    assert [len(p.disclosures) for p in pages] == [2, 1]
    assert [p.done for p in pages] == [False, True]
    entries = [e for p in pages for e in p.disclosures]
    assert [e.seq for e in entries] == [r.seq for r in expected]
    for entry, record in zip(entries, expected, strict=True):
        e = record.event
        assert entry.record_hash == record.record_hash
        assert entry.disclosure_id == e.disclosure_id and entry.trace_id == e.trace_id
        assert entry.recipient_partner_id == "police" and entry.user_ref == "agent-7"
        assert entry.occurred_at == format_time(e.occurred_at)
        assert (entry.purpose, entry.case_id, entry.subject_pseudonym) == (
            e.purpose,
            e.case_id,
            e.subject_pseudonym,
        )
        assert [(f.field, OUTCOME_WORD[f.outcome], f.source) for f in entry.fields] == [
            (f.field, f.outcome, f.source) for f in e.fields
        ]
    assert pages[0].last_seq == entries[1].seq
    assert pages[-1].last_seq >= entries[-1].seq

    resumed = await _pages(police, since=since, until=until, after_seq=pages[0].last_seq)
    assert [e.seq for p in resumed for e in p.disclosures] == [expected[2].seq]

    everything = [e async for e in police.export_disclosures()]
    mine = [r for r in _records(harness, periods.starts[0], periods.starts[3])]
    assert [e.seq for e in everything] == [r.seq for r in mine if r.event.partner_id == "police"]
    assert {e.recipient_partner_id for e in everything} == {"police"}
    kinds = {r.event.kind for r in mine if r.seq in {e.seq for e in everything}}
    assert kinds == {RecordKind.DISCLOSURE}
    # The triage answer went to the procesregisseur, who alone asks it: it is in the ZVH's
    # export, not the police's.
    theirs = [e async for e in harness.client("zvh").export_disclosures()]
    triage = [r for r in mine if r.event.kind == RecordKind.TRIAGE]
    assert triage and {r.seq for r in triage} <= {e.seq for e in theirs}


async def test_source_export_holds_only_the_callers_released_fields(
    exports: tuple[Harness, Periods],
) -> None:
    harness, periods = exports
    ggz = harness.client("ggz", user_ref="ggz-3")
    since, until = periods.starts[0], periods.starts[2]
    expected = {
        r.seq: [f for f in r.event.fields if f.source == "ggz" and f.outcome in RELEASED]
        for r in _records(harness, since, until)
    }
    expected = {seq: fields for seq, fields in expected.items() if fields}
    recipients = {r.event.partner_id for r in _records(harness, since, until) if r.seq in expected}
    assert "zvh" in recipients, "the ZVH receives (the triage answer of) the GGZ's system"

    entries = [e async for e in ggz.export_disclosures(role="source", since=since, until=until)]
    assert [e.seq for e in entries] == sorted(expected)
    for entry in entries:
        assert entry.fields, "a record without the caller's released fields is left out"
        assert [(f.field, OUTCOME_WORD[f.outcome]) for f in entry.fields] == [
            (f.field, f.outcome) for f in expected[entry.seq]
        ]
        assert {f.source for f in entry.fields} == {"ggz"}
        assert entry.user_ref == "", "the recipient's user reference stays with the recipient"
    assert any(e.recipient_partner_id == "zvh" for e in entries)


async def test_another_partners_disclosures_never_appear(
    exports: tuple[Harness, Periods],
) -> None:
    harness, periods = exports
    ggz = harness.client("ggz", user_ref="ggz-3")
    received = [e async for e in ggz.export_disclosures()]
    log_ggz = [
        r.seq
        for r in _records(harness, periods.starts[0], periods.starts[3])
        if r.event.partner_id == "ggz"
    ]
    assert [e.seq for e in received] == log_ggz and len(log_ggz) == 2
    municipality = harness.client("municipality")
    assert [e async for e in municipality.export_disclosures()] == []
    supplied = [e async for e in municipality.export_disclosures(role="source")]
    assert all(f.source == "municipality" for e in supplied for f in e.fields)


async def test_each_export_is_recorded_before_it_is_sent(
    exports: tuple[Harness, Periods],
) -> None:
    harness, periods = exports
    police = harness.client("police", user_ref="agent-7")
    since, until = periods.starts[1], periods.starts[2]
    head = harness.gateway.log.head().last_seq
    pages = await _pages(police, since=since, until=until, page_size=2)
    [record] = harness.gateway.log.list_records(kinds=[RecordKind.LOG_EXPORT])
    assert record.seq == head + 1
    e = record.event
    assert (e.partner_id, e.user_ref, e.role) == ("police", "agent-7", "case_director")
    assert dict(e.detail) == {
        "role": "recipient",
        "since": format_time(since),
        "until": format_time(until),
        "after_seq": "0",
        "through_seq": str(head),
        "count": "3",
    }
    # The export covers the log up to its own record, which is not part of it.
    assert pages[-1].last_seq == head
    assert harness.gateway.log.verify().ok


async def test_exports_need_a_token_and_a_valid_request(
    exports: tuple[Harness, Periods],
) -> None:
    harness, periods = exports
    async with harness.channel() as channel:
        stub = exchange_pb2_grpc.ExchangeServiceStub(channel)  # type: ignore[no-untyped-call]
        for metadata in ((), (("authorization", "Bearer not-a-token"),)):
            request = exchange_pb2.ExportDisclosuresRequest(role="source")
            call = stub.ExportDisclosures(request, metadata=metadata)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                async for _ in call:
                    pytest.fail("an unauthenticated caller received a page")
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED

    police = harness.client("police")
    day = periods.starts[1]
    for bad in (
        {"since": "yesterday"},
        {"until": "2026-03-02T25:00:00Z"},
        {"since": "2026-03-02T09:00:00"},
        {"since": day, "until": day},
        {"since": day + timedelta(hours=1), "until": day},
        {"role": "observer"},
        {"page_size": 1001},
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _pages(police, **bad)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad
    assert not harness.gateway.log.list_records(kinds=[RecordKind.LOG_EXPORT])
    # A date alone is its first instant, UTC.
    dated = await _pages(police, since="2026-03-03", until="2026-03-04")
    assert sum(len(p.disclosures) for p in dated) == 3
