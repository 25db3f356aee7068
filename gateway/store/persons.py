"""Who is who across cases: reading ``case_persons`` to find every pseudonym of one person.

A person's pseudonym is fixed when the person is added to a case: the keyed pseudonym of the
BSN when it was known then, else a keyed pseudonym of the person id. A BSN learnt later is
kept beside it (``bsn_pseudonym``) and the pseudonym stays, so the log records made before
and after keep one subject pseudonym. An access request or a hold that names a BSN therefore
reaches two kinds of row: persons whose pseudonym *is* the BSN's pseudonym, and persons whose
BSN became known later. This module only reads; persons are written by the case file.

Removed persons are found too: their records stay in the log and belong in their report.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, Row, or_, select

from gateway.store.db import translate_errors
from gateway.store.tables import case_persons

__all__ = ["AsyncPersonDirectory", "PersonDirectory", "PersonLink", "pseudonyms_of"]


@dataclass(frozen=True)
class PersonLink:
    """One person in one case, as far as pseudonyms and roles go (no identity values)."""

    case_id: str
    person_id: str
    role_in_case: str
    pseudonym: str
    # The BSN's pseudonym once the BSN is known (may equal ``pseudonym``), else None.
    bsn_pseudonym: str | None
    identified_by: str
    removed: bool


def pseudonyms_of(links: Sequence[PersonLink]) -> list[str]:
    """The distinct log pseudonyms of ``links``, in their order."""
    return list(dict.fromkeys(link.pseudonym for link in links))


def _link(row: Row[tuple[object, ...]]) -> PersonLink:
    m = row._mapping
    return PersonLink(
        case_id=m["case_id"],
        person_id=m["person_id"],
        role_in_case=m["role_in_case"],
        pseudonym=m["pseudonym"],
        bsn_pseudonym=m["bsn_pseudonym"],
        identified_by=m["identified_by"],
        removed=m["removed_at"] is not None,
    )


class PersonDirectory:
    """Synchronous reads of ``case_persons``; call through ``AsyncPersonDirectory`` (or
    ``asyncio.to_thread``) from a server."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @translate_errors("case persons: find by pseudonym")
    def linked_to(self, pseudonyms: Collection[str]) -> list[PersonLink]:
        """Every person whose pseudonym, or whose BSN's pseudonym, is one of ``pseudonyms``,
        by case and person id. Given a BSN's pseudonym, these are all the persons the
        gateway knows to have that BSN."""
        wanted = sorted(set(pseudonyms))
        if not wanted:
            return []
        t = case_persons.c
        query = (
            select(case_persons)
            .where(or_(t.pseudonym.in_(wanted), t.bsn_pseudonym.in_(wanted)))
            .order_by(t.case_id, t.person_id)
        )
        with self._engine.begin() as conn:
            return [_link(r) for r in conn.execute(query).all()]

    @translate_errors("case persons: read")
    def person(self, case_id: str, person_id: str) -> PersonLink | None:
        """The person ``person_id`` of case ``case_id``; None when the case has none such."""
        t = case_persons.c
        query = select(case_persons).where(t.case_id == case_id, t.person_id == person_id)
        with self._engine.begin() as conn:
            row = conn.execute(query).first()
        return None if row is None else _link(row)

    @translate_errors("case persons: pseudonym of a person")
    def pseudonym_of(self, case_id: str, person_id: str) -> str | None:
        """The log pseudonym of the person ``person_id`` of case ``case_id``, or None."""
        found = self.person(case_id, person_id)
        return None if found is None else found.pseudonym


class AsyncPersonDirectory:
    """Same reads as ``PersonDirectory``, awaitable, so the event loop never blocks on I/O."""

    def __init__(self, directory: PersonDirectory) -> None:
        self.sync = directory

    async def linked_to(self, pseudonyms: Collection[str]) -> list[PersonLink]:
        return await asyncio.to_thread(self.sync.linked_to, pseudonyms)

    async def person(self, case_id: str, person_id: str) -> PersonLink | None:
        return await asyncio.to_thread(self.sync.person, case_id, person_id)

    async def pseudonym_of(self, case_id: str, person_id: str) -> str | None:
        return await asyncio.to_thread(self.sync.pseudonym_of, case_id, person_id)
