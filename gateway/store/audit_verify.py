"""Verification of the accountability log's hash chain.

Every record is recomputed from its stored seq and body and checked against its own hash, its
predecessor's hash and the chain head. Together these catch an edited body or column, a
deleted record, records swapped between positions and a record appended behind the head's
back. Rows are streamed in chunks, so a long log is checked in constant memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from gateway.store.audit_event import GENESIS_HASH, chain_hash, parse_time
from gateway.store.tables import audit_log, log_head

DEFAULT_VERIFY_CHUNK = 1000

# Columns that copy a body value so queries can use indexes.
_COPIED_COLUMNS = (
    "kind",
    "partner_id",
    "case_id",
    "subject_pseudonym",
    "purpose",
    "status",
    "break_glass",
)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    records_checked: int
    first_bad_seq: int | None
    reason: str


def verify_chain(engine: Engine, *, chunk_size: int = DEFAULT_VERIFY_CHUNK) -> VerifyResult:
    """Check the whole chain inside one read snapshot and report the first fault."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    t = audit_log.c
    query = select(
        t.seq,
        t.occurred_at,
        *(t[name] for name in _COPIED_COLUMNS),
        t.body,
        t.prev_hash,
        t.record_hash,
    ).order_by(t.seq)
    connection = engine.connect()
    if engine.dialect.name == "postgresql":
        # Head and rows must come from the same snapshot while other replicas append.
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
    with connection as conn, conn.begin():
        head = conn.execute(select(log_head.c.last_seq, log_head.c.last_hash)).one_or_none()
        if head is None:
            return VerifyResult(False, 0, None, "chain head row is missing")
        expected_seq = 1
        prev_hash = GENESIS_HASH
        checked = 0
        rows = conn.execution_options(yield_per=chunk_size).execute(query)
        try:
            for row in rows:
                fault = _check_row(row, expected_seq, prev_hash)
                if fault is not None:
                    bad_seq, reason = fault
                    return VerifyResult(False, checked, bad_seq, reason)
                checked += 1
                expected_seq += 1
                prev_hash = row.record_hash
        finally:
            # Stopping early must still release the server-side cursor.
            rows.close()
        last_seq = expected_seq - 1
        if head.last_seq != last_seq:
            bad = min(head.last_seq, last_seq) + 1
            return VerifyResult(
                False,
                checked,
                bad,
                f"chain head names seq {head.last_seq} but the last record is seq {last_seq}",
            )
        if head.last_hash != prev_hash:
            return VerifyResult(
                False, checked, last_seq or None, "chain head hash differs from the last record"
            )
        return VerifyResult(True, checked, None, "ok")


def _check_row(row: Any, expected_seq: int, prev_hash: str) -> tuple[int, str] | None:
    seq = row.seq
    if seq != expected_seq:
        return expected_seq, f"record {expected_seq} is missing (next stored record is {seq})"
    if row.prev_hash != prev_hash:
        return seq, "previous-hash link does not match the preceding record"
    try:
        prev = bytes.fromhex(row.prev_hash)
    except ValueError:
        return seq, "previous hash is not hex"
    if chain_hash(seq, prev, row.body.encode("utf-8")).hex() != row.record_hash:
        return seq, "record hash does not match seq, previous hash and body"
    try:
        body = json.loads(row.body)
        occurred_at = parse_time(body["occurred_at"])
        copies_match = all(body[name] == row._mapping[name] for name in _COPIED_COLUMNS)
    except (ValueError, KeyError, TypeError):
        return seq, "record body is not a readable event"
    if not copies_match or occurred_at != row.occurred_at:
        return seq, "an indexed column differs from the hashed body"
    return None
