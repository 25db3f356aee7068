"""Request ids of registrations and case-file entries: the first call with an id wins.

A claim is inserted with ``INSERT ... ON CONFLICT DO NOTHING`` in the same transaction that
creates the case or the entry, so of several calls with the same partner and request id (on
one replica or several) exactly one creates anything; the others read the row of the one that
did. On PostgreSQL an insert that meets the uncommitted row of a concurrent transaction waits
for it to end; on SQLite write transactions run one at a time. A claim whose row is older
than the retention window replaces it: the id is free again.

The row holds the partner id, the request id, the operation, a keyed digest of the content
(never the content), the case and entry the first call made, and when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from gateway.store.db import for_writing, translate_errors
from gateway.store.errors import StoreError
from gateway.store.tables import request_ids

__all__ = ["PriorRequest", "RequestClaim", "claim_request", "prune_request_ids"]


@dataclass(frozen=True)
class RequestClaim:
    """A call's claim on its request id, with what it is about to create."""

    partner_id: str
    request_id: str
    operation: str
    content_digest: bytes
    case_id: str
    entry_id: str
    at: datetime
    # Rows made before this moment have expired and no longer hold their id.
    expired_before: datetime


@dataclass(frozen=True)
class PriorRequest:
    """The first call that used a request id, as its row keeps it."""

    operation: str
    content_digest: bytes
    case_id: str
    entry_id: str
    created_at: datetime


def claim_request(conn: Connection, claim: RequestClaim) -> PriorRequest | None:
    """Claim the request id in the caller's write transaction: None when this call is the
    first with it (it then goes on to create), else the first call's row."""
    key = (
        (request_ids.c.partner_id == claim.partner_id)
        & (request_ids.c.request_id == claim.request_id)
    )
    # Cleared in this transaction so the id is free again exactly when its window ends,
    # whether or not the periodic prune has come by.
    conn.execute(delete(request_ids).where(key, request_ids.c.created_at < claim.expired_before))
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    inserted = conn.execute(
        dialect.insert(request_ids)
        .values(
            partner_id=claim.partner_id,
            request_id=claim.request_id,
            operation=claim.operation,
            content_digest=claim.content_digest,
            case_id=claim.case_id,
            entry_id=claim.entry_id,
            created_at=claim.at,
        )
        .on_conflict_do_nothing(index_elements=["partner_id", "request_id"])
        .returning(request_ids.c.partner_id)
    ).first()
    if inserted is not None:
        return None
    row = conn.execute(
        select(
            request_ids.c.operation,
            request_ids.c.content_digest,
            request_ids.c.case_id,
            request_ids.c.entry_id,
            request_ids.c.created_at,
        ).where(key)
    ).first()
    if row is None:
        # Only a row removed between the insert and this read; the caller may retry.
        raise StoreError("a request id was claimed and released concurrently")
    return PriorRequest(
        operation=row.operation,
        content_digest=bytes(row.content_digest),
        case_id=row.case_id,
        entry_id=row.entry_id,
        created_at=row.created_at,
    )


@translate_errors("pruning request ids")
def prune_request_ids(engine: Engine, before: datetime) -> int:
    """Forget request ids first used before ``before``; the number forgotten."""
    with for_writing(engine).begin() as conn:
        result = conn.execute(delete(request_ids).where(request_ids.c.created_at < before))
        return int(result.rowcount or 0)
