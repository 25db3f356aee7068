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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from typing import Any

from sqlalchemy import Engine

from gateway.broker.log_events import AuditEvent, LogRecord
from gateway.store.audit_event import chain_hash, encode_event_with_time
from gateway.store.checkpoints import Checkpoint, CheckpointSigner
from gateway.store.errors import AuditWriteError
from gateway.store.merkle import Frontier, Tile, leaf_hash
from gateway.store.sqlite_checkpoint import (
    SQLITE_DEFAULT_AUTOCHECKPOINT,
    WRITER_AUTOCHECKPOINT_BACKSTOP,
    set_autocheckpoint,
)
from gateway.store.tables import (
    AUDIT_INSERT_COLUMNS,
    audit_log,
    log_checkpoints,
    log_head,
    merkle_tiles,
)

_COLUMNS = ", ".join(AUDIT_INSERT_COLUMNS)
# PostgreSQL types of AUDIT_INSERT_COLUMNS, for the array form of the insert; the rest is text.
_PG_NON_TEXT = {
    "seq": "bigint",
    "recorded_at": "timestamptz",
    "occurred_at": "timestamptz",
    "break_glass": "boolean",
}
_PG_ARRAY_TYPES = tuple(_PG_NON_TEXT.get(name, "text") for name in AUDIT_INSERT_COLUMNS)


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


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """When the writer signs a checkpoint: after ``every_records`` records, or ``interval_s``
    after the last checkpoint once records arrived since."""

    signer: CheckpointSigner
    every_records: int = 1000
    interval_s: float = 10.0

    def __post_init__(self) -> None:
        if self.every_records < 1:
            raise ValueError("every_records must be at least 1")
        if not self.interval_s > 0:
            raise ValueError("interval_s must be more than 0")


@dataclass(slots=True)
class _Head:
    seq: int
    hash_hex: str
    frontier: Frontier
    checkpoint_size: int
    checkpoint_at: datetime | None


