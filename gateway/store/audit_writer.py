"""The blocking half of the accountability log: one batch, one transaction, one chain step.

A batch locks the chain head row, reads the last seq and hash, inserts its records with
consecutive seqs and moves the head, all in one transaction. On PostgreSQL the lock is
``SELECT ... FOR UPDATE``; on SQLite the transaction takes the database write lock when it
begins (``BEGIN IMMEDIATE``). Either way, concurrent writers in several processes queue on
the head, so the chain can neither fork nor skip.

The statements run on the raw driver connection, and a whole batch is inserted by a single
statement: SQLAlchemy's per-row processing would cost more than the insert itself, and the
driver releases the GIL around every statement, so a statement per row would let the event
loop thread in between rows and stall the commit its callers wait for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from typing import Any

from sqlalchemy import Engine

from gateway.store.audit_event import AuditEvent, chain_hash, encode_event_with_time
from gateway.store.errors import AuditWriteError
from gateway.store.sqlite_checkpoint import (
    SQLITE_DEFAULT_AUTOCHECKPOINT,
    WRITER_AUTOCHECKPOINT_BACKSTOP,
    set_autocheckpoint,
)
from gateway.store.tables import AUDIT_INSERT_COLUMNS, audit_log, log_head

_COLUMNS = ", ".join(AUDIT_INSERT_COLUMNS)
# PostgreSQL types of AUDIT_INSERT_COLUMNS, for the array form of the insert.
_PG_ARRAY_TYPES = ("bigint", "timestamptz", "timestamptz") + ("text",) * 6 + ("boolean",) + (
    "text",
) * 3


@dataclass(frozen=True, slots=True)
class LogRecord:
    seq: int
    event: AuditEvent
    prev_hash: str
    record_hash: str
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class EncodedEvent:
    """An event with its canonical body, made once, by the appending caller.

    Encoding to UTF-8 happens here too, so an event that cannot be encoded (a lone
    surrogate) fails its own append instead of the batch it would have joined.
    """

    event: AuditEvent
    body: str
    body_utf8: bytes
    occurred_text: str

    @classmethod
    def of(cls, event: AuditEvent) -> EncodedEvent:
        body, occurred_text = encode_event_with_time(event)
        return cls(event, body, body.encode("utf-8"), occurred_text)


class ChainWriter:
    """Appends batches to the chain; safe to use from several threads at once."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        if self._sqlite:
            self._begin_sql: str | None = "BEGIN IMMEDIATE"
            self._head_sql = f"SELECT last_seq, last_hash FROM {log_head.name} WHERE id = 1"
            self._update_sql = (
                f"UPDATE {log_head.name} SET last_seq = ?, last_hash = ? WHERE id = 1"
            )
            row_marks = f"({', '.join(['?'] * len(AUDIT_INSERT_COLUMNS))})"
            self._sqlite_rows = f"INSERT INTO {audit_log.name} ({_COLUMNS}) VALUES ", row_marks
            self._sqlite_statements: dict[int, str] = {}
        else:
            self._begin_sql = None
            self._head_sql = (
                f"SELECT last_seq, last_hash FROM {log_head.name} WHERE id = 1 FOR UPDATE"
            )
            # One array per column, sent in binary: one short statement for any batch size,
            # which the driver parses once and the server plans once.
            arrays = ", ".join(f"%b::{kind}[]" for kind in _PG_ARRAY_TYPES)
            # The head moves in the same statement: one round trip fewer per batch.
            self._pg_insert = (
                f"WITH inserted AS (INSERT INTO {audit_log.name} ({_COLUMNS}) "
                f"SELECT * FROM unnest({arrays})) "
                f"UPDATE {log_head.name} SET last_seq = %b, last_hash = %b WHERE id = 1"
            )

    def write(self, items: Sequence[EncodedEvent], recorded_at: datetime) -> list[LogRecord]:
        """Commit ``items`` as the next records of the chain, or raise ``AuditWriteError``."""
        session = WriterSession(self)
        try:
            return session.write(items, recorded_at)
        finally:
            session.close()

    def write_batch(
        self, connection: Any, items: Sequence[EncodedEvent], recorded_at: datetime
    ) -> list[LogRecord]:
        """Run a batch's statements on a raw driver connection; the caller commits."""
        cursor = connection.cursor()
        try:
            if self._begin_sql is not None:
                cursor.execute(self._begin_sql)
            cursor.execute(self._head_sql)
            head = cursor.fetchone()
            if head is None:
                raise LookupError("chain head row is missing; run init_schema")
            rows, records = self._chain(items, int(head[0]), str(head[1]), recorded_at)
            self._insert(cursor, rows, records[-1])
        finally:
            cursor.close()
        return records

    def _chain(
        self, items: Sequence[EncodedEvent], seq: int, prev_hex: str, recorded_at: datetime
    ) -> tuple[list[tuple[Any, ...]], list[LogRecord]]:
        sqlite = self._sqlite
        # The text form SQLAlchemy's SQLite DateTime type stores and reads back (naive UTC).
        recorded: Any = recorded_at.isoformat(" ", "microseconds")[:26] if sqlite else recorded_at
        prev = bytes.fromhex(prev_hex)
        rows: list[tuple[Any, ...]] = []
        records: list[LogRecord] = []
        for item in items:
            event = item.event
            seq += 1
            digest = chain_hash(seq, prev, item.body_utf8)
            record_hex = digest.hex()
            if sqlite:
                when = item.occurred_text
                occurred: Any = f"{when[:10]} {when[11:26]}"
            else:
                occurred = event.occurred_at
            rows.append(
                (
                    seq,
                    recorded,
                    occurred,
                    event.kind.value,
                    event.partner_id,
                    event.case_id,
                    event.subject_pseudonym,
                    event.purpose,
                    str(event.status),
                    event.break_glass,
                    item.body,
                    prev_hex,
                    record_hex,
                )
            )
            records.append(LogRecord(seq, event, prev_hex, record_hex, recorded_at))
            prev, prev_hex = digest, record_hex
        return rows, records

    def _insert(self, cursor: Any, rows: list[tuple[Any, ...]], last: LogRecord) -> None:
        if self._sqlite:
            statement = self._sqlite_statements.get(len(rows))
            if statement is None:
                head, marks = self._sqlite_rows
                statement = head + ", ".join([marks] * len(rows))
                self._sqlite_statements[len(rows)] = statement
            cursor.execute(statement, list(chain.from_iterable(rows)))
            cursor.execute(self._update_sql, (last.seq, last.record_hash))
        else:
            columns = [list(column) for column in zip(*rows, strict=True)]
            cursor.execute(self._pg_insert, [*columns, last.seq, last.record_hash])


