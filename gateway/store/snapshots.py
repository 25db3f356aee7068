"""The read every disclosure and triage starts with: a case, its participants and every entry
of its case file, as one consistent snapshot.

It runs prebuilt SQL on the driver's own connections: SQLAlchemy's per-statement and per-row
processing costs several times the read itself. Where it runs depends on the database:

- An SQLite file is read on the calling thread (the event loop), on a connection of the
  reader's own. A WAL read of a few indexed rows takes about a tenth of a millisecond and
  does not wait for the log writer; handing it to a worker thread and back costs more than
  the read. Opening the connection, and a read that SQLite reports busy, wait on a worker
  thread instead, so the event loop is never held up by a lock.
- PostgreSQL is read through psycopg's asyncio connections, kept in a small pool of the
  reader's own, with one statement: one round trip, one view of the data, and no thread.
- An in-memory SQLite database shares one connection with everything else (tests, demos);
  it is read on a worker thread.

No case data is cached: participants and phase change, and other replicas may change them,
so every read asks the database.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Engine

from gateway.store.cases import (
    REGIE_COLUMNS,
    CaseRow,
    CaseSnapshot,
    EntryRow,
    IdentifiedBy,
    ParticipantRole,
    PersonRow,
)
from gateway.store.errors import StoreError
from gateway.store.tables import case_entries, case_participants, case_persons, cases

if TYPE_CHECKING:  # psycopg is needed, and imported, only for PostgreSQL
    import psycopg

DEFAULT_PG_READ_CONNECTIONS = 4
# How long a read on the event loop may wait for SQLite's locks before it moves to a thread.
INLINE_BUSY_TIMEOUT_MS = 20

_FAILED = "case file: snapshot failed"
_Time = Callable[[Any], datetime]
_CASE_COLUMNS = (
    "case_id",
    "subject_pseudonym",
    "case_type",
    "phase",
    "registered_by",
    "created_at",
    "closed_at",
    "wrapped_data_key",
    "shredded_at",
    *REGIE_COLUMNS,
)
_ENTRY_COLUMNS = ("entry_id", "field", "ciphertext", "created_by", "created_at", "person_id")
_PERSON_COLUMNS = (
    "person_id",
    "role_in_case",
    "pseudonym",
    "bsn_pseudonym",
    "identified_by",
    "added_by",
    "added_at",
    "removed_by",
    "removed_at",
)
_REGISTRANT = ParticipantRole.REGISTRANT.value

# One statement, so one read transaction: the case row, then its participants, then its
# entries, then its persons, told apart by the first column. Without ORDER BY SQLite reads
# each part straight from its index; the few rows are put in order afterwards, which costs
# less than a sort.
_PAD = ", NULL" * (len(_CASE_COLUMNS) - 3)
_SQLITE_SNAPSHOT = (
    f"SELECT 0, {', '.join(_CASE_COLUMNS)} FROM {cases.name} WHERE case_id = ?1 "
    f"UNION ALL SELECT 1, partner_id, role_in_case, joined_at{_PAD} "
    f"FROM {case_participants.name} WHERE case_id = ?1 "
    f"UNION ALL SELECT 2, {', '.join(_ENTRY_COLUMNS)}"
    f"{', NULL' * (len(_CASE_COLUMNS) - len(_ENTRY_COLUMNS))} "
    f"FROM {case_entries.name} WHERE case_id = ?1 "
    f"UNION ALL SELECT 3, {', '.join(_PERSON_COLUMNS)}"
    f"{', NULL' * (len(_CASE_COLUMNS) - len(_PERSON_COLUMNS))} "
    f"FROM {case_persons.name} WHERE case_id = ?1"
)
# One statement, so one round trip and one view: the case with its participants and its
# persons (as JSON: a handful of rows of several columns), joined to its entries (one row per
# entry, or one row of NULL entry columns when it has none).
_PG_SNAPSHOT = (
    "SELECT "
    + ", ".join(f"c.{name}" for name in _CASE_COLUMNS)
    + f", ARRAY(SELECT p.partner_id FROM {case_participants.name} p "
    f"WHERE p.case_id = c.case_id "
    f"ORDER BY p.role_in_case <> '{_REGISTRANT}', p.joined_at, p.partner_id), "
    f"(SELECT json_agg(json_build_array("
    + ", ".join(f"q.{name}" for name in _PERSON_COLUMNS)
    + f") ORDER BY q.added_at, q.person_id) FROM {case_persons.name} q "
    "WHERE q.case_id = c.case_id), "
    + ", ".join(f"e.{name}" for name in _ENTRY_COLUMNS)
    + f" FROM {cases.name} c LEFT JOIN {case_entries.name} e ON e.case_id = c.case_id "
    "WHERE c.case_id = %s ORDER BY e.created_at, e.entry_id"
)


class CaseSnapshots:
    """Reads case snapshots from the engine's database; ``close`` releases its connections."""

    def __init__(
        self, engine: Engine, *, pg_connections: int = DEFAULT_PG_READ_CONNECTIONS
    ) -> None:
        self._reader: _Reader
        if engine.dialect.name == "postgresql":
            self._reader = _PostgresReader(engine, pg_connections)
        elif _is_memory(engine):
            self._reader = _PooledSqliteReader(engine)
        else:
            self._reader = _InlineSqliteReader(engine)

    async def read(self, case_id: str) -> CaseSnapshot | None:
        """The case and its entries (oldest first), or ``None`` if there is no such case."""
        return await self._reader.read(case_id)

    async def close(self) -> None:
        await self._reader.close()


