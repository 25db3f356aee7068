"""The blocking half of the accountability log: one batch, one transaction, one chain step.

A batch locks the chain head row, reads the last seq and hash, inserts its records with
consecutive seqs and moves the head, all in one transaction. On PostgreSQL the lock is
``SELECT ... FOR UPDATE``; on SQLite the transaction takes the database write lock when it
begins (``BEGIN IMMEDIATE``). Either way, concurrent writers in several processes queue on
the head, so the chain can neither fork nor skip.

The statements run on the raw driver connection: at thousands of records a second,
SQLAlchemy's per-statement and per-row processing would cost more than the insert itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from gateway.store.audit_event import AuditEvent, chain_hash
from gateway.store.errors import AuditWriteError
from gateway.store.tables import AUDIT_INSERT_COLUMNS, audit_log, log_head


@dataclass(frozen=True, slots=True)
class LogRecord:
    seq: int
    event: AuditEvent
    prev_hash: str
    record_hash: str
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class EncodedEvent:
    """An event with its canonical body and ``occurred_at`` text, made once by the caller."""

    event: AuditEvent
    body: str
    occurred_text: str


class ChainWriter:
    """Appends batches to the chain; safe to use from several threads at once."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._begin_sql = "BEGIN IMMEDIATE" if self._sqlite else None
        self._head_sql = f"SELECT last_seq, last_hash FROM {log_head.name} WHERE id = 1" + (
            "" if self._sqlite else " FOR UPDATE"
        )
        self._insert_sql = (
            f"INSERT INTO {audit_log.name} ({', '.join(AUDIT_INSERT_COLUMNS)}) "
            f"VALUES ({', '.join([mark] * len(AUDIT_INSERT_COLUMNS))})"
        )
        self._update_sql = (
            f"UPDATE {log_head.name} SET last_seq = {mark}, last_hash = {mark} WHERE id = 1"
        )

    def write(self, items: Sequence[EncodedEvent], recorded_at: datetime) -> list[LogRecord]:
        """Commit ``items`` as the next records of the chain, or raise ``AuditWriteError``."""
        if not items:
            return []
        try:
            connection = self._engine.raw_connection()
        except Exception as exc:
            raise AuditWriteError(f"batch of {len(items)} records not committed") from exc
        try:
            records = self._write(connection, items, recorded_at)
        except Exception as exc:
            _roll_back(connection)
            raise AuditWriteError(f"batch of {len(items)} records not committed") from exc
        finally:
            connection.close()
        return records

    def _write(
        self, connection: Any, items: Sequence[EncodedEvent], recorded_at: datetime
    ) -> list[LogRecord]:
        cursor = connection.cursor()
        try:
            if self._begin_sql is not None:
                cursor.execute(self._begin_sql)
            cursor.execute(self._head_sql)
            head = cursor.fetchone()
            if head is None:
                raise AuditWriteError("chain head row is missing; run init_schema")
            seq = int(head[0])
            prev_hex = str(head[1])
            prev = bytes.fromhex(prev_hex)
            recorded_at = recorded_at.astimezone(UTC)
            if self._sqlite:
                # The text form SQLAlchemy's SQLite DateTime type stores and reads (naive UTC).
                recorded_column: Any = recorded_at.isoformat(" ", "microseconds")[:26]
            else:
                recorded_column = recorded_at
            rows: list[tuple[Any, ...]] = []
            records: list[LogRecord] = []
            for item in items:
                event = item.event
                seq += 1
                digest = chain_hash(seq, prev, item.body.encode("utf-8"))
                record_hex = digest.hex()
                if self._sqlite:
                    text = item.occurred_text
                    occurred: Any = f"{text[:10]} {text[11:26]}"
                else:
                    occurred = event.occurred_at
                rows.append(
                    (
                        seq,
                        recorded_column,
                        occurred,
                        event.kind.value,
                        event.partner_id,
                        event.case_id,
                        event.subject_pseudonym,
                        event.purpose,
                        str(event.status),
                        item.body,
                        prev_hex,
                        record_hex,
                    )
                )
                records.append(LogRecord(seq, event, prev_hex, record_hex, recorded_at))
                prev, prev_hex = digest, record_hex
            cursor.executemany(self._insert_sql, rows)
            cursor.execute(self._update_sql, (seq, prev_hex))
        finally:
            cursor.close()
        connection.commit()
        return records


def _roll_back(connection: Any) -> None:
    try:
        connection.rollback()
    except Exception:
        # A connection that cannot even roll back is not handed out again.
        connection.invalidate()
