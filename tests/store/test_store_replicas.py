"""Several gateway replicas appending to one database keep one unbroken chain."""

from __future__ import annotations

import asyncio
import threading

from sqlalchemy import Engine

from gateway.broker.log_events import LogRecord
from gateway.store import AuditLog, create_engine_for, init_schema
from tests.store.factories import event

PER_REPLICA = 150


def _replica(
    db_url: str, name: str, start: threading.Barrier, out: dict[str, list[LogRecord]]
) -> None:
    """One replica: its own engine, event loop and writer, as in a separate process."""

    async def run() -> list[LogRecord]:
        engine = create_engine_for(db_url)
        try:
            async with AuditLog(engine, max_batch=32) as log:
                await asyncio.to_thread(start.wait)
                return list(
                    await asyncio.gather(
                        *(log.append(event(n, partner_id=name)) for n in range(PER_REPLICA))
                    )
                )
        finally:
            engine.dispose()

    out[name] = asyncio.run(run())


def test_two_replicas_append_one_verifiable_chain(db_url: str, engine: Engine) -> None:
    start = threading.Barrier(2)
    out: dict[str, list[LogRecord]] = {}
    threads = [
        threading.Thread(target=_replica, args=(db_url, name, start, out))
        for name in ("replica-a", "replica-b")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert set(out) == {"replica-a", "replica-b"}
    seqs = [r.seq for records in out.values() for r in records]
    assert sorted(seqs) == list(range(1, 2 * PER_REPLICA + 1))
    log = AuditLog(engine)
    assert log.count() == 2 * PER_REPLICA
    result = log.verify()
    assert result.ok, result
    assert result.records_checked == 2 * PER_REPLICA
    # Each record in the table is the one its replica was told it got.
    stored = {r.seq: r for r in log.list_records(limit=1000)}
    for records in out.values():
        for r in records:
            assert stored[r.seq].record_hash == r.record_hash
            assert stored[r.seq].event == r.event


def test_concurrent_schema_creation(db_url: str) -> None:
    engines = [create_engine_for(db_url) for _ in range(3)]
    errors: list[BaseException] = []

    def create(e: Engine) -> None:
        try:
            init_schema(e)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(e,)) for e in engines]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        assert AuditLog(engines[0]).head().last_seq == 0
    finally:
        for e in engines:
            e.dispose()
