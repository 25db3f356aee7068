"""The break-glass review queue on SQLite and PostgreSQL: which records it holds, and closes
that race on two gateway replicas (two engines, two log writers, one database)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from gateway.broker.break_glass_review import BreakGlassReviewQueue, ReviewClosed, ReviewComments
from gateway.broker.caller import Principal, TraceContext
from gateway.broker.free_texts import FreeTexts
from gateway.broker.log_events import AuditEvent, LogRecord, RecordKind
from gateway.crypto import Keystore
from gateway.store import AuditLog, create_engine_for, init_schema
from gateway.store.reviews import BreakGlassReviews, NotBreakGlassDisclosure, ReviewStatus
from gateway.store.text_keys import TextKeyStore
from tests.store.conftest import EventFactory


async def _seed(audit: AuditLog, make_event: EventFactory) -> dict[str, int]:
    """A break-glass disclosure, a regular one and a break-glass refusal; their seqs."""
    kinds = {
        "break_glass": make_event(1, break_glass=True, purpose="acute_safety"),
        "regular": make_event(2),
        "refusal": make_event(
            3,
            kind=RecordKind.REFUSAL,
            break_glass=True,
            purpose="acute_safety",
            status="refused",
            refusal_code="break_glass_expired",
            fields=(),
        ),
    }
    return {name: (await audit.append(e)).seq for name, e in kinds.items()}


def _officer(n: int) -> Principal:
    return Principal("zvh", "zvh", "privacy_officer", f"fg-{n}", "", 0)


async def test_only_break_glass_disclosures_are_queued(
    engine: Engine, audit: AuditLog, make_event: EventFactory, free_texts: FreeTexts
) -> None:
    seqs = await _seed(audit, make_event)
    reviews = BreakGlassReviews(engine, ReviewComments(free_texts))
    for status in ReviewStatus:
        listed = reviews.list_reviews(status=status)
        expected = [] if status is ReviewStatus.CLOSED else [seqs["break_glass"]]
        assert [r.disclosure.seq for r in listed] == expected
    assert reviews.count_open() == 1
    assert reviews.open_disclosure(seqs["break_glass"]).event.break_glass
    for name in ("regular", "refusal"):
        with pytest.raises(NotBreakGlassDisclosure):
            reviews.open_disclosure(seqs[name])


@pytest.fixture
async def replicas(db_url: str) -> AsyncIterator[list[tuple[Engine, AuditLog]]]:
    """Two gateways' worth of engine and log writer on the test's database."""
    pairs = []
    for _ in range(2):
        engine = create_engine_for(db_url)
        log = AuditLog(engine)
        await log.start()
        pairs.append((engine, log))
    try:
        yield pairs
    finally:
        for engine, log in pairs:
            await log.close()
            engine.dispose()


async def test_racing_closes_on_two_replicas_leave_one_review(
    engine: Engine,
    audit: AuditLog,
    make_event: EventFactory,
    replicas: list[tuple[Engine, AuditLog]],
    free_texts: FreeTexts,
) -> None:
    """Both closes pass the open check and append their record before either writes the
    row; the primary key lets exactly one row in, and the loser is told it is closed."""
    seq = (await _seed(audit, make_event))["break_glass"]
    both_appended = asyncio.Barrier(2)

    def queue(engine: Engine, log: AuditLog) -> BreakGlassReviewQueue:
        async def append(e: AuditEvent) -> LogRecord:
            record = await log.append(e)
            await both_appended.wait()
            return record

        return BreakGlassReviewQueue(
            BreakGlassReviews(engine, ReviewComments(free_texts)),
            append,
            lambda: datetime.now(UTC),
            free_texts,
        )

    async def close(n: int) -> int | str:
        try:
            review = await queue(*replicas[n]).close(
                _officer(n), TraceContext.from_traceparent(None), seq, "justified", f"c{n}"
            )
        except ReviewClosed:
            return "closed"
        assert review.closure is not None
        return review.closure.review_seq

    outcomes = await asyncio.wait_for(asyncio.gather(close(0), close(1)), 30)
    assert outcomes.count("closed") == 1
    [winner] = [o for o in outcomes if o != "closed"]
    reviews = BreakGlassReviews(engine, ReviewComments(free_texts))
    [row] = reviews.list_reviews(status=ReviewStatus.CLOSED)
    assert row.closure is not None and row.closure.review_seq == winner
    assert row.closure.reviewed_by == f"zvh:fg-{outcomes.index(winner)}"
    records = audit.list_records(kinds=[RecordKind.BREAK_GLASS_REVIEW])
    # Both appended: the row, not the newest record, says which review counts.
    assert len(records) == 2 and winner in [r.seq for r in records]
    assert BreakGlassReviews(engine, ReviewComments(free_texts)).count_open() == 0


async def test_the_queue_reads_through_the_partial_index(
    tmp_path: Path, make_event: EventFactory, gateway_keys: Keystore
) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'plan.db'}")
    init_schema(engine)
    free_texts = FreeTexts(TextKeyStore(engine), gateway_keys, lambda: datetime.now(UTC))
    log = AuditLog(engine)
    log.append_sync([make_event(n, break_glass=n % 50 == 0) for n in range(500)])
    seen: list[tuple[str, Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _capture(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        if "break_glass_reviews" in statement:
            seen.append((statement, params))

    assert len(BreakGlassReviews(engine, ReviewComments(free_texts)).list_reviews()) == 10
    statement, params = seen[-1]
    with engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
    engine.dispose()
    assert any("ix_audit_log_break_glass_seq" in str(step) for step in plan), plan
