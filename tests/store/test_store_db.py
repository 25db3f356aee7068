"""Engines, schema and the package surface."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

import gateway.store as store
from gateway.store import (
    AuditLog,
    CaseRepository,
    Database,
    StoreError,
    create_engine_for,
    init_schema,
)
from tests.store.factories import T0, event


def test_sqlite_is_durable_and_strict(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "gateway.db"
    engine = create_engine_for(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
        assert pragma == {
            "journal_mode": "wal",
            "synchronous": 2,  # FULL
            "foreign_keys": 1,
            "busy_timeout": 30_000,
        }
        assert path.parent.is_dir()
    finally:
        engine.dispose()


def test_sqlite_write_transactions_take_the_lock_first(tmp_path: Path) -> None:
    from gateway.store.db import for_writing

    engine = create_engine_for(f"sqlite:///{tmp_path / 'x.db'}")
    init_schema(engine)
    try:
        holder = for_writing(engine).connect()
        holder.begin()
        holder.execute(text("SELECT 1"))
        # With the write lock held, a second immediate transaction cannot begin.
        other = create_engine_for(f"sqlite:///{tmp_path / 'x.db'}")
        try:
            with other.connect() as conn:
                conn.exec_driver_sql("PRAGMA busy_timeout = 50")
                with pytest.raises(Exception, match="locked"):
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
        finally:
            other.dispose()
        holder.rollback()
        holder.close()
    finally:
        engine.dispose()


def test_init_schema_is_idempotent_and_keeps_data(engine: Engine) -> None:
    AuditLog(engine).append_sync([event(1)])
    init_schema(engine)
    init_schema(engine)
    log = AuditLog(engine)
    assert log.count() == 1
    assert log.head().last_seq == 1
    assert log.verify().ok


def test_database_bundle(db_url: str) -> None:
    db = Database.open(db_url)
    try:
        db.audit.append_sync([event(1)])
        db.cases.create_case(
            case_id="c1",
            subject_pseudonym="ps",
            case_type="nazorg",
            phase="registration",
            registered_by="dji",
            wrapped_data_key=b"k",
            entries=[],
            invitees=[],
            now=T0,
        )
        assert db.audit.count() == 1
        assert db.cases.is_participant("c1", "dji")
    finally:
        db.close()


async def test_database_async_face(db_url: str) -> None:
    db = Database.open(db_url)
    try:
        async with db.audit:
            assert (await db.audit.append(event(1))).seq == 1
        assert await db.cases_async.get_case("missing") is None
    finally:
        db.close()


def test_in_memory_sqlite_for_tools() -> None:
    db = Database.open("sqlite://")
    try:
        db.audit.append_sync([event(n) for n in range(3)])
        assert db.audit.verify().ok
    finally:
        db.close()


@pytest.mark.parametrize(
    "url",
    ["mysql://u@h/db", "postgresql+psycopg2://u@h/db", "postgresql+asyncpg://u@h/db"],
)
def test_unsupported_urls(url: str) -> None:
    with pytest.raises(ValueError):
        create_engine_for(url)


def test_naive_times_are_refused(cases: CaseRepository) -> None:
    with pytest.raises(ValueError, match="naive"):
        cases.create_case(
            case_id="c1",
            subject_pseudonym="ps",
            case_type="nazorg",
            phase="registration",
            registered_by="dji",
            wrapped_data_key=b"k",
            entries=[],
            invitees=[],
            now=T0.replace(tzinfo=None),
        )


def test_driver_errors_become_store_errors(engine: Engine, cases: CaseRepository) -> None:
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE audit_log"))
        conn.execute(text("DROP TABLE case_entries"))
    with pytest.raises(StoreError):
        AuditLog(engine).count()
    with pytest.raises(StoreError):
        AuditLog(engine).list_records()
    with pytest.raises(StoreError):
        cases.entries("c1", "note")


def test_statement_parameters_are_hidden(engine: Engine) -> None:
    from sqlalchemy.exc import IntegrityError

    insert = text(
        "INSERT INTO cases (case_id, subject_pseudonym, case_type, phase, registered_by, "
        "created_at, closed_at, wrapped_data_key, shredded_at) "
        "VALUES ('c1', :s, 't', 'p', 'r', :t, NULL, :k, NULL)"
    )
    values = {"s": "ps-first", "t": T0.replace(tzinfo=None), "k": b"k"}
    with engine.begin() as conn:
        conn.execute(insert, values)
    with pytest.raises(IntegrityError) as err, engine.begin() as conn:
        conn.execute(insert, {**values, "s": "ps-secret"})
    assert "ps-secret" not in str(err.value)


def test_public_surface() -> None:
    assert sorted(store.__all__) == sorted(
        [
            "DEFAULT_MAX_BATCH",
            "GENESIS_HASH",
            "AsyncCaseRepository",
            "AuditLog",
            "AuditLogClosed",
            "AuditWriteError",
            "BatchStats",
            "CaseNotFound",
            "CaseRepository",
            "CaseRow",
            "CaseSnapshot",
            "CaseSnapshots",
            "ChainHead",
            "Database",
            "DuplicateCase",
            "EntryRow",
            "MalformedRecord",
            "ParticipantRole",
            "ParticipantRow",
            "PhaseConflict",
            "StoreError",
            "VerifyResult",
            "create_engine_for",
            "encode_event",
            "init_schema",
            "parse_event",
        ]
    )
    for name in store.__all__:
        assert getattr(store, name) is not None