class _Reader(Protocol):
    async def read(self, case_id: str) -> CaseSnapshot | None: ...

    async def close(self) -> None: ...


class _PooledSqliteReader:
    """Reads on a worker thread, on a connection from the engine's pool."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def read(self, case_id: str) -> CaseSnapshot | None:
        return await asyncio.to_thread(self.read_blocking, case_id)

    def read_blocking(self, case_id: str) -> CaseSnapshot | None:
        try:
            pooled = self._engine.raw_connection()
        except Exception as exc:
            raise StoreError(_FAILED) from exc
        try:
            return _sqlite_read(_driver(pooled), case_id)
        except sqlite3.Error as exc:
            pooled.invalidate()
            raise StoreError(_FAILED) from exc
        finally:
            pooled.close()

    async def close(self) -> None:
        return None


class _InlineSqliteReader:
    """Reads on the calling thread, on a connection per thread that is never shared."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._fallback = _PooledSqliteReader(engine)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[Any] = []

    async def read(self, case_id: str) -> CaseSnapshot | None:
        pooled = getattr(self._local, "pooled", None)
        if pooled is None:
            pooled = await self._connect()
        try:
            return _sqlite_read(_driver(pooled), case_id)
        except sqlite3.OperationalError as exc:
            self._discard(pooled)
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                raise StoreError(_FAILED) from exc
        except sqlite3.Error as exc:
            self._discard(pooled)
            raise StoreError(_FAILED) from exc
        # Busy: wait for the lock where waiting blocks nobody else.
        return await self._fallback.read(case_id)

    async def close(self) -> None:
        with self._lock:
            connections, self._open = self._open, []
        for pooled in connections:
            pooled.invalidate()

    async def _connect(self) -> Any:
        # A checkout can wait for the pool, and opening a connection for SQLite's locks:
        # neither happens on the calling thread.
        pooled = await asyncio.to_thread(self._checkout)
        already = getattr(self._local, "pooled", None)
        if already is not None:
            # Another read on this thread connected while this one waited.
            pooled.invalidate()
            return already
        self._local.pooled = pooled
        with self._lock:
            self._open.append(pooled)
        return pooled

    def _checkout(self) -> Any:
        try:
            pooled = self._engine.raw_connection()
        except Exception as exc:
            raise StoreError(_FAILED) from exc
        try:
            cursor = _driver(pooled).cursor()
            try:
                cursor.execute(f"PRAGMA busy_timeout = {INLINE_BUSY_TIMEOUT_MS}")
            finally:
                cursor.close()
        except Exception as exc:
            pooled.invalidate()
            raise StoreError(_FAILED) from exc
        return pooled

    def _discard(self, pooled: Any) -> None:
        """Drop a connection after an error; the next read on this thread opens a new one."""
        if getattr(self._local, "pooled", None) is pooled:
            self._local.pooled = None
        with self._lock:
            if pooled in self._open:
                self._open.remove(pooled)
        # Invalidated rather than returned: the pool must not hand out the short busy timeout.
        pooled.invalidate()


class _PostgresReader:
    """A few asyncio connections in autocommit mode, opened when first needed."""

    def __init__(self, engine: Engine, size: int) -> None:
        if size < 1:
            raise ValueError("pg_connections must be at least 1")
        import psycopg

        self._psycopg = psycopg
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        # SQLAlchemy's own type adaptations are not wanted on these connections.
        kwargs.pop("context", None)
        self._args: Sequence[Any] = args
        self._kwargs: dict[str, Any] = dict(kwargs)
        self._slots = asyncio.Semaphore(size)
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._closed = False

    async def read(self, case_id: str) -> CaseSnapshot | None:
        async with self._slots:
            rows = await self._query(case_id)
        return _pg_snapshot(rows)

    async def close(self) -> None:
        self._closed = True
        await self._drop_idle()

    async def _query(self, case_id: str) -> list[tuple[Any, ...]]:
        for attempt in (1, 2):
            if self._closed:
                raise StoreError("case file: snapshot reader is closed")
            reused = bool(self._idle)
            connection = self._idle.pop() if reused else await self._connect()
            try:
                cursor = await connection.execute(_PG_SNAPSHOT, (case_id,))
                rows = await cursor.fetchall()
            except self._psycopg.OperationalError as exc:
                await connection.close()
                # An idle connection the server dropped: nothing was read, so read again. The
                # other idle ones were most likely cut with it (a restart, a failover, an
                # operator ending sessions), so they go too and the read opens a fresh one.
                if reused and attempt == 1:
                    await self._drop_idle()
                    continue
                raise StoreError(_FAILED) from exc
            except self._psycopg.Error as exc:
                await connection.close()
                raise StoreError(_FAILED) from exc
            except BaseException:
                # Cancelled mid-query: the connection's state is unknown.
                await connection.close()
                raise
            if self._closed:
                await connection.close()
            else:
                self._idle.append(connection)
            return rows
        raise AssertionError("unreachable")

    async def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        try:
            connection: psycopg.AsyncConnection[Any] = await self._psycopg.AsyncConnection.connect(
                *self._args, autocommit=True, **self._kwargs
            )
            return connection
        except self._psycopg.Error as exc:
            raise StoreError(_FAILED) from exc


