"""Shredding cases at the end of retention, in the store: what goes, what stays, exactly once.

Runs on SQLite and PostgreSQL; the test of the database file's bytes is SQLite's own.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select

from gateway.broker.log_events import AuditEvent, RecordKind, detail_of
from gateway.crypto.envelope import DataKey, field_aad
from gateway.store import (
    AuditLog,
    CaseNotFound,
    CaseRepository,
    EntryRow,
    create_engine_for,
    init_schema,
)
from gateway.store.errors import CaseShredded
from gateway.store.retention import CaseShredder, DueCase
from gateway.store.tables import case_entries, case_participants
from gateway.store.tables import cases as cases_table
from gateway.tlog.notes import format_time
from tests.store.factories import T0
from tests.store.factories import event as make_event

CLOSING = "closure"
# Closed this long before T0 + two years, the retention period of these tests.
NOW = T0 + timedelta(days=730)


def entries_of(case_id: str, n: int, size: int = 200) -> list[EntryRow]:
    return [
        EntryRow(
            entry_id=f"{case_id}-e{i:03d}",
            case_id=case_id,
            field="case.notes",
            ciphertext=os.urandom(size),
            created_by="police",
            created_at=T0,
        )
        for i in range(n)
    ]


def closed_case(
    cases: CaseRepository,
    case_id: str,
    *,
    closed_at: datetime | None,
    entries: int = 3,
    phase: str = CLOSING,
) -> None:
    cases.create_case(
        case_id=case_id,
        subject_pseudonym=f"ps-{case_id}",
        case_type="code_rood",
        phase="registration",
        registered_by="police",
        wrapped_data_key=b"\x01\x14kek_0123456789abcdef" + os.urandom(60),
        entries=entries_of(case_id, entries),
        invitees=[("zvh", "police"), ("ggz", "police")],
        now=T0 - timedelta(days=30),
    )
    if phase != "registration":
        cases.set_phase(case_id, phase, closed_at=closed_at)


def record_of(case: DueCase, at: datetime) -> AuditEvent:
    return make_event(
        kind=RecordKind.RETENTION,
        occurred_at=at,
        case_id=case.case_id,
        subject_pseudonym=case.subject_pseudonym,
        phase=case.phase,
        fields=(),
        detail=detail_of(
            closed_at=format_time(case.closed_at), entries_deleted=case.entries, retention_days=730
        ),
    )


def due_ids(shredder: CaseShredder, now: datetime = NOW) -> list[str]:
    cutoff = now - timedelta(days=730)
    return [c.case_id for c in shredder.due(closed_by=cutoff, closing_phase=CLOSING)]


def shred_all(shredder: CaseShredder, now: datetime = NOW) -> list[str]:
    cutoff = now - timedelta(days=730)
    done = []
    for case in shredder.due(closed_by=cutoff, closing_phase=CLOSING):
        if shredder.shred(case, now, record_of) is not None:
            done.append(case.case_id)
    return done


def count(engine: Engine, table: Any, case_id: str) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(table).where(table.c.case_id == case_id)
            ).scalar_one()
        )


def retention_records(engine: Engine) -> list[AuditEvent]:
    return [
        r.event for r in AuditLog(engine).list_records(kinds=[RecordKind.RETENTION], limit=1000)
    ]


def test_only_cases_closed_longer_ago_than_the_period_are_due(
    cases: CaseRepository, engine: Engine
) -> None:
    closed_at = T0 - timedelta(days=1)
    closed_case(cases, "old", closed_at=closed_at)
    closed_case(cases, "exactly", closed_at=T0)
    closed_case(cases, "recent", closed_at=T0 + timedelta(seconds=1))
    closed_case(cases, "open", closed_at=None, phase="registration")
    closed_case(cases, "reopened", closed_at=closed_at)
    cases.set_phase("reopened", "monitoring")
    shredder = CaseShredder(engine)
    listed = shredder.due(closed_by=T0, closing_phase=CLOSING)
    assert [c.case_id for c in listed] == ["old", "exactly"]
    assert listed[0] == DueCase("old", "ps-old", CLOSING, closed_at, 3)


def test_shredding_empties_the_key_deletes_entries_and_participants_and_keeps_the_row(
    cases: CaseRepository, engine: Engine
) -> None:
    closed_case(cases, "c1", closed_at=T0 - timedelta(days=1), entries=4)
    closed_case(cases, "keep", closed_at=T0 + timedelta(days=1))
    shredder = CaseShredder(engine)
    (due,) = shredder.due(closed_by=T0, closing_phase=CLOSING)
    result = shredder.shred(due, NOW, record_of)
    assert result is not None and result.case.entries == 4

    row = cases.get_case("c1")
    assert row is not None
    assert row.wrapped_data_key == b""
    assert row.shredded_at == NOW
    assert row.participants == ()
    assert (row.subject_pseudonym, row.case_type, row.phase) == ("ps-c1", "code_rood", CLOSING)
    assert count(engine, case_entries, "c1") == 0
    assert count(engine, case_participants, "c1") == 0
    # The case closed later is untouched.
    kept = cases.get_case("keep")
    assert kept is not None and kept.shredded_at is None and len(kept.wrapped_data_key) > 60
    assert count(engine, case_entries, "keep") == 3

    (record,) = retention_records(engine)
    assert record.case_id == "c1" and record.subject_pseudonym == "ps-c1"
    assert dict(record.detail) == {
        "closed_at": format_time(T0 - timedelta(days=1)),
        "entries_deleted": "4",
        "retention_days": "730",
    }
    assert result.record.seq == AuditLog(engine).head().last_seq
    assert AuditLog(engine).verify().ok


def test_a_second_run_shreds_and_records_nothing(cases: CaseRepository, engine: Engine) -> None:
    closed_case(cases, "c1", closed_at=T0)
    shredder = CaseShredder(engine)
    (due,) = shredder.due(closed_by=T0, closing_phase=CLOSING)
    assert shredder.shred(due, NOW, record_of) is not None
    # Listed before the first shredding, claimed after it: passed over, nothing written.
    assert shredder.shred(due, NOW + timedelta(hours=1), record_of) is None
    assert shred_all(shredder) == []
    assert len(retention_records(engine)) == 1
    row = cases.get_case("c1")
    assert row is not None and row.shredded_at == NOW
    assert AuditLog(engine).verify().ok


def test_an_entry_added_after_listing_is_deleted_and_counted(
    cases: CaseRepository, engine: Engine
) -> None:
    closed_case(cases, "c1", closed_at=T0, entries=2)
    shredder = CaseShredder(engine)
    (due,) = shredder.due(closed_by=T0, closing_phase=CLOSING)
    cases.add_entries("c1", entries_of("c1", 3)[2:])
    result = shredder.shred(due, NOW, record_of)
    assert result is not None and result.case.entries == 3
    assert count(engine, case_entries, "c1") == 0
    (record,) = retention_records(engine)
    assert dict(record.detail)["entries_deleted"] == "3"


def test_a_case_reopened_after_listing_is_passed_over(
    cases: CaseRepository, engine: Engine
) -> None:
    closed_case(cases, "c1", closed_at=T0)
    shredder = CaseShredder(engine)
    (due,) = shredder.due(closed_by=T0, closing_phase=CLOSING)
    cases.set_phase("c1", "monitoring", expected_phase=CLOSING)
    assert shredder.shred(due, NOW, record_of) is None
    assert count(engine, case_entries, "c1") == 3
    assert retention_records(engine) == []


def test_a_shredded_case_takes_no_more_writes(cases: CaseRepository, engine: Engine) -> None:
    closed_case(cases, "c1", closed_at=T0)
    assert shred_all(CaseShredder(engine)) == ["c1"]
    with pytest.raises(CaseShredded):
        cases.add_entries("c1", entries_of("c1", 1))
    with pytest.raises(CaseShredded):
        cases.add_participant("c1", "housing", "zvh", NOW)
    with pytest.raises(CaseShredded):
        cases.set_phase("c1", "monitoring", expected_phase=CLOSING)
    with pytest.raises(CaseNotFound):
        cases.set_phase("nope", "monitoring")
    assert count(engine, case_entries, "c1") == 0


def test_concurrent_runs_shred_each_case_once_with_one_record(db_url: str) -> None:
    """Replicas on one database: every case is shredded by exactly one of them."""
    setup = create_engine_for(db_url)
    init_schema(setup)
    repo = CaseRepository(setup)
    ids = [f"c{i:02d}" for i in range(12)]
    for case_id in ids:
        closed_case(repo, case_id, closed_at=T0 - timedelta(minutes=len(ids)), entries=2)
    setup.dispose()

    replicas = 3
    start = threading.Barrier(replicas)
    won: list[list[str]] = [[] for _ in range(replicas)]
    errors: list[BaseException] = []

    def replica(n: int) -> None:
        engine = create_engine_for(db_url)
        try:
            start.wait()
            won[n] = shred_all(CaseShredder(engine))
        except BaseException as exc:
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=replica, args=(n,)) for n in range(replicas)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    shredded = [case_id for w in won for case_id in w]
    assert sorted(shredded) == ids  # each case by exactly one replica

    engine = create_engine_for(db_url)
    try:
        records = retention_records(engine)
        assert sorted(e.case_id for e in records) == ids  # one record per case
        assert AuditLog(engine).verify().ok
        with engine.begin() as conn:
            assert conn.execute(select(func.count()).select_from(case_entries)).scalar_one() == 0
            left = conn.execute(
                select(func.count())
                .select_from(cases_table)
                .where(cases_table.c.shredded_at.is_(None))
            ).scalar_one()
        assert left == 0
    finally:
        engine.dispose()


def test_the_sqlite_files_keep_no_trace_of_a_shredded_case(tmp_path: Path) -> None:
    """After shredding, neither the database file nor its WAL holds the entries' ciphertext,
    the wrapped key or the plaintext. The engine's connections start as a SQLite build with
    secure_delete off by default would: the gateway must switch it on itself, or the copies
    page splits left while the case was written would survive its deletion."""
    path = tmp_path / "ketenpoort.db"
    engine = create_engine_for(f"sqlite:///{path}")

    @event.listens_for(engine, "connect", insert=True)
    def _build_default(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA secure_delete = OFF")

    try:
        init_schema(engine)
        repo = CaseRepository(engine)
        key = DataKey.generate()
        plaintexts: list[bytes] = []
        ciphertexts: list[bytes] = []
        wrapped = b"\x01\x14kek_0123456789abcdef" + os.urandom(60)
        # Entries of the shredded case interleaved with another case's, one write each, as a
        # case file grows: enough for the tables and indexes to split pages many times.
        for case_id in ("gone", "kept"):
            repo.create_case(
                case_id=case_id,
                subject_pseudonym=f"ps-{case_id}",
                case_type="code_rood",
                phase="registration",
                registered_by="police",
                wrapped_data_key=wrapped if case_id == "gone" else os.urandom(80),
                entries=[],
                invitees=[("zvh", "police")],
                now=T0,
            )
        for i in range(240):
            case_id = "gone" if i % 2 == 0 else "kept"
            entry_id = f"e{i:04d}"
            text = f"Note {i}: the subject was seen at the address on Lindenlaan {i}.".encode()
            token = key.encrypt(text, field_aad(case_id, entry_id, "case.notes"))
            repo.add_entries(
                case_id,
                [EntryRow(entry_id, case_id, "case.notes", token + os.urandom(200), "police", T0)],
            )
            if case_id == "gone":
                plaintexts.append(text)
                ciphertexts.append(token)
        repo.set_phase("gone", CLOSING, closed_at=T0)

        def files() -> bytes:
            wal = path.with_name(path.name + "-wal")
            return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")

        before = files()
        assert all(c[13:45] in before for c in ciphertexts)  # the check can see them

        shredder = CaseShredder(engine)
        assert shred_all(shredder) == ["gone"]
        assert shredder.clear_deleted() is True
        after = files()
        found = [c for c in ciphertexts if c[13:45] in after or c[-32:] in after]
        assert found == []
        assert wrapped[-40:] not in after
        assert not any(p in after for p in plaintexts)
        # The other case's entries are still there, readable.
        assert count(engine, case_entries, "kept") == 120
    finally:
        engine.dispose()
