"""Confidentiality holds (AVG art. 23, art. 41 UAVG, Wpg) over the ``confidentiality_holds``
table.

A hold keeps the disclosures it covers out of a subject's access report while it lasts: until
``until``, or until it is lifted. The reason is free text and lives here, beside the log,
encrypted under a text key (``gateway.crypto.free_text``: the hold-reason key of the case, or
of the hold itself when it covers every case of the subject); the log record of the hold
(``record_seq``) holds only its keyed digest.

A hold is one row on one pseudonym: the BSN's for a hold placed by BSN, the person's for one
placed on a person of a case. Which log pseudonyms it reaches (every person with that BSN,
also one whose BSN was learnt after the hold) is worked out when a report is made
(``gateway.broker.subjects.Subjects.reach``), so no row has to follow a person's links.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, Row, and_, insert, or_, select, update

from gateway.store.db import for_writing, translate_errors
from gateway.store.tables import confidentiality_holds

__all__ = ["Hold", "HoldStore"]

# The table keeps "" for a hold on every case of the subject.
ALL_CASES = ""


@dataclass(frozen=True)
class Hold:
    hold_id: str
    subject_pseudonym: str
    placed_by: str
    # ALL_CASES ("") for every case of the subject.
    case_id: str
    # The reason, encrypted under the text key ``reason_key_id``; the row's hold id is the
    # row id bound into the encryption.
    reason_ciphertext: bytes
    reason_key_id: str
    placed_at: datetime
    until: datetime
    lifted_at: datetime | None
    record_seq: int

    def active_at(self, moment: datetime) -> bool:
        """Whether the hold is in force at ``moment``: not yet ended, not yet lifted.

        A stored hold counts even at a moment before its ``placed_at``: another replica's
        clock may run behind the one that placed it, and a hold must never be missed."""
        lifted = self.lifted_at is not None and self.lifted_at <= moment
        return moment < self.until and not lifted


def _hold(row: Row[tuple[object, ...]]) -> Hold:
    m = row._mapping
    return Hold(
        hold_id=m["hold_id"],
        subject_pseudonym=m["subject_pseudonym"],
        placed_by=m["placed_by"],
        case_id=m["case_id"],
        reason_ciphertext=bytes(m["reason_ciphertext"]),
        reason_key_id=m["reason_key_id"],
        placed_at=m["placed_at"],
        until=m["until"],
        lifted_at=m["lifted_at"],
        record_seq=int(m["record_seq"]),
    )


class HoldStore:
    """Synchronous access to the holds; call it through ``asyncio.to_thread`` from a server."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = for_writing(engine)

    @translate_errors("confidentiality holds: place")
    def place(self, hold: Hold) -> None:
        if hold.lifted_at is not None:
            raise ValueError("a new hold is not lifted")
        with self._writer.begin() as conn:
            conn.execute(
                insert(confidentiality_holds).values(
                    hold_id=hold.hold_id,
                    subject_pseudonym=hold.subject_pseudonym,
                    placed_by=hold.placed_by,
                    case_id=hold.case_id,
                    reason_ciphertext=hold.reason_ciphertext,
                    reason_key_id=hold.reason_key_id,
                    placed_at=hold.placed_at,
                    until=hold.until,
                    lifted_at=None,
                    record_seq=hold.record_seq,
                )
            )

    @translate_errors("confidentiality holds: read")
    def get(self, hold_id: str) -> Hold | None:
        with self._engine.begin() as conn:
            row = conn.execute(
                select(confidentiality_holds).where(confidentiality_holds.c.hold_id == hold_id)
            ).first()
        return None if row is None else _hold(row)

    @translate_errors("confidentiality holds: lift")
    def lift(self, hold_id: str, at: datetime) -> bool:
        """Mark the hold lifted at ``at``; false when it was already lifted (or is unknown)."""
        t = confidentiality_holds.c
        with self._writer.begin() as conn:
            result = conn.execute(
                update(confidentiality_holds)
                .where(and_(t.hold_id == hold_id, t.lifted_at.is_(None)))
                .values(lifted_at=at)
            )
        return result.rowcount == 1

    def active_for(self, subject_pseudonym: str, at: datetime) -> list[Hold]:
        """The holds on the subject in force at ``at``, oldest first."""
        return self.active_for_any([subject_pseudonym], at)

    @translate_errors("confidentiality holds: list active")
    def active_for_any(self, subject_pseudonyms: Collection[str], at: datetime) -> list[Hold]:
        """The holds stored on any of ``subject_pseudonyms`` (one person's pseudonyms) in
        force at ``at``, oldest first."""
        wanted = sorted(set(subject_pseudonyms))
        if not wanted:
            return []
        t = confidentiality_holds.c
        query = (
            select(confidentiality_holds)
            .where(
                t.subject_pseudonym.in_(wanted),
                t.until > at,
                or_(t.lifted_at.is_(None), t.lifted_at > at),
            )
            .order_by(t.placed_at, t.hold_id)
        )
        with self._engine.begin() as conn:
            rows = conn.execute(query).all()
        return [_hold(r) for r in rows]