def _driver(pooled: Any) -> sqlite3.Connection:
    connection = pooled.driver_connection
    if not isinstance(connection, sqlite3.Connection):
        raise StoreError(_FAILED)
    return connection


def _is_memory(engine: Engine) -> bool:
    database = engine.url.database
    return database in (None, "", ":memory:") or str(database).startswith("file::memory:")


def _sqlite_read(connection: sqlite3.Connection, case_id: str) -> CaseSnapshot | None:
    rows = connection.execute(_SQLITE_SNAPSHOT, (case_id,)).fetchall()
    case = next((r for r in rows if r[0] == 0), None)
    if case is None:
        return None
    # Registrant first, then invitees in the order they joined.
    partners = sorted(
        (r for r in rows if r[0] == 1),
        key=lambda r: (r[2] != _REGISTRANT, _sqlite_time(r[3]), r[1]),
    )
    entries = sorted(
        (_entry_row(case_id, r[1:], _sqlite_time) for r in rows if r[0] == 2),
        key=lambda e: (e.created_at, e.entry_id),
    )
    persons = sorted(
        (_person_row(case_id, r[1:], _sqlite_time) for r in rows if r[0] == 3),
        key=lambda p: (p.added_at, p.person_id),
    )
    return CaseSnapshot(
        _case_row(case[1:], tuple(p[1] for p in partners), _sqlite_time),
        tuple(entries),
        tuple(persons),
    )


def _pg_snapshot(rows: list[tuple[Any, ...]]) -> CaseSnapshot | None:
    if not rows:
        return None
    first = rows[0]
    n = len(_CASE_COLUMNS)
    case = _case_row(first[:n], tuple(first[n]), _pg_time)
    persons = tuple(_person_row(case.case_id, p, _json_time) for p in first[n + 1] or ())
    entries = tuple(
        _entry_row(case.case_id, r[n + 2 :], _pg_time) for r in rows if r[n + 2] is not None
    )
    return CaseSnapshot(case, entries, persons)


def _case_row(row: Sequence[Any], participants: tuple[str, ...], time: _Time) -> CaseRow:
    closed_at, shredded_at = row[6], row[8]
    return CaseRow(
        case_id=row[0],
        subject_pseudonym=row[1],
        case_type=row[2],
        phase=row[3],
        registered_by=row[4],
        created_at=time(row[5]),
        closed_at=None if closed_at is None else time(closed_at),
        wrapped_data_key=bytes(row[7]),
        participants=participants,
        shredded_at=None if shredded_at is None else time(shredded_at),
        **dict(zip(REGIE_COLUMNS, row[9 : 9 + len(REGIE_COLUMNS)], strict=True)),
    )


def _entry_row(case_id: str, row: Sequence[Any], time: _Time) -> EntryRow:
    return EntryRow(
        entry_id=row[0],
        case_id=case_id,
        field=row[1],
        ciphertext=bytes(row[2]),
        created_by=row[3],
        created_at=time(row[4]),
        person_id=row[5] or "",
    )


def _person_row(case_id: str, row: Sequence[Any], time: _Time) -> PersonRow:
    removed_at = row[8]
    return PersonRow(
        case_id=case_id,
        person_id=row[0],
        role_in_case=row[1],
        pseudonym=row[2],
        bsn_pseudonym=row[3],
        identified_by=IdentifiedBy(row[4]),
        added_by=row[5],
        added_at=time(row[6]),
        removed_by=row[7],
        removed_at=None if removed_at is None else time(removed_at),
    )


@functools.lru_cache(maxsize=4096)
def _sqlite_time(value: str) -> datetime:
    # The case file stores naive UTC text on SQLite (see tables.UTCDateTime). The entries of
    # a case mostly share a few moments, so each distinct text is parsed once.
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _pg_time(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _json_time(value: str) -> datetime:
    # json_build_array writes a timestamptz as ISO 8601 text with its offset.
    return datetime.fromisoformat(value).astimezone(UTC)
