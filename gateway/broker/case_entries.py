"""The case file's encrypted entries: sealing a value into one, opening one, and whose it is.

Every value of the case file is an entry encrypted under the case's data key, bound (as
associated data) to the case, the entry, the field and the person it is about, so an entry
moved to another case, field or person does not open. Shared by every use case that writes
or reads the case file.
"""

from __future__ import annotations

from datetime import datetime

from gateway.broker.ids import new_id
from gateway.broker.persons import PERSON_FIELDS
from gateway.broker.text_classes import all_classified
from gateway.crypto.envelope import DataKey, field_aad
from gateway.store.cases import CaseSnapshot, EntryRow

# The older single subject's identity fields, case-level in cases registered before persons.
SUBJECT_FIELDS = (
    "subject.bsn",
    "subject.name",
    "subject.date_of_birth",
    "subject.address",
    "subject.postcode",
)
# A person's identity fields, as entries carrying the person's id.
PERSON_IDENTITY_FIELDS = tuple(PERSON_FIELDS.values())
# Fields where every entry counts (a log of notes); for the others the newest entry is the value.
# The classified variants of the notes and minutes (case.notes.health, ...) accumulate too.
ACCUMULATING_FIELDS = frozenset({"case.plan_actions", "case.action_owners"}) | all_classified(
    {"case.notes", "case.meeting_minutes"}
)


def seal_entry(
    key: DataKey,
    case_id: str,
    field: str,
    text: str,
    by: str,
    now: datetime,
    person_id: str = "",
) -> EntryRow:
    """A new entry of ``field`` holding ``text``, encrypted under the case's data ``key``;
    about the person ``person_id`` ("" = the case itself). Not stored yet."""
    entry_id = new_id("e_")
    aad = field_aad(case_id, entry_id, field, person_id)
    ciphertext = key.encrypt(text.encode("utf-8"), aad)
    return EntryRow(
        entry_id=entry_id,
        case_id=case_id,
        field=field,
        ciphertext=ciphertext,
        created_by=by,
        created_at=now,
        person_id=person_id,
    )


def open_entry(key: DataKey, row: EntryRow) -> str:
    """The text of an entry sealed by ``seal_entry``; fails if it was moved or altered."""
    aad = field_aad(row.case_id, row.entry_id, row.field, row.person_id)
    return key.decrypt(row.ciphertext, aad).decode()


def entry_of(snap: CaseSnapshot, entry: EntryRow, person_id: str) -> bool:
    """Whether ``entry`` belongs to the person ``person_id`` ("" = the case itself).

    A case registered before cases had persons keeps its subject's identity entries without a
    person id (their ciphertext is bound to none, so an upgrade cannot move them): they are the
    identity of the case's first person, the one the upgrade made of its subject.
    """
    if entry.person_id == person_id:
        return True
    if not person_id:
        # A case-file entry about one person (a note on a child, say) is still part of the
        # case's file: the case-level field that holds it is decided for the case.
        return entry.field not in PERSON_IDENTITY_FIELDS
    return (
        not entry.person_id
        and entry.field in PERSON_IDENTITY_FIELDS
        and bool(snap.persons)
        and snap.persons[0].person_id == person_id
    )
