"""Shared authentication state of all replicas: used token ids and revocations.

A token is good for one call. Each replica claims the ids of the tokens it accepts in the
shared database, many calls in one transaction; a claim that finds the id already there is
a replay. The same transaction reads the newest revocation id, so a partner, certificate
or key revoked on any replica (or by ``ketenpoort partner revoke``) is refused by every
replica from its next call on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection, Engine, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from gateway.store.db import for_writing, translate_errors
from gateway.store.tables import revocations, token_uses

__all__ = [
    "ClaimResult",
    "RevocationKind",
    "Revocations",
    "TokenClaim",
    "claim_tokens",
    "load_revocations",
    "prune_token_uses",
    "record_revocation",
    "token_hash",
]


class RevocationKind(StrEnum):
    PARTNER = "partner"
    CERTIFICATE = "certificate"
    KEY = "key"


def token_hash(issuer: str, jti: str) -> bytes:
    """What the store keeps of a token: SHA-256 over issuer and jti, length-prefixed."""
    a, b = issuer.encode(), jti.encode()
    return hashlib.sha256(len(a).to_bytes(4, "big") + a + b).digest()


@dataclass(frozen=True)
class TokenClaim:
    token_hash: bytes
    expires_at: datetime


@dataclass(frozen=True)
class Revocations:
    """Everything revoked, as of revocation id ``generation``."""

    generation: int
    entries: frozenset[tuple[str, str, str]]  # (kind, partner id, subject)

    def partner_revoked(self, partner_id: str) -> bool:
        return (RevocationKind.PARTNER.value, partner_id, partner_id) in self.entries

    def certificate_revoked(self, partner_id: str, thumbprint: str) -> bool:
        return (RevocationKind.CERTIFICATE.value, partner_id, thumbprint) in self.entries

    def key_revoked(self, partner_id: str, kid: str) -> bool:
        return (RevocationKind.KEY.value, partner_id, kid) in self.entries


NO_REVOCATIONS = Revocations(0, frozenset())


@dataclass(frozen=True)
class ClaimResult:
    fresh: tuple[bool, ...]  # per claim, in order: True when this call was the first use
    revocation_generation: int


@translate_errors("claiming token ids")
def claim_tokens(engine: Engine, claims: Sequence[TokenClaim]) -> ClaimResult:
    """Claim every token id in one transaction; a repeated id (even within the batch) is
    not fresh. Also returns the newest revocation id."""
    unique: dict[bytes, datetime] = {}
    for claim in claims:
        unique.setdefault(claim.token_hash, claim.expires_at)
    with for_writing(engine).begin() as conn:
        inserted = _insert_new(conn, unique) if unique else set()
        generation = conn.execute(select(func.max(revocations.c.id))).scalar_one_or_none() or 0
    seen: set[bytes] = set()
    fresh = []
    for claim in claims:
        first = claim.token_hash in inserted and claim.token_hash not in seen
        seen.add(claim.token_hash)
        fresh.append(first)
    return ClaimResult(tuple(fresh), int(generation))


def _insert_new(conn: Connection, unique: dict[bytes, datetime]) -> set[bytes]:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    rows = [{"token_hash": h, "expires_at": at} for h, at in unique.items()]
    statement = (
        dialect.insert(token_uses)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["token_hash"])
        .returning(token_uses.c.token_hash)
    )
    return {bytes(row[0]) for row in conn.execute(statement)}


@translate_errors("reading revocations")
def load_revocations(engine: Engine) -> Revocations:
    with engine.connect() as conn:
        rows = conn.execute(
            select(revocations.c.id, revocations.c.kind, revocations.c.partner_id,
                   revocations.c.subject)
        ).all()
    generation = max((int(r.id) for r in rows), default=0)
    return Revocations(generation, frozenset((r.kind, r.partner_id, r.subject) for r in rows))


@translate_errors("recording a revocation")
def record_revocation(
    engine: Engine, partner_id: str, kind: RevocationKind, subject: str, at: datetime
) -> bool:
    """Record a revocation; False when it was already recorded."""
    with for_writing(engine).begin() as conn:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        result = conn.execute(
            dialect.insert(revocations)
            .values(partner_id=partner_id, kind=kind.value, subject=subject, revoked_at=at)
            .on_conflict_do_nothing()
            .returning(revocations.c.id)
        )
        return result.first() is not None


@translate_errors("pruning used token ids")
def prune_token_uses(engine: Engine, before: datetime) -> int:
    """Forget token ids of tokens that expired before ``before`` (they are refused anyway)."""
    with for_writing(engine).begin() as conn:
        result = conn.execute(delete(token_uses).where(token_uses.c.expires_at < before))
        return int(result.rowcount or 0)
