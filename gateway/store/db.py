"""Engines and schema for SQLite (default) and PostgreSQL (production).

SQLite is opened in WAL mode with ``synchronous=FULL`` so that a commit survives power loss,
and SQLAlchemy, not the ``sqlite3`` module, decides when a transaction begins: a write
transaction takes the database write lock up front (``BEGIN IMMEDIATE``) instead of upgrading
a read lock halfway, which in WAL mode fails at once instead of waiting.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from gateway.store import migrations
from gateway.store.audit_event import GENESIS_HASH
from gateway.store.errors import StoreError

# Re-exported: callers catch these from here, as they did SchemaMismatch before migrations.
from gateway.store.migrations import SchemaAhead as SchemaAhead
from gateway.store.migrations import SchemaBehind as SchemaBehind
from gateway.store.migrations import SchemaMismatch as SchemaMismatch
from gateway.store.tables import log_head, metadata, schema_info

DEFAULT_SQLITE_BUSY_TIMEOUT_MS = 30_000

# Execution option read by the SQLite "begin" hook; PostgreSQL ignores it.
_WRITE_OPTION = "ketenpoort_write"
# Serialises concurrent schema creation and upgrades by replicas on one PostgreSQL database.
_SCHEMA_LOCK_KEY = 0x6B6574656E  # "keten"


_P = ParamSpec("_P")
_R = TypeVar("_R")


def translate_errors(what: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Turn SQLAlchemy and driver errors escaping the wrapped call into ``StoreError``."""

    def decorate(function: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(function)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return function(*args, **kwargs)
            except SQLAlchemyError as exc:
                raise StoreError(f"{what} failed") from exc

        return wrapper

    return decorate


def create_engine_for(url: str, *, echo: bool = False) -> Engine:
    """Create an engine for a ``sqlite:///path`` or ``postgresql+psycopg://`` URL.

    Statement parameters are never rendered into errors or logs (``hide_parameters``): they
    can hold pseudonyms and ciphertext.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, parsed.database, echo=echo)
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            raise ValueError("PostgreSQL URLs must use the psycopg 3 driver: postgresql+psycopg://")
        return create_engine(url, echo=echo, hide_parameters=True, pool_pre_ping=True)
    raise ValueError(f"unsupported database backend {backend!r}; use sqlite or postgresql")


def _sqlite_engine(url: str, database: str | None, *, echo: bool) -> Engine:
    in_memory = database in (None, "", ":memory:") or str(database).startswith("file::memory:")
    kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
    if in_memory:
        # One shared connection, or every checkout would see its own empty database.
        kwargs["poolclass"] = StaticPool
        kwargs["connect_args"] = {"check_same_thread": False}
    else:
        Path(str(database)).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Leave transaction control to the "begin" hook below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {DEFAULT_SQLITE_BUSY_TIMEOUT_MS}")
            if not in_memory:
                _enable_wal(cursor)
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
            # Zero deleted content and freed pages, on every connection: shredding a case
            # then leaves no ciphertext in the file, not even copies that page splits left
            # behind when the entries were written. Inserts cost the same (measured; Debian's
            # SQLite even has it on by default); see gateway.store.retention.
            cursor.execute("PRAGMA secure_delete = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(_WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


def _enable_wal(cursor: Any) -> None:
    """Switch the database file to WAL mode once; the mode then persists in the file.

    Changing the journal mode needs the database to itself and, unlike other statements,
    fails at once instead of waiting when it does not have it: several processes opening a
    new database together retry here until the first one has switched it.
    """
    deadline = time.monotonic() + DEFAULT_SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
            return
        try:
            if str(cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower() == "wal":
                return
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise StoreError("SQLite database could not be switched to WAL mode")
        time.sleep(0.01)


def for_writing(engine: Engine) -> Engine:
    """The same engine (same pool) whose transactions take the write lock when they begin."""
    return engine.execution_options(**{_WRITE_OPTION: True})


@translate_errors("creating the schema")
def init_schema(engine: Engine) -> None:
    """Create the schema on an empty database, else check that it is at this code's revision.

    Safe to call on every start and from several replicas at once. A database at an older
    revision raises ``SchemaBehind``, one at a revision this code does not know (a newer
    release upgraded it) ``SchemaAhead``; each says in one line what to do. Neither is
    upgraded here: that is ``upgrade_schema`` (``ketenpoort db upgrade``), run once, after a
    backup, before the new version starts.
    """
    with for_writing(engine).begin() as conn:
        _lock_schema(conn)
        status = migrations.schema_status(conn)
        if status.empty:
            _create(conn)
            return
        migrations.check(status)


@dataclass(frozen=True)
class SchemaUpgrade:
    """What ``upgrade_schema`` did."""

    # None: the database was empty and was created at to_revision.
    from_revision: str | None
    to_revision: str
    # The revisions run, oldest first (empty when created or already current).
    ran: tuple[str, ...]
    # The database was made by release v0.1.0 and stamped at the baseline first.
    was_legacy: bool = False


@translate_errors("upgrading the schema")
def upgrade_schema(engine: Engine, target: str | None = None) -> SchemaUpgrade:
    """Bring the database to this code's head revision (or ``target``), in one transaction.

    An empty database is created at the head as ``init_schema`` does; with ``target`` it is
    built by running the revisions instead. A v0.1.0 database is stamped at the baseline
    revision first. On SQLite, foreign keys are off while revisions run (a batch-mode table
    copy drops the old table, which would otherwise cascade) and are checked before commit.
    """
    with engine.connect() as conn:
        sqlite_db = engine.dialect.name == "sqlite"
        if sqlite_db:
            _sqlite_foreign_keys(conn, on=False)
        try:
            with conn.execution_options(**{_WRITE_OPTION: True}).begin():
                _lock_schema(conn)
                done = _upgrade(conn, target)
                if sqlite_db and conn.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise StoreError("the upgrade left rows whose parent row is missing")
            return done
        finally:
            if sqlite_db and not conn.closed:
                _sqlite_foreign_keys(conn, on=True)


def _upgrade(conn: Connection, target: str | None) -> SchemaUpgrade:
    status = migrations.schema_status(conn)
    if status.unknown:
        raise migrations.SchemaAhead(migrations.refusal(status))
    if status.empty and target is None:
        _create(conn)
        return SchemaUpgrade(None, status.head, ())
    if status.legacy:
        migrations.stamp(conn, migrations.BASELINE_REVISION)
    migrations.upgrade(conn, target or "heads")
    after = migrations.schema_status(conn)
    ran = tuple(r for r in status.pending if r not in after.pending)
    return SchemaUpgrade(status.current, after.current or "", ran, was_legacy=status.legacy)


@translate_errors("reading the schema revision")
def schema_status(engine: Engine) -> migrations.SchemaStatus:
    """The database's revision and the revisions this code would still run on it."""
    with engine.connect() as conn:
        return migrations.schema_status(conn)


def _sqlite_foreign_keys(conn: Connection, *, on: bool) -> None:
    # A PRAGMA that does nothing inside a transaction: run it on the driver connection,
    # which is in autocommit mode between our transactions (see _on_connect).
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    dbapi.execute(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")


def _lock_schema(conn: Connection) -> None:
    """Serialise schema creation and upgrades by several replicas on one PostgreSQL database
    (on SQLite the write transaction already holds the database's write lock)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})


def _create(conn: Connection) -> None:
    """A new database: the tables as they are now, stamped at the head revision.

    Faster than running every revision, and the same schema: the migration tests check that
    the revisions arrive at exactly these tables.
    """
    # Without a has-table query per table when there is none yet (the usual case, and the
    # one every test pays for); a database left half-made by an interrupted start gets the rest.
    metadata.create_all(conn, checkfirst=bool(inspect(conn).get_table_names()))
    head_row = {"id": 1, "last_seq": 0, "last_hash": GENESIS_HASH}
    version_row = {"id": 1, "version": migrations.MIGRATED_SCHEMA_VERSION}
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(log_head).values(head_row).on_conflict_do_nothing())
    conn.execute(dialect.insert(schema_info).values(version_row).on_conflict_do_nothing())
    migrations.stamp(conn, migrations.head_revision())
    if conn.dialect.name == "postgresql":
        _prefer_lz4_bodies(conn)


def _prefer_lz4_bodies(conn: Connection) -> None:
    """Compress log bodies with lz4 where the server has it (PostgreSQL 14+ built with lz4).

    Bodies are compressed either way once a row outgrows a page quarter; lz4 does it at a
    fraction of the default pglz cost on the append path, at about the same size.
    """
    savepoint = conn.begin_nested()
    try:
        conn.execute(text("ALTER TABLE audit_log ALTER COLUMN body SET COMPRESSION lz4"))
    except SQLAlchemyError:
        savepoint.rollback()
    else:
        savepoint.commit()

