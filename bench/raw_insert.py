"""The floors the log is compared with: the same rows, inserted durably without the log.

Both run in one thread on the raw driver connection of the gateway's own engine (so SQLite
has the same WAL and ``synchronous=FULL`` settings) into an empty ``audit_log`` table with
its indexes, with the bodies already encoded and fixed hashes: what the database alone
costs for the rows the log writes.

- ``row_per_commit``: one row, one transaction, one commit, again and again.
- ``rows_100_per_commit``: 100 rows in one ``executemany`` and one commit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from loadgen import percentile
from sqlalchemy import Engine

from gateway.broker.log_events import AuditEvent
from gateway.store.audit_event import encode_event_with_time
from gateway.store.tables import AUDIT_INSERT_COLUMNS, audit_log

BATCH_ROWS = 100
_FIXED_HASH = "ab" * 32


@dataclass(frozen=True)
class RawRun:
    rows: int
    seconds: float
    commit_ms_p50: float
    commit_ms_p99: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def row_values(events: list[AuditEvent], sqlite: bool) -> list[tuple[Any, ...]]:
    """The column values after ``seq``, in AUDIT_INSERT_COLUMNS order, as the writer binds them."""
    now = datetime.now(UTC)
    recorded: Any = now.isoformat(" ", "microseconds")[:26] if sqlite else now
    rows = []
    for e in events:
        body, when = encode_event_with_time(e)
        occurred: Any = f"{when[:10]} {when[11:26]}" if sqlite else e.occurred_at
        rows.append(
            (
                recorded,
                occurred,
                e.kind.value,
                e.partner_id,
                e.case_id,
                e.subject_pseudonym,
                e.purpose,
                str(e.status),
                e.break_glass,
                body,
                _FIXED_HASH,
                _FIXED_HASH,
            )
        )
    return rows


def raw_insert(
    engine: Engine, events: list[AuditEvent], *, rows_per_commit: int, seconds: float
) -> RawRun:
    """Insert for ``seconds``, ``rows_per_commit`` rows per durable commit."""
    sqlite = engine.dialect.name == "sqlite"
    values = row_values(events, sqlite)
    mark = "?" if sqlite else "%s"
    sql = (
        f"INSERT INTO {audit_log.name} ({', '.join(AUDIT_INSERT_COLUMNS)}) "
        f"VALUES ({', '.join([mark] * len(AUDIT_INSERT_COLUMNS))})"
    )
    connection: Any = engine.raw_connection()
    cursor = connection.cursor()
    commits: list[float] = []
    seq = 0
    clock = time.perf_counter
    try:
        start = clock()
        deadline = start + seconds
        while clock() < deadline:
            began = clock()
            if sqlite:
                cursor.execute("BEGIN IMMEDIATE")
            batch = []
            for _ in range(rows_per_commit):
                batch.append((seq + 1, *values[seq % len(values)]))
                seq += 1
            if rows_per_commit == 1:
                cursor.execute(sql, batch[0])
            else:
                cursor.executemany(sql, batch)
            connection.commit()
            commits.append(clock() - began)
        elapsed = clock() - start
    finally:
        cursor.close()
        connection.close()
    commits.sort()
    return RawRun(
        rows=seq,
        seconds=elapsed,
        commit_ms_p50=percentile(commits, 50) * 1000,
        commit_ms_p99=percentile(commits, 99) * 1000,
    )
