"""Which storage errors are the database being briefly away (UNAVAILABLE at the edge) and
which are faults (INTERNAL): real driver errors from real SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from gateway.store.db import create_engine_for
from gateway.store.errors import AuditWriteError, StoreError, database_unavailable
from tests.conftest import pg_server_url


def _error_of(action: object) -> BaseException:
    assert callable(action)
    try:
        action()
    except BaseException as exc:  # noqa: BLE001 - the error is what is looked at
        return exc
    raise AssertionError("no error")


def test_a_full_sqlite_database_is_away_but_a_bad_query_is_not(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "small.db")
    conn.execute("CREATE TABLE t (x BLOB)")
    conn.execute("PRAGMA max_page_count = 3")
    full = _error_of(lambda: conn.execute("INSERT INTO t VALUES (zeroblob(100000))"))
    assert "full" in str(full)
    assert database_unavailable(full)
    # Wrapped the way the log writer wraps it, it still is.
    wrapped = AuditWriteError("batch of 1 records not committed")
    wrapped.__cause__ = full
    assert not database_unavailable(StoreError("listing accountability records failed"))
    assert database_unavailable(wrapped)
    assert not database_unavailable(_error_of(lambda: conn.execute("SELECT * FROM nothing")))
    assert not database_unavailable(ValueError("a bug"))


def test_a_postgresql_connection_that_was_cut_is_away_a_bad_query_is_not() -> None:
    url = pg_server_url().render_as_string(hide_password=False)
    try:
        engine = create_engine_for(url)
        with engine.connect() as probe:
            probe.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"PostgreSQL not reachable: {type(exc).__name__}")
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        cut = _error_of(lambda: conn.execute(text("SELECT 1")))
    assert database_unavailable(cut)
    with engine.connect() as conn:
        assert not database_unavailable(_error_of(lambda: conn.execute(text("SELEC 1"))))
    engine.dispose()