class ChainWriter:
    """Appends batches to the chain and the Merkle tree; safe to use from several threads.

    Everything a batch changes (records, completed tiles, the head with its frontier, and a
    checkpoint when one is due) is written in the batch's one transaction under the head
    lock, so replicas sharing a database extend one tree and a crash leaves no half step.
    """

    def __init__(self, engine: Engine, checkpoints: CheckpointPolicy | None = None) -> None:
        self.engine = engine
        self.checkpoints = checkpoints
        # The newest checkpoint this writer made (for the checkpoint-age metric).
        self.last_checkpoint: Checkpoint | None = None
        # Called with each checkpoint once its transaction committed, before anyone is told
        # of it (the checkpoint file outside the database); a failure is counted, not raised.
        self.on_checkpoint: Callable[[Checkpoint], object] | None = None
        self.publish_failures = 0
        # Why no checkpoint may be signed now (the log failed the gateway's own check).
        self.suspended: str | None = None
        self._sqlite = engine.dialect.name == "sqlite"
        head_columns = "last_seq, last_hash, frontier, checkpoint_size, checkpoint_at"
        tiles, checkpoints_table = merkle_tiles.name, log_checkpoints.name
        if self._sqlite:
            self._begin_sql: str | None = "BEGIN IMMEDIATE"
            self._head_sql = f"SELECT {head_columns} FROM {log_head.name} WHERE id = 1"
            self._update_sql = (
                f"UPDATE {log_head.name} SET last_seq = ?, last_hash = ?, frontier = ?, "
                "checkpoint_size = ?, checkpoint_at = ? WHERE id = 1"
            )
            row_marks = f"({', '.join(['?'] * len(AUDIT_INSERT_COLUMNS))})"
            self._sqlite_rows = f"INSERT INTO {audit_log.name} ({_COLUMNS}) VALUES ", row_marks
            self._sqlite_statements: dict[int, str] = {}
            self._tile_sql = f"INSERT INTO {tiles} (level, idx, hash) VALUES (?, ?, ?)"
            self._checkpoint_sql = (
                f"INSERT INTO {checkpoints_table} (tree_size, root_hash, created_at, key_id, "
                "note) VALUES (?, ?, ?, ?, ?)"
            )
        else:
            self._begin_sql = None
            self._head_sql = (
                f"SELECT {head_columns} FROM {log_head.name} WHERE id = 1 FOR UPDATE"
            )
            head_update = (
                f"UPDATE {log_head.name} SET last_seq = %b, last_hash = %b, frontier = %b, "
                "checkpoint_size = %b, checkpoint_at = %b::timestamptz WHERE id = 1"
            )
            self._update_sql = head_update
            # One array per column, sent in binary: one short statement for any batch size,
            # which the driver parses once and the server plans once.
            arrays = ", ".join(f"%b::{kind}[]" for kind in _PG_ARRAY_TYPES)
            # The head moves in the same statement: one round trip fewer per batch.
            self._pg_insert = (
                f"WITH inserted AS (INSERT INTO {audit_log.name} ({_COLUMNS}) "
                f"SELECT * FROM unnest({arrays})) {head_update}"
            )
            self._tile_sql = f"INSERT INTO {tiles} (level, idx, hash) VALUES (%b, %b, %b)"
            self._checkpoint_sql = (
                f"INSERT INTO {checkpoints_table} (tree_size, root_hash, created_at, key_id, "
                "note) VALUES (%b, %b, %b, %b, %b)"
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
    ) -> tuple[list[LogRecord], Checkpoint | None]:
        """Run a batch's statements on a raw driver connection; the caller commits.

        Returns the records and the checkpoint the batch signed, if one was due."""
        cursor = connection.cursor()
        try:
            head = self._lock_head(cursor)
            rows, records, tiles = self._chain(items, head, recorded_at)
            checkpoint = self._due_checkpoint(head, recorded_at, force=False)
            self._insert(cursor, rows, head)
            self._insert_tree(cursor, tiles, checkpoint)
        finally:
            cursor.close()
        return records, checkpoint

    def write_checkpoint(
        self, connection: Any, recorded_at: datetime, *, force: bool
    ) -> Checkpoint | None:
        """Sign a checkpoint of the tree as it stands if one is due (or, with ``force``,
        whenever records are not yet covered by one); the caller commits."""
        cursor = connection.cursor()
        try:
            head = self._lock_head(cursor)
            checkpoint = self._due_checkpoint(head, recorded_at, force=force)
            if checkpoint is not None:
                cursor.execute(self._update_sql, self._head_params(head))
                self._insert_tree(cursor, [], checkpoint)
        finally:
            cursor.close()
        return checkpoint

    def _lock_head(self, cursor: Any) -> _Head:
        if self._begin_sql is not None:
            cursor.execute(self._begin_sql)
        cursor.execute(self._head_sql)
        row = cursor.fetchone()
        if row is None:
            raise LookupError("chain head row is missing; run init_schema")
        seq = int(row[0])
        checkpoint_at = row[4]
        if isinstance(checkpoint_at, str):  # SQLite keeps naive UTC text
            checkpoint_at = datetime.fromisoformat(checkpoint_at).replace(tzinfo=UTC)
        return _Head(seq, str(row[1]), Frontier.decode(seq, str(row[2])), int(row[3]),
                     checkpoint_at)

    def _db_time(self, moment: datetime) -> Any:
        # The text form SQLAlchemy's SQLite DateTime type stores and reads back (naive UTC).
        return moment.isoformat(" ", "microseconds")[:26] if self._sqlite else moment

    def _chain(
        self, items: Sequence[EncodedEvent], head: _Head, recorded_at: datetime
    ) -> tuple[list[tuple[Any, ...]], list[LogRecord], list[Tile]]:
        sqlite = self._sqlite
        recorded = self._db_time(recorded_at)
        seq, prev_hex = head.seq, head.hash_hex
        prev = bytes.fromhex(prev_hex)
        frontier = head.frontier
        tiles: list[Tile] = []
        rows: list[tuple[Any, ...]] = []
        records: list[LogRecord] = []
        for item in items:
            event = item.event
            seq += 1
            digest = chain_hash(seq, prev, item.body_utf8)
            frontier.append(leaf_hash(item.body_utf8), tiles)
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
        head.seq, head.hash_hex = seq, prev_hex
        return rows, records, tiles

    def _due_checkpoint(
        self, head: _Head, recorded_at: datetime, *, force: bool
    ) -> Checkpoint | None:
        policy = self.checkpoints
        size = head.seq
        own = self.last_checkpoint
        if own is not None and min(size, head.checkpoint_size) < own.tree_size:
            # The head only ever moves forward: one behind a checkpoint this process signed
            # was reset by someone writing the database. Sign nothing over it.
            self.suspended = (
                f"the chain head went back behind the checkpoint at tree size "
                f"{own.tree_size} this gateway signed"
            )
        if policy is None or size <= head.checkpoint_size or self.suspended is not None:
            return None
        due = (
            force
            or head.checkpoint_at is None
            or size - head.checkpoint_size >= policy.every_records
            or (recorded_at - head.checkpoint_at).total_seconds() >= policy.interval_s
        )
        if not due:
            return None
        checkpoint = policy.signer.sign(size, head.frontier.root(), recorded_at)
        head.checkpoint_size, head.checkpoint_at = size, checkpoint.created_at
        return checkpoint

    def published(self, checkpoint: Checkpoint) -> None:
        """A committed checkpoint: hand it to ``on_checkpoint``, then make it the newest."""
        hook = self.on_checkpoint
        if hook is not None:
            try:
                hook(checkpoint)
            except Exception:
                # The records are committed; the server's log check copies the checkpoint
                # to the file later.
                self.publish_failures += 1
        self.last_checkpoint = checkpoint

    def _head_params(self, head: _Head) -> tuple[Any, ...]:
        at = None if head.checkpoint_at is None else self._db_time(head.checkpoint_at)
        return (head.seq, head.hash_hex, head.frontier.encode(), head.checkpoint_size, at)

    def _insert(self, cursor: Any, rows: list[tuple[Any, ...]], head: _Head) -> None:
        if self._sqlite:
            statement = self._sqlite_statements.get(len(rows))
            if statement is None:
                start, marks = self._sqlite_rows
                statement = start + ", ".join([marks] * len(rows))
                self._sqlite_statements[len(rows)] = statement
            cursor.execute(statement, list(chain.from_iterable(rows)))
            cursor.execute(self._update_sql, self._head_params(head))
        else:
            columns = [list(column) for column in zip(*rows, strict=True)]
            cursor.execute(self._pg_insert, [*columns, *self._head_params(head)])

    def _insert_tree(
        self, cursor: Any, tiles: list[Tile], checkpoint: Checkpoint | None
    ) -> None:
        for tile in tiles:
            cursor.execute(self._tile_sql, (tile.level, tile.idx, tile.hash))
        if checkpoint is not None:
            cursor.execute(
                self._checkpoint_sql,
                (
                    checkpoint.tree_size,
                    checkpoint.root_hash.hex(),
                    self._db_time(checkpoint.created_at),
                    checkpoint.key_id,
                    checkpoint.note,
                ),
            )


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
                records, checkpoint = self._writer.write_batch(connection, items, recorded_at)
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
            if checkpoint is not None:
                self._writer.published(checkpoint)
            return records
        raise AssertionError("unreachable")

    def checkpoint(self, recorded_at: datetime, *, force: bool) -> Checkpoint | None:
        """Commit a checkpoint if one is due (see ``ChainWriter.write_checkpoint``)."""
        recorded_at = recorded_at.astimezone(UTC)
        for attempt in (1, 2):
            try:
                connection = self._connect()
                checkpoint = self._writer.write_checkpoint(connection, recorded_at, force=force)
                connection.commit()
            except Exception as exc:
                self._discard()
                if attempt == 2:
                    raise AuditWriteError("checkpoint not committed") from exc
                continue
            if checkpoint is not None:
                self._writer.published(checkpoint)
            return checkpoint
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
