"""A logical dump of the gateway's database: every table, row by row, as stored.

Portable between SQLite and PostgreSQL: one gzip'd JSON Lines file per table, a header line
naming the columns, then one JSON array per row. Values are written as the database holds
them (ciphertexts stay ciphertexts, log bodies stay byte-exact): bytes as base64, times as
ISO-8601 UTC with microseconds, the rest as JSON. The whole dump is read in one read-only
transaction (REPEATABLE READ on PostgreSQL, one WAL snapshot on SQLite), so tables agree with
each other: the log's head, its records, tiles and checkpoints, the cases and their keys.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import (
    Boolean,
    Connection,
    Engine,
    Integer,
    LargeBinary,
    Table,
    delete,
    func,
    inspect,
    select,
    text,
)

from gateway.store import migrations
from gateway.store.db import for_writing, init_schema
from gateway.store.tables import UTCDateTime, log_checkpoints, log_cosignatures, log_head, metadata

DUMP_SUFFIX = ".jsonl.gz"
# Rows fetched and inserted per round trip.
_BATCH = 1000
# Alembic's own table: its one row is the revision, recorded in the manifest instead.
_ALEMBIC_TABLE = "alembic_version"


class DumpError(Exception):
    """The database cannot be dumped or loaded as asked (one line, no values)."""


@dataclass(frozen=True)
class LogState:
    """Where the accountability log stood in the dump (public data: sizes, roots, notes)."""

    records: int
    last_hash: str
    checkpoint_size: int
    checkpoint_root: str
    checkpoint_note: str
    witnessed_size: int
    witnesses: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "last_hash": self.last_hash,
            "checkpoint": {
                "tree_size": self.checkpoint_size,
                "root_hash": self.checkpoint_root,
                "note": self.checkpoint_note,
            },
            "witnessed": {"tree_size": self.witnessed_size, "witnesses": list(self.witnesses)},
        }


@dataclass(frozen=True)
class Dump:
    """What ``dump_database`` wrote."""

    dialect: str
    revision: str
    files: dict[str, Path]  # table name -> dump file
    rows: dict[str, int]
    log: LogState
    # Tables in the database that are not the gateway's (left out, named in the manifest).
    foreign_tables: tuple[str, ...]


def dump_database(engine: Engine, directory: Path) -> Dump:
    """Write one dump file per table into ``directory`` from one read transaction."""
    with engine.connect() as plain:
        conn = plain
        if engine.dialect.name == "postgresql":
            conn = plain.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.execute(text("SET TRANSACTION READ ONLY"))
            status = migrations.schema_status(conn)
            if status.empty:
                raise DumpError("the database holds no gateway tables: nothing to back up")
            if not status.up_to_date:
                raise DumpError(
                    f"the database is at schema revision {status.current}, this version "
                    f"works with {status.head}: back it up with the release that made it (or "
                    "pg_dump / sqlite3 .backup), or upgrade it first (ketenpoort db upgrade)"
                )
            present = set(inspect(conn).get_table_names())
            foreign = tuple(sorted(present - set(metadata.tables) - {_ALEMBIC_TABLE}))
            files: dict[str, Path] = {}
            rows: dict[str, int] = {}
            for table in metadata.sorted_tables:
                path = directory / f"{table.name}{DUMP_SUFFIX}"
                rows[table.name] = _dump_table(conn, table, path)
                files[table.name] = path
            log = _log_state(conn)
    return Dump(engine.dialect.name, status.head, files, rows, log, foreign)


def _dump_table(conn: Connection, table: Table, path: Path) -> int:
    columns = [c.name for c in table.columns]
    order = list(table.primary_key.columns) or list(table.columns)
    count = 0
    with _open_private(path) as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        out.write(_line({"table": table.name, "columns": columns}))
        result = conn.execution_options(yield_per=_BATCH).execute(
            select(*table.columns).order_by(*order)
        )
        for row in result:
            out.write(_line([_encode(value) for value in row]))
            count += 1
    return count


def _open_private(path: Path) -> IO[bytes]:
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "wb")


def _line(value: object) -> bytes:
    return (json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def _encode(value: object) -> object:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return value


def _log_state(conn: Connection) -> LogState:
    head = conn.execute(select(log_head.c.last_seq, log_head.c.last_hash)).one()
    newest = conn.execute(
        select(log_checkpoints.c.tree_size, log_checkpoints.c.root_hash, log_checkpoints.c.note)
        .order_by(log_checkpoints.c.tree_size.desc())
        .limit(1)
    ).first()
    witnessed = conn.execute(select(func.max(log_cosignatures.c.tree_size))).scalar() or 0
    witnesses: list[str] = []
    if witnessed:
        witnesses = list(
            conn.execute(
                select(log_cosignatures.c.witness)
                .where(log_cosignatures.c.tree_size == witnessed)
                .order_by(log_cosignatures.c.witness)
            ).scalars()
        )
    return LogState(
        records=int(head.last_seq),
        last_hash=str(head.last_hash),
        checkpoint_size=int(newest.tree_size) if newest else 0,
        checkpoint_root=str(newest.root_hash) if newest else "",
        checkpoint_note=str(newest.note) if newest else "",
        witnessed_size=int(witnessed),
        witnesses=tuple(witnesses),
    )


def database_is_empty(engine: Engine) -> bool:
    """True when the database holds no table of the gateway's (nor Alembic's)."""
    with engine.connect() as conn:
        names = set(inspect(conn).get_table_names())
    return not (names & (set(metadata.tables) | {_ALEMBIC_TABLE}))


def load_database(engine: Engine, files: Mapping[str, Path]) -> dict[str, int]:
    """Create the schema on an empty database and load every table's dump, in one
    transaction; returns rows per table. The caller checked that the database is empty."""
    missing = sorted(set(metadata.tables) - set(files))
    if missing:
        raise DumpError(f"the backup lacks the dump of table(s) {', '.join(missing)}")
    init_schema(engine)
    loaded: dict[str, int] = {}
    with for_writing(engine).begin() as conn:
        # init_schema put in the rows of a new database: the dump's replace them.
        for table in (log_head, metadata.tables["schema_info"]):
            conn.execute(delete(table))
        for table in metadata.sorted_tables:
            loaded[table.name] = _load_table(conn, table, files[table.name])
        if conn.dialect.name == "postgresql":
            _advance_sequences(conn)
    return loaded


def _load_table(conn: Connection, table: Table, path: Path) -> int:
    count = 0
    with gzip.open(path, "rb") as handle:
        lines = iter(handle)
        header = json.loads(next(lines, b"{}") or b"{}")
        columns: Sequence[str] = header.get("columns", [])
        if header.get("table") != table.name or list(columns) != [c.name for c in table.columns]:
            raise DumpError(
                f"the dump of table {table.name} has other columns than this version's table"
            )
        decoders = [_decoder(table.c[name].type) for name in columns]
        batch: list[dict[str, object]] = []
        for raw in lines:
            values = json.loads(raw)
            batch.append(
                {name: decode(v) for name, decode, v in zip(columns, decoders, values, strict=True)}
            )
            if len(batch) >= _BATCH:
                conn.execute(table.insert(), batch)
                count += len(batch)
                batch = []
        if batch:
            conn.execute(table.insert(), batch)
            count += len(batch)
    return count


def _decoder(column_type: object) -> Any:
    def keep(value: object) -> object:
        return value

    def binary(value: object) -> object:
        return None if value is None else base64.b64decode(str(value))

    def moment(value: object) -> object:
        return None if value is None else datetime.fromisoformat(str(value))

    def boolean(value: object) -> object:
        return None if value is None else bool(value)

    if isinstance(column_type, LargeBinary):
        return binary
    if isinstance(column_type, UTCDateTime):
        return moment
    if isinstance(column_type, Boolean):
        return boolean
    return keep


def _advance_sequences(conn: Connection) -> None:
    """Rows came with their ids: move each serial column's sequence past them, or the next
    insert would collide with a restored row."""
    for table in metadata.sorted_tables:
        for column in table.primary_key.columns:
            if column.autoincrement is True and isinstance(column.type, Integer):
                conn.execute(
                    text(
                        "SELECT setval(pg_get_serial_sequence(:t, :c), "
                        f"COALESCE((SELECT MAX({column.name}) FROM {table.name}), 0) + 1, false)"
                    ),
                    {"t": table.name, "c": column.name},
                )


def iter_table_names() -> Iterator[str]:
    return (t.name for t in metadata.sorted_tables)
