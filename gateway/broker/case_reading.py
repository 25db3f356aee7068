"""Reading a case: the one way the use cases get a case and open what it holds.

A disclosure, a triage, the case file and the case plan all read a case here. ``snapshot``
reads the whole case (row, persons, entries) in one round from the case reader, which is
what deciding and answering about a case's persons needs. ``case`` reads only the case's row
(participants, phase, regie, whether it was shredded): the check every change makes first,
which should not cost reading every entry of a long-running case.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass

from gateway.broker.case_entries import (
    ACCUMULATING_FIELDS,
    PERSON_IDENTITY_FIELDS,
    entry_of,
    open_entry,
)
from gateway.broker.context import BrokerContext
from gateway.broker.errors import CaseNotFound, CaseShredded, InvalidRequest
from gateway.broker.persons import PERSON_FIELDS
from gateway.broker.sources import Subject
from gateway.broker.text_classes import release_to
from gateway.core import CompiledPolicy
from gateway.crypto.envelope import DataKey, WrappedKey, unwrap_data_key
from gateway.store.cases import CaseRow, CaseSnapshot, EntryRow, PersonRow

MAX_CASE_ID_CHARS = 64
SHREDDED_MESSAGE = "the case's data was deleted at the end of its retention period"


@dataclass(frozen=True)
class PersonIdentity:
    """What the case file holds to find one person: the identifiers, and the partner type
    whose own reference ``subject.reference`` is (the type of the partner that gave it)."""

    person: PersonRow
    subject: Subject
    reference_type: str = ""


def check_case_id(case_id: str) -> None:
    """Refuse a case id no case can have before it reaches the database: PostgreSQL stores no
    NUL in text and would fail the query rather than find nothing."""
    if not case_id or len(case_id) > MAX_CASE_ID_CHARS or "\x00" in case_id:
        raise InvalidRequest(f"case_id is required: 1..{MAX_CASE_ID_CHARS} characters, no NUL")


class CaseReading:
    def __init__(self, ctx: BrokerContext) -> None:
        self._ctx = ctx

    async def snapshot(self, case_id: str) -> CaseSnapshot:
        """The case with its persons and entries in one read; ``CaseNotFound`` if none."""
        check_case_id(case_id)
        snap = await self._ctx.reader.read(case_id)
        if snap is None:
            raise CaseNotFound(f"no case {case_id!r}")
        return snap

    async def case(self, case_id: str) -> CaseRow:
        """The case's row only; ``CaseNotFound`` if none."""
        check_case_id(case_id)
        row = await asyncio.to_thread(self._ctx.cases.get_case, case_id)
        if row is None:
            raise CaseNotFound(f"no case {case_id!r}")
        return row

    def data_key(self, case: CaseRow) -> DataKey:
        if case.shredded_at is not None:
            # Its wrapped key is gone: say so rather than fail to unwrap an empty key.
            raise CaseShredded(SHREDDED_MESSAGE)
        wrapped = WrappedKey.from_bytes(case.wrapped_data_key)
        return unwrap_data_key(wrapped, self._ctx.keystore, case.case_id)

    def values(
        self,
        snap: CaseSnapshot,
        fields: Collection[str],
        person_id: str = "",
        recipient: str | None = None,
    ) -> dict[str, str]:
        """Decrypt the named case-file fields of one person (``person_id``) or of the case
        (""): the newest entry, or all entries of a log-like field such as the notes. Fields
        without an entry are absent. With ``recipient`` (the partner the values are disclosed
        to), entries it may not have whatever the policy says (a confidential note of another
        partner's) are left out."""
        wanted = set(fields)
        if not wanted:
            return {}
        key = self.data_key(snap.case)
        found: dict[str, list[EntryRow]] = {}
        for entry in snap.entries:  # oldest first
            if (
                entry.field in wanted
                and entry_of(snap, entry, person_id)
                and release_to(entry.field, entry.created_by, recipient)
            ):
                found.setdefault(entry.field, []).append(entry)
        values: dict[str, str] = {}
        for field, rows in found.items():
            if field in ACCUMULATING_FIELDS:
                values[field] = "\n".join(open_entry(key, r) for r in rows)
            else:
                values[field] = open_entry(key, rows[-1])
        return values

    def person_identity(
        self, snap: CaseSnapshot, person: PersonRow, policy: CompiledPolicy | None = None
    ) -> PersonIdentity:
        """One person's identity, built from the entries with that person's id; with
        ``policy``, also the partner type whose own reference the person's reference is."""
        key = self.data_key(snap.case)
        newest: dict[str, EntryRow] = {}
        for entry in snap.entries:  # oldest first: the newest entry of a field wins
            if entry.field in PERSON_IDENTITY_FIELDS and entry_of(snap, entry, person.person_id):
                newest[entry.field] = entry
        v = {field: open_entry(key, row) for field, row in newest.items()}
        reference_type = ""
        ref_entry = newest.get(PERSON_FIELDS["reference"])
        if ref_entry is not None and policy is not None:
            spec = policy.partners.get(ref_entry.created_by)
            reference_type = spec.type if spec is not None else ""
        subject = Subject(
            bsn=v.get("subject.bsn", ""),
            name=v.get("subject.name", ""),
            date_of_birth=v.get("subject.date_of_birth", ""),
            address=v.get("subject.address", ""),
            postcode=v.get("subject.postcode", ""),
            reference=v.get("subject.reference", ""),
        )
        return PersonIdentity(person, subject, reference_type)
