"""Fresh, empty databases for the log benchmarks, one per measured point.

SQLite: a new file in the run's temporary directory, opened by the gateway's own engine
(WAL, ``synchronous=FULL``). PostgreSQL: a new schema in a database of the benchmark's own
(``ketenpoort_bench`` on the server of ``--pg-url``, created when missing), dropped again
afterwards, so that runs neither accumulate rows nor touch the tables of other databases.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import Engine
from sqlalchemy.engine import URL, make_url

from gateway.store import create_engine_for, init_schema

BENCH_DATABASE = "ketenpoort_bench"
CONNECT_TIMEOUT_S = 3


def _libpq(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def postgres_problem(pg_url: str) -> str | None:
    """Why the PostgreSQL server cannot be used, or None."""
    url = make_url(pg_url)
    if url.get_backend_name() != "postgresql" or url.get_driver_name() != "psycopg":
        return "--pg-url must be a postgresql+psycopg:// URL"
    try:
        with psycopg.connect(_libpq(url), connect_timeout=CONNECT_TIMEOUT_S) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return None


def bench_database_url(pg_url: str) -> URL:
    """The benchmark's own database on the server of ``pg_url``, created when missing."""
    url = make_url(pg_url)
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        found = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (BENCH_DATABASE,)
        ).fetchone()
        if found is None:
            try:
                conn.execute(f"CREATE DATABASE {BENCH_DATABASE}")
            except psycopg.errors.DuplicateDatabase:
                pass  # another run created it meanwhile
    return url.set(database=BENCH_DATABASE)


@contextmanager
def fresh_engine(kind: str, work: Path, pg_url: URL | None) -> Iterator[Engine]:
    """An engine on an empty database with the gateway's schema, removed on exit."""
    if kind == "sqlite":
        path = work / f"log-{secrets.token_hex(4)}.db"
        engine = create_engine_for(f"sqlite:///{path}")
        try:
            init_schema(engine)
            yield engine
        finally:
            engine.dispose()
            for suffix in ("", "-wal", "-shm"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)
        return
    assert pg_url is not None
    schema = f"b_{secrets.token_hex(6)}"
    admin = _libpq(pg_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        options = pg_url.query.get("options", "")
        scoped = pg_url.update_query_dict({"options": f"{options} -csearch_path={schema}".strip()})
        engine = create_engine_for(scoped.render_as_string(hide_password=False))
        try:
            init_schema(engine)
            yield engine
        finally:
            engine.dispose()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '10s'")
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