class WriterSession:
    """A connection kept across batches by one writer thread.

    Keeping it saves the pool checkout and liveness ping on every batch. A batch that fails
    before its commit was sent is retried once on a fresh connection: nothing of it was
    committed, and a connection the server dropped while idle is the usual cause. A failure
    at or after the commit is reported, never retried, because the batch may have landed.
    """

    def __init__(self, writer: ChainWriter, *, defer_checkpoints: bool = False) -> None:
        self._writer = writer
        self._connection: Any = None
        # Set when a WalCheckpointer runs beside this session (SQLite only).
        self._defer_checkpoints = defer_checkpoints

    def write(self, items: Sequence[EncodedEvent], recorded_at: datetime) -> list[LogRecord]:
        if not items:
            return []
        recorded_at = recorded_at.astimezone(UTC)
        for attempt in (1, 2):
            try:
                connection = self._connect()
                records = self._writer.write_batch(connection, items, recorded_at)
            except Exception as exc:
                self._discard()
                if attempt == 2:
                    raise AuditWriteError(f"batch of {len(items)} records not committed") from exc
                continue
            try:
                connection.commit()
            except Exception as exc:
                self._discard()
                raise AuditWriteError(
                    f"commit of a batch of {len(items)} records not confirmed"
                ) from exc
            return records
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                if self._defer_checkpoints:
                    set_autocheckpoint(connection, SQLITE_DEFAULT_AUTOCHECKPOINT)
            finally:
                connection.close()

    def _connect(self) -> Any:
        if self._connection is None:
            connection = self._writer.engine.raw_connection()
            if self._defer_checkpoints:
                try:
                    set_autocheckpoint(connection, WRITER_AUTOCHECKPOINT_BACKSTOP)
                except Exception:
                    connection.close()
                    raise
            self._connection = connection
        return self._connection

    def _discard(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.rollback()
            if self._defer_checkpoints:
                set_autocheckpoint(connection, SQLITE_DEFAULT_AUTOCHECKPOINT)
        except Exception:
            # A connection that cannot even roll back is not handed out again.
            connection.invalidate()
        connection.close()
