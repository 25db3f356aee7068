"""Appending to and reading the accountability log, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, text

from gateway.broker.log_events import RecordKind
from gateway.store import (
    GENESIS_HASH,
    AuditLog,
    AuditLogClosed,
    AuditWriteError,
    BatchStats,
    StoreError,
    encode_event,
    parse_event,
)
from gateway.store.audit_event import BODY_KEYS, FIELD_KEYS, chain_hash
from gateway.store.db import for_writing
from gateway.store.tables import audit_log
from tests.store.factories import T0, event


async def test_append_returns_seq_one_to_n_in_order(audit: AuditLog) -> None:
    records = [await audit.append(event(n)) for n in range(5)]
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[0].prev_hash == GENESIS_HASH
    for before, after in zip(records, records[1:], strict=False):
        assert after.prev_hash == before.record_hash
    for n, record in enumerate(records):
        assert record.event == event(
            n, trace_id=record.event.trace_id, span_id=record.event.span_id
        )
        body = encode_event(record.event).encode()
        assert (
            record.record_hash
            == chain_hash(record.seq, bytes.fromhex(record.prev_hash), body).hex()
        )
        assert record.recorded_at.tzinfo is not None
    assert audit.head().last_seq == 5
    assert audit.head().last_hash == records[-1].record_hash


async def test_append_many_commits_its_events_together_and_in_order(audit: AuditLog) -> None:
    await audit.append(event(0))
    before = audit.batches_committed
    many = [event(n) for n in range(1, 5)]
    records, single = await asyncio.gather(audit.append_many(many), audit.append(event(9)))
    # One commit for the group (the single append may share it), seqs in the given order.
    assert audit.batches_committed - before <= 2
    assert [r.event for r in records] == many
    seqs = [r.seq for r in records]
    assert seqs == list(range(seqs[0], seqs[0] + 4))
    assert single.seq not in seqs
    # Written by one transaction: one recording moment for all of them.
    assert len({r.recorded_at for r in records}) == 1
    assert await audit.append_many([]) == []
    assert audit.verify().ok


async def test_concurrent_appends_get_contiguous_seqs_in_few_batches(audit: AuditLog) -> None:
    events = [event(n) for n in range(200)]
    records = await asyncio.gather(*(audit.append(e) for e in events))
    assert sorted(r.seq for r in records) == list(range(1, 201))
    # Each caller got the record of its own event.
    assert [r.event for r in records] == events
    assert audit.count() == 200
    assert audit.verify().ok
    # Group commit: far fewer transactions than records.
    assert audit.records_committed == 200
    assert audit.batches_committed < 50
    assert sum(audit.last_batch_sizes) == 200
    assert max(audit.last_batch_sizes) > 1


async def test_batches_respect_max_batch(engine: Engine) -> None:
    async with AuditLog(engine, max_batch=16) as log:
        await asyncio.gather(*(log.append(event(n)) for n in range(100)))
    assert max(log.last_batch_sizes) <= 16
    assert log.batches_committed >= 100 // 16
    assert log.verify().ok


async def test_stored_body_has_only_documented_keys(audit: AuditLog, engine: Engine) -> None:
    await audit.append(event(1))
    with engine.connect() as conn:
        row = conn.execute(select(audit_log)).one()
    body = json.loads(row.body)
    assert set(body) == BODY_KEYS
    assert all(set(f) == FIELD_KEYS for f in body["fields"])
    assert parse_event(row.body).disclosure_id == "disc-1"
    # The copies in indexed columns equal the body.
    assert (row.kind, row.partner_id, row.case_id, row.subject_pseudonym) == (
        body["kind"],
        body["partner_id"],
        body["case_id"],
        body["subject_pseudonym"],
    )


async def test_on_batch_hook_and_clock(engine: Engine) -> None:
    seen: list[BatchStats] = []
    fixed = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    async with AuditLog(engine, on_batch=seen.append, clock=lambda: fixed) as log:
        record = await log.append(event(1))
    assert record.recorded_at == fixed
    assert log.list_records()[0].recorded_at == fixed
    assert [(s.size, s.last_seq) for s in seen] == [(1, 1)]
    assert seen[0].seconds >= 0


def test_append_sync_in_chunks(engine: Engine) -> None:
    log = AuditLog(engine, max_batch=3)
    records = log.append_sync([event(n) for n in range(7)])
    assert [r.seq for r in records] == list(range(1, 8))
    assert list(log.last_batch_sizes) == [3, 3, 1]
    assert log.append_sync([]) == []
    assert log.verify().ok


async def test_sync_and_async_appends_share_one_chain(audit: AuditLog, engine: Engine) -> None:
    other = AuditLog(engine)
    await audit.append(event(1))
    await asyncio.to_thread(other.append_sync, [event(2), event(3)])
    assert (await audit.append(event(4))).seq == 4
    assert audit.verify().ok


async def test_append_needs_a_running_writer(engine: Engine) -> None:
    log = AuditLog(engine)
    with pytest.raises(AuditLogClosed):
        await log.append(event(1))
    await log.start()
    await log.start()  # starting twice changes nothing
    assert (await log.append(event(1))).seq == 1
    await log.close()
    await log.close()
    with pytest.raises(AuditLogClosed):
        await log.append(event(2))
    # A closed log can be started again.
    async with log:
        assert (await log.append(event(3))).seq == 2


async def test_close_commits_what_was_queued(engine: Engine) -> None:
    log = AuditLog(engine)
    await log.start()
    tasks = [asyncio.create_task(log.append(event(n))) for n in range(50)]
    await asyncio.sleep(0)  # every task has queued its event
    await log.close()
    assert all(t.done() for t in tasks)
    assert sorted(t.result().seq for t in tasks) == list(range(1, 51))
    assert log.count() == 50


async def test_a_failed_batch_fails_every_caller_and_commits_nothing(
    audit: AuditLog, engine: Engine
) -> None:
    await audit.append(event(0))
    with engine.begin() as conn:
        head = conn.execute(text("SELECT * FROM log_head")).one()._asdict()
        conn.execute(text("DELETE FROM log_head"))
    results = await asyncio.gather(
        *(audit.append(event(n)) for n in range(1, 21)), return_exceptions=True
    )
    assert all(isinstance(r, AuditWriteError) for r in results)
    assert audit.count() == 1
    # Each caller has its own exception object, each naming only the batch size.
    assert len({id(r) for r in results}) == 20
    assert all("records not committed" in str(r) for r in results)
    # Once the head is back, the same writer carries on.
    with engine.begin() as conn:
        columns = ", ".join(head)
        values = ", ".join(f":{name}" for name in head)
        conn.execute(text(f"INSERT INTO log_head ({columns}) VALUES ({values})"), head)
    assert (await audit.append(event(21))).seq == 2
    assert audit.verify().ok


async def test_an_event_that_cannot_be_encoded_fails_alone(audit: AuditLog) -> None:
    bad = event(1, role="\ud800")  # a lone surrogate has no UTF-8 form
    good = [audit.append(event(n)) for n in range(2, 6)]
    results = await asyncio.gather(audit.append(bad), *good, return_exceptions=True)
    assert isinstance(results[0], UnicodeEncodeError)
    assert [r.seq for r in results[1:]] == [1, 2, 3, 4]  # type: ignore[union-attr]


async def test_append_from_another_event_loop_is_refused(audit: AuditLog) -> None:
    def other_loop() -> None:
        asyncio.run(audit.append(event(1)))

    with pytest.raises(StoreError, match="event loop"):
        await asyncio.to_thread(other_loop)


def test_list_records_filters_and_pages(engine: Engine) -> None:
    log = AuditLog(engine)
    day = timedelta(days=1)
    log.append_sync(
        [
            event(0, partner_id="politie", case_id="c1", subject_pseudonym="ps-a"),
            event(1, partner_id="ggz", case_id="c1", subject_pseudonym="ps-a",
                  kind=RecordKind.REFUSAL, status="refused", occurred_at=T0 + day),
            event(2, partner_id="politie", case_id="c2", subject_pseudonym="ps-b",
                  kind=RecordKind.TRIAGE, occurred_at=T0 + 2 * day),
            event(3, partner_id="politie", case_id="c1", subject_pseudonym="ps-a",
                  occurred_at=T0 + 3 * day),
        ]
    )  # fmt: skip

    def seqs(**filters: object) -> list[int]:
        return [r.seq for r in log.list_records(**filters)]  # type: ignore[arg-type]

    assert seqs() == [1, 2, 3, 4]
    assert seqs(partner_id="politie") == [1, 3, 4]
    assert seqs(case_id="c1") == [1, 2, 4]
    assert seqs(subject_pseudonym="ps-b") == [3]
    assert seqs(kinds=[RecordKind.REFUSAL, RecordKind.TRIAGE]) == [2, 3]
    assert seqs(kinds=[]) == []
    assert seqs(since=T0 + day) == [2, 3, 4]
    assert seqs(until=T0 + day) == [1]
    assert seqs(since=T0 + day, until=T0 + 3 * day) == [2, 3]
    assert seqs(partner_id="politie", case_id="c1") == [1, 4]
    assert seqs(partner_id="nobody") == []
    # Paging by seq.
    assert seqs(limit=2) == [1, 2]
    assert seqs(after_seq=2, limit=2) == [3, 4]
    assert seqs(after_seq=4) == []
    assert seqs(partner_id="politie", after_seq=1, limit=1) == [3]
    record = log.list_records(kinds=[RecordKind.REFUSAL])[0]
    assert record.event.partner_id == "ggz" and record.event.status == "refused"
    assert record.event.occurred_at == T0 + day
    for bad_limit in (0, 10_001):
        with pytest.raises(ValueError):
            log.list_records(limit=bad_limit)


def test_count_and_head_of_an_empty_log(engine: Engine) -> None:
    log = AuditLog(engine)
    assert log.count() == 0
    assert log.head().last_seq == 0 and log.head().last_hash == GENESIS_HASH
    assert log.list_records() == []


def test_max_batch_must_be_positive(engine: Engine) -> None:
    with pytest.raises(ValueError):
        AuditLog(engine, max_batch=0)


async def test_a_failing_metrics_hook_does_not_fail_appends(engine: Engine) -> None:
    def broken(_stats: BatchStats) -> None:
        raise RuntimeError("metrics backend down")

    async with AuditLog(engine, on_batch=broken) as log:
        records = await asyncio.gather(*(log.append(event(n)) for n in range(5)))
    assert sorted(r.seq for r in records) == [1, 2, 3, 4, 5]
    assert log.hook_failures == log.batches_committed >= 1


def test_commit_delay_is_bounded(engine: Engine) -> None:
    with pytest.raises(ValueError):
        AuditLog(engine, commit_delay_s=-0.001)
    with pytest.raises(ValueError):
        AuditLog(engine, commit_delay_s=1.0)


async def test_an_idle_writer_commits_each_append_without_delay(engine: Engine) -> None:
    """One caller at a time: the writer finds nothing waiting after each commit, so no
    append waits for company."""
    async with AuditLog(engine, commit_delay_s=0.1) as log:
        for n in range(8):
            await log.append(event(n))
    assert log.batches_committed == 8
    assert log.delayed_batches == 0


async def test_a_busy_writer_waits_to_gather_larger_batches(engine: Engine) -> None:
    """Appends that queued up while a batch was committed make the writer wait a moment, so
    those arriving during that moment join them in one batch; each caller still hears back
    only after its record is committed."""
    async with AuditLog(engine, commit_delay_s=0.1) as log:
        await log.append(event(0))
        # Another replica holds the chain head: the next batch cannot commit until it lets go.
        other = for_writing(engine).connect()
        other.begin()
        if engine.dialect.name == "postgresql":
            other.execute(text("SELECT last_seq FROM log_head WHERE id = 1 FOR UPDATE"))
        first = asyncio.ensure_future(log.append(event(1)))
        await asyncio.sleep(0.1)
        queued = [asyncio.ensure_future(log.append(event(n))) for n in range(2, 6)]
        await asyncio.sleep(0.05)
        assert not first.done() and not any(q.done() for q in queued)
        other.rollback()
        other.close()
        await asyncio.sleep(0.005)
        late = [asyncio.ensure_future(log.append(event(n))) for n in range(6, 9)]
        records = await asyncio.gather(first, *queued, *late)
    assert [r.seq for r in records] == list(range(2, 10))
    assert log.delayed_batches == 1
    # The head's holder let go: record 1 alone, then the queued ones with the late ones.
    assert list(log.last_batch_sizes) == [1, 1, 7]
    assert log.verify().ok
