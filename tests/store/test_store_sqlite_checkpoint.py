"""SQLite WAL checkpoints run beside the log writer, not inside its commits."""

from __future__ import annotations

import time
from pathlib import Path

from gateway.store import AuditLog, create_engine_for, init_schema
from gateway.store.audit_writer import ChainWriter, EncodedEvent, WriterSession
from gateway.store.sqlite_checkpoint import (
    SQLITE_DEFAULT_AUTOCHECKPOINT,
    WRITER_AUTOCHECKPOINT_BACKSTOP,
    WalCheckpointer,
    is_sqlite_file,
)
from tests.store.factories import T0, event


def test_checkpointer_copies_the_wal_into_the_database(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'log.db'}")
    try:
        init_schema(engine)
        AuditLog(engine).append_sync([event(n) for n in range(50)])
        checkpointer = WalCheckpointer(engine, interval=0.01)
        checkpointer.start()
        checkpointer.poke()
        deadline = time.monotonic() + 10
        while checkpointer.checkpoints == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        checkpointer.close()
        assert checkpointer.checkpoints >= 1 and checkpointer.failures == 0
        with engine.connect() as conn:
            busy, frames, copied = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        assert busy == 0 and frames == copied
    finally:
        engine.dispose()


def test_writer_session_defers_checkpoints_and_restores_the_connection(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'log.db'}")
    try:
        init_schema(engine)
        session = WriterSession(ChainWriter(engine), defer_checkpoints=True)
        session.write([EncodedEvent.of(event(1))], T0)
        # The driver connection under the held one, for inspection only.
        raw = session._connection.dbapi_connection
        assert raw.cursor().execute("PRAGMA wal_autocheckpoint").fetchone()[0] == (
            WRITER_AUTOCHECKPOINT_BACKSTOP
        )
        session.close()
        assert raw.cursor().execute("PRAGMA wal_autocheckpoint").fetchone()[0] == (
            SQLITE_DEFAULT_AUTOCHECKPOINT
        )
        assert AuditLog(engine).verify().ok
    finally:
        engine.dispose()


def test_only_file_databases_get_a_checkpointer(tmp_path: Path) -> None:
    file_engine = create_engine_for(f"sqlite:///{tmp_path / 'x.db'}")
    memory_engine = create_engine_for("sqlite://")
    pg_engine = create_engine_for("postgresql+psycopg://u@localhost/db")
    try:
        assert is_sqlite_file(file_engine)
        assert not is_sqlite_file(memory_engine)
        assert not is_sqlite_file(pg_engine)
    finally:
        for e in (file_engine, memory_engine, pg_engine):
            e.dispose()
