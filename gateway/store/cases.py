"""The ZVH's own case file: registration, participants, phase and the ZVH's entries.

Partner data is not copied here. Entry values arrive as ciphertext made by the caller with
the case's data key; the store keeps the wrapped key next to the case and never sees a
plaintext value.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from gateway.broker.log_events import PERSON_ID_TYPE, SUBJECT_ID_TYPE
from gateway.store.case_events import EventBell, insert_case_events
from gateway.store.db import for_writing, translate_errors
from gateway.store.errors import (
    CaseNotFound,
    CaseShredded,
    DuplicateCase,
    PersonConflict,
    PersonNotFound,
    PhaseConflict,
    StoreError,
)
from gateway.store.request_ids import (
    PriorRequest,
    RequestClaim,
    claim_request,
    prune_request_ids,
)
from gateway.store.tables import case_entries, case_participants, case_persons, cases


class ParticipantRole(StrEnum):
    REGISTRANT = "registrant"
    INVITED = "invited"


class IdentifiedBy(StrEnum):
    """How a person of a case is identified (case_persons.identified_by)."""

    BSN = "bsn"
    NAME_AND_BIRTH = "name_and_birth"
    REFERENCE = "reference"
    UNIDENTIFIED = "unidentified"


@dataclass(frozen=True)
class PersonRow:
    """One person of a case. No identifying value: those are case entries with its id.

    ``pseudonym`` never changes once the person is added (every log record about the person
    carries it); ``bsn_pseudonym`` is set when a BSN is learnt later (IdentifyPerson)."""

    case_id: str
    person_id: str
    role_in_case: str
    pseudonym: str
    identified_by: IdentifiedBy
    added_by: str
    added_at: datetime
    bsn_pseudonym: str | None = None
    removed_by: str | None = None
    removed_at: datetime | None = None

    @property
    def current(self) -> bool:
        return self.removed_at is None

    @property
    def keyed_on_bsn(self) -> bool:
        """Whether the pseudonym is the BSN's: the BSN was known when the person was added."""
        if self.bsn_pseudonym is not None:
            return self.bsn_pseudonym == self.pseudonym
        return self.identified_by == "bsn"

    @property
    def subject_id_type(self) -> str:
        """What the pseudonym is, as log records name it (Logboek data_subject_id_type)."""
        return SUBJECT_ID_TYPE if self.keyed_on_bsn else PERSON_ID_TYPE


@dataclass(frozen=True)
class CaseRow:
    case_id: str
    subject_pseudonym: str
    case_type: str
    phase: str
    registered_by: str
    created_at: datetime
    closed_at: datetime | None
    wrapped_data_key: bytes
    # Registrant first, then invitees in the order they joined.
    participants: tuple[str, ...]
    # Set when the case's data was shredded at the end of its retention period: the wrapped
    # data key is then empty and the case has no entries and no participants.
    shredded_at: datetime | None = None
    # The approach and the regie (gateway.broker.regie); '' = unassigned.
    approach: str = "general"
    intake: str = "pending"
    procesregie_partner: str = ""
    procesregie_user: str = ""
    casusregie_partner: str = ""
    casusregie_user: str = ""
    closure_category: str = ""


# The case columns beyond the original ones, in CaseRow's order (snapshots read them too).
REGIE_COLUMNS = (
    "approach",
    "intake",
    "procesregie_partner",
    "procesregie_user",
    "casusregie_partner",
    "casusregie_user",
    "closure_category",
)
# Kinds of case events the case file itself writes (gateway.store.case_events).
EVENT_INVITED = "invited"
EVENT_PHASE_CHANGED = "phase_changed"


@dataclass(frozen=True)
class ParticipantRow:
    case_id: str
    partner_id: str
    role_in_case: ParticipantRole
    invited_by: str
    joined_at: datetime


@dataclass(frozen=True)
class EntryRow:
    entry_id: str
    case_id: str
    field: str
    ciphertext: bytes
    created_by: str
    created_at: datetime
    # The person of the case the entry is about; "" for a case-level entry.
    person_id: str = ""


@dataclass(frozen=True)
class CaseSnapshot:
    """A case, every entry of its case file (oldest first) and its persons (in the order
    they were added, removed ones included), read in one transaction."""

    case: CaseRow
    entries: tuple[EntryRow, ...]
    persons: tuple[PersonRow, ...] = ()

    @property
    def current_persons(self) -> tuple[PersonRow, ...]:
        """The persons not removed, in the order they were added."""
        return tuple(p for p in self.persons if p.current)


class CaseRepository:
    """Synchronous access to the case file; see ``AsyncCaseRepository`` for asyncio code."""

    def __init__(self, engine: Engine, bell: EventBell | None = None) -> None:
        """``bell`` is rung after every change that wrote case events."""
        self._engine = engine
        self._writer = for_writing(engine)
        self._bell = bell or EventBell()

    @translate_errors("case file: create case")
    def create_case(
        self,
        *,
        case_id: str,
        subject_pseudonym: str,
        case_type: str,
        phase: str,
        registered_by: str,
        wrapped_data_key: bytes,
        entries: Sequence[EntryRow],
        invitees: Sequence[tuple[str, str]],
        now: datetime,
        persons: Sequence[PersonRow] = (),
    ) -> CaseRow:
        """Register a case with its registrant, invitees, persons and entries in one
        transaction.

        ``invitees`` holds ``(partner_id, invited_by)`` pairs; the registrant and repeated
        partners are ignored.
        """
        row = self.create_case_once(
            None,
            case_id=case_id,
            subject_pseudonym=subject_pseudonym,
            case_type=case_type,
            phase=phase,
            registered_by=registered_by,
            wrapped_data_key=wrapped_data_key,
            entries=entries,
            invitees=invitees,
            now=now,
            persons=persons,
        )
        # Without a claim there is no earlier request to return.
        return cast(CaseRow, row)

    @translate_errors("case file: create case once")
    def create_case_once(
        self,
        claim: RequestClaim | None,
        *,
        case_id: str,
        subject_pseudonym: str,
        case_type: str,
        phase: str,
        registered_by: str,
        wrapped_data_key: bytes,
        entries: Sequence[EntryRow],
        invitees: Sequence[tuple[str, str]],
        now: datetime,
        persons: Sequence[PersonRow] = (),
        approach: str = "general",
        casusregie_partner: str = "",
    ) -> CaseRow | PriorRequest:
        """As ``create_case``, claiming the request id of ``claim`` (if any) in the same
        transaction: the new case, or the row of the first call with that id (then nothing
        was created)."""
        if claim is not None and claim.case_id != case_id:
            raise ValueError("the claim names another case")
        _require_aware(now)
        _check_entries(case_id, entries)
        _check_persons(case_id, persons)
        participants = [
            _participant(case_id, registered_by, ParticipantRole.REGISTRANT, registered_by, now)
        ]
        seen = {registered_by}
        for partner_id, invited_by in invitees:
            if partner_id not in seen:
                seen.add(partner_id)
                participants.append(
                    _participant(case_id, partner_id, ParticipantRole.INVITED, invited_by, now)
                )
        try:
            with self._writer.begin() as conn:
                if claim is not None and (prior := claim_request(conn, claim)) is not None:
                    return prior
                if _case_exists(conn, case_id):
                    raise DuplicateCase(case_id)
                conn.execute(
                    insert(cases).values(
                        case_id=case_id,
                        subject_pseudonym=subject_pseudonym,
                        case_type=case_type,
                        phase=phase,
                        registered_by=registered_by,
                        created_at=now,
                        closed_at=None,
                        wrapped_data_key=wrapped_data_key,
                        approach=approach,
                        intake="pending",
                        casusregie_partner=casusregie_partner,
                    )
                )
                conn.execute(insert(case_participants), participants)
                if persons:
                    conn.execute(insert(case_persons), [_person_params(p) for p in persons])
                if entries:
                    conn.execute(insert(case_entries), [_entry_params(e) for e in entries])
                # Each invitee (the ZVH among them) hears of the case it was added to.
                invited = sorted(seen - {registered_by})
                insert_case_events(conn, case_id, EVENT_INVITED, now, invited)
                row = _load_case(conn, case_id)
            self._bell.ring()
            return row
        except IntegrityError as exc:
            # A concurrent registration of the same id on PostgreSQL lands here.
            if self.get_case(case_id) is not None:
                raise DuplicateCase(case_id) from exc
            raise StoreError(f"case {case_id!r} violates a storage constraint") from exc

    @translate_errors("case file: get case")
    def get_case(self, case_id: str) -> CaseRow | None:
        with self._engine.begin() as conn:
            return _load_case_or_none(conn, case_id)

    @translate_errors("case file: snapshot")
    def snapshot(self, case_id: str) -> CaseSnapshot | None:
        """The case with all its entries: what one disclosure needs, in one round of reads."""
        with self._engine.begin() as conn:
            case = _load_case_or_none(conn, case_id)
            if case is None:
                return None
            rows = conn.execute(_ENTRIES_OF_CASE, {"case_id": case_id}).all()
            persons = conn.execute(_PERSONS_OF_CASE, {"case_id": case_id}).all()
        return CaseSnapshot(
            case, tuple(_entry(r) for r in rows), tuple(_person(r) for r in persons)
        )

    @translate_errors("case file: add participant")
    def add_participant(
        self, case_id: str, partner_id: str, invited_by: str, now: datetime
    ) -> CaseRow:
        """Invite a partner to the case; inviting a participant again changes nothing."""
        _require_aware(now)
        try:
            with self._writer.begin() as conn:
                require_live_case(conn, case_id)
                already = conn.execute(
                    select(case_participants.c.partner_id).where(
                        case_participants.c.case_id == case_id,
                        case_participants.c.partner_id == partner_id,
                    )
                ).first()
                if already is None:
                    conn.execute(
                        insert(case_participants).values(
                            _participant(
                                case_id, partner_id, ParticipantRole.INVITED, invited_by, now
                            )
                        )
                    )
                    insert_case_events(conn, case_id, EVENT_INVITED, now)
                row = _load_case(conn, case_id)
            self._bell.ring()
            return row
        except IntegrityError as exc:
            # Another replica invited the same partner between our check and insert.
            found = self.get_case(case_id)
            if found is not None and partner_id in found.participants:
                return found
            raise StoreError(f"participant of case {case_id!r} violates a constraint") from exc

    @translate_errors("case file: is participant")
    def is_participant(self, case_id: str, partner_id: str) -> bool:
        with self._engine.begin() as conn:
            found = conn.execute(
                select(case_participants.c.partner_id).where(
                    case_participants.c.case_id == case_id,
                    case_participants.c.partner_id == partner_id,
                )
            ).first()
        return found is not None

    @translate_errors("case file: participants")
    def participants(self, case_id: str) -> list[ParticipantRow]:
        """Participants with their role, registrant first."""
        with self._engine.begin() as conn:
            _require_case(conn, case_id)
            rows = conn.execute(_participants_query(case_id)).all()
        return [
            ParticipantRow(
                case_id=r.case_id,
                partner_id=r.partner_id,
                role_in_case=ParticipantRole(r.role_in_case),
                invited_by=r.invited_by,
                joined_at=r.joined_at,
            )
            for r in rows
        ]

    @translate_errors("case file: add entries")
    def add_entries(self, case_id: str, entries: Sequence[EntryRow]) -> None:
        _check_entries(case_id, entries)
        if not entries:
            return
        self._add_entries(None, case_id, entries)

    @translate_errors("case file: add entry once")
    def add_entry_once(self, claim: RequestClaim, entry: EntryRow) -> PriorRequest | None:
        """Add ``entry`` to case ``claim.case_id``, claiming the request id in the same
        transaction: None when it was added, else the row of the first call with that id
        (then nothing was added)."""
        if entry.entry_id != claim.entry_id:
            raise ValueError("the claim names another entry")
        _check_entries(claim.case_id, [entry])
        return self._add_entries(claim, claim.case_id, [entry])

    def _add_entries(
        self, claim: RequestClaim | None, case_id: str, entries: Sequence[EntryRow]
    ) -> PriorRequest | None:
        try:
            with self._writer.begin() as conn:
                if claim is not None and (prior := claim_request(conn, claim)) is not None:
                    return prior
                require_live_case(conn, case_id)
                conn.execute(insert(case_entries), [_entry_params(e) for e in entries])
                return None
        except IntegrityError as exc:
            raise StoreError(f"entries for case {case_id!r} violate a storage constraint") from exc

    @translate_errors("case file: persons")
    def persons(self, case_id: str) -> list[PersonRow]:
        """The persons of the case in the order they were added, removed ones included."""
        with self._engine.begin() as conn:
            _require_case(conn, case_id)
            rows = conn.execute(_PERSONS_OF_CASE, {"case_id": case_id}).all()
        return [_person(r) for r in rows]

    @translate_errors("case file: add person")
    def add_person_once(
        self, claim: RequestClaim | None, person: PersonRow, entries: Sequence[EntryRow]
    ) -> PersonRow | PriorRequest:
        """Add ``person`` with its identifying ``entries`` in one transaction, claiming the
        request id of ``claim`` (if any) in it: the new person, or the row of the first call
        with that id (then nothing was added)."""
        if claim is not None and (
            claim.case_id != person.case_id or claim.entry_id != person.person_id
        ):
            raise ValueError("the claim names another case or person")
        _check_persons(person.case_id, [person])
        _check_entries(person.case_id, entries)
        try:
            with self._writer.begin() as conn:
                if claim is not None and (prior := claim_request(conn, claim)) is not None:
                    return prior
                require_live_case(conn, person.case_id)
                conn.execute(insert(case_persons).values(_person_params(person)))
                if entries:
                    conn.execute(insert(case_entries), [_entry_params(e) for e in entries])
                return person
        except IntegrityError as exc:
            raise StoreError(
                f"person of case {person.case_id!r} violates a storage constraint"
            ) from exc

    @translate_errors("case file: remove person")
    def remove_person(
        self, case_id: str, person_id: str, removed_by: str, now: datetime
    ) -> PersonRow:
        """Mark the person removed (soft: its row and entries stay). Removing a removed
        person changes nothing and returns it as it is."""
        _require_aware(now)
        with self._writer.begin() as conn:
            require_live_case(conn, case_id)
            conn.execute(
                update(case_persons)
                .where(
                    case_persons.c.case_id == case_id,
                    case_persons.c.person_id == person_id,
                    case_persons.c.removed_at.is_(None),
                )
                .values(removed_by=removed_by, removed_at=now)
            )
            return _load_person(conn, case_id, person_id)

    @translate_errors("case file: identify person")
    def identify_person(
        self, case_id: str, person_id: str, bsn_pseudonym: str, entry: EntryRow
    ) -> PersonRow:
        """Record the keyed pseudonym of a BSN learnt later, and the BSN's entry, for a current
        person without one (``PersonConflict`` otherwise): the person is then identified by
        BSN. The person's pseudonym stays."""
        _check_entries(case_id, [entry])
        with self._writer.begin() as conn:
            require_live_case(conn, case_id)
            changed = conn.execute(
                update(case_persons)
                .where(
                    case_persons.c.case_id == case_id,
                    case_persons.c.person_id == person_id,
                    case_persons.c.removed_at.is_(None),
                    case_persons.c.bsn_pseudonym.is_(None),
                )
                .values(bsn_pseudonym=bsn_pseudonym, identified_by=IdentifiedBy.BSN.value)
            ).rowcount
            person = _load_person(conn, case_id, person_id)
            if changed == 0:
                state = "removed" if person.removed_at is not None else "identified by BSN"
                raise PersonConflict(case_id, person_id, state)
            conn.execute(insert(case_entries).values(_entry_params(entry)))
            return person

    @translate_errors("case file: prune request ids")
    def prune_request_ids(self, before: datetime) -> int:
        """Forget request ids first used before ``before``."""
        return prune_request_ids(self._engine, before)

    @translate_errors("case file: latest entries")
    def latest_entries(self, case_id: str, fields: Collection[str]) -> dict[str, EntryRow]:
        """The newest entry of each requested field that has one.

        Newest means latest ``created_at``; entries created at the same moment are ordered by
        ``entry_id``.
        """
        if not fields:
            return {}
        rank = (
            func.row_number()
            .over(
                partition_by=case_entries.c.field,
                order_by=(case_entries.c.created_at.desc(), case_entries.c.entry_id.desc()),
            )
            .label("rank")
        )
        ranked = (
            select(*case_entries.c, rank)
            .where(case_entries.c.case_id == case_id, case_entries.c.field.in_(list(fields)))
            .subquery()
        )
        query = select(*(ranked.c[c.name] for c in case_entries.c)).where(ranked.c.rank == 1)
        with self._engine.begin() as conn:
            rows = conn.execute(query).all()
        return {r.field: _entry(r) for r in rows}

    @translate_errors("case file: entries")
    def entries(self, case_id: str, field: str) -> list[EntryRow]:
        """Every entry of one field, oldest first (notes accumulate)."""
        query = (
            select(case_entries)
            .where(case_entries.c.case_id == case_id, case_entries.c.field == field)
            .order_by(case_entries.c.created_at, case_entries.c.entry_id)
        )
        with self._engine.begin() as conn:
            return [_entry(r) for r in conn.execute(query)]

    @translate_errors("case file: set phase")
    def set_phase(
        self,
        case_id: str,
        phase: str,
        *,
        expected_phase: str | None = None,
        closed_at: datetime | None = None,
        now: datetime | None = None,
    ) -> CaseRow:
        """Move the case to ``phase``.

        With ``expected_phase`` the move happens only if the case is still in that phase,
        otherwise ``PhaseConflict``. ``closed_at`` records the closure moment that starts the
        retention clock. A shredded case keeps its phase (``CaseShredded``).
        """
        values: dict[str, Any] = {"phase": phase}
        if closed_at is not None:
            _require_aware(closed_at)
            values["closed_at"] = closed_at
        condition = and_(cases.c.case_id == case_id, cases.c.shredded_at.is_(None))
        if expected_phase is not None:
            condition = and_(condition, cases.c.phase == expected_phase)
        with self._writer.begin() as conn:
            changed = conn.execute(update(cases).where(condition).values(values)).rowcount
            if changed == 0:
                actual = conn.execute(
                    select(cases.c.phase, cases.c.shredded_at).where(cases.c.case_id == case_id)
                ).first()
                if actual is None:
                    raise CaseNotFound(case_id)
                if actual.shredded_at is not None:
                    raise CaseShredded(case_id)
                raise PhaseConflict(case_id, expected_phase or "", actual.phase)
            at = now or closed_at or datetime.now(UTC)
            insert_case_events(conn, case_id, EVENT_PHASE_CHANGED, at)
            row = _load_case(conn, case_id)
        self._bell.ring()
        return row

    @translate_errors("case file: find cases by subject")
    def find_cases_by_subject(self, subject_pseudonym: str) -> list[CaseRow]:
        """Every case of the subject, oldest first."""
        with self._engine.begin() as conn:
            ids = (
                conn.execute(
                    select(cases.c.case_id)
                    .where(cases.c.subject_pseudonym == subject_pseudonym)
                    .order_by(cases.c.created_at, cases.c.case_id)
                )
                .scalars()
                .all()
            )
            return [_load_case(conn, case_id) for case_id in ids]

    @translate_errors("case file: delete case")
    def delete_case(self, case_id: str) -> None:
        """Remove a case, its participants, entries and wrapped data key.

        The end of retention does not remove the case: it shreds it and keeps the case row
        (see ``gateway.store.retention``).
        """
        with self._writer.begin() as conn:
            _require_case(conn, case_id)
            conn.execute(delete(case_entries).where(case_entries.c.case_id == case_id))
            conn.execute(delete(case_persons).where(case_persons.c.case_id == case_id))
            conn.execute(delete(case_participants).where(case_participants.c.case_id == case_id))
            conn.execute(delete(cases).where(cases.c.case_id == case_id))


def _check_entries(case_id: str, entries: Sequence[EntryRow]) -> None:
    for entry in entries:
        if entry.case_id != case_id:
            raise ValueError(f"entry {entry.entry_id!r} belongs to another case")
        _require_aware(entry.created_at)


def _check_persons(case_id: str, persons: Sequence[PersonRow]) -> None:
    for person in persons:
        if person.case_id != case_id:
            raise ValueError(f"person {person.person_id!r} belongs to another case")
        _require_aware(person.added_at)


def _person_params(person: PersonRow) -> dict[str, Any]:
    return {
        "case_id": person.case_id,
        "person_id": person.person_id,
        "role_in_case": person.role_in_case,
        "pseudonym": person.pseudonym,
        "bsn_pseudonym": person.bsn_pseudonym,
        "identified_by": person.identified_by.value,
        "added_by": person.added_by,
        "added_at": person.added_at,
        "removed_by": person.removed_by,
        "removed_at": person.removed_at,
    }


def _person(row: Row[Any]) -> PersonRow:
    return PersonRow(
        case_id=row.case_id,
        person_id=row.person_id,
        role_in_case=row.role_in_case,
        pseudonym=row.pseudonym,
        identified_by=IdentifiedBy(row.identified_by),
        added_by=row.added_by,
        added_at=row.added_at,
        bsn_pseudonym=row.bsn_pseudonym,
        removed_by=row.removed_by,
        removed_at=row.removed_at,
    )


def _load_person(conn: Connection, case_id: str, person_id: str) -> PersonRow:
    row = conn.execute(
        select(case_persons).where(
            case_persons.c.case_id == case_id, case_persons.c.person_id == person_id
        )
    ).first()
    if row is None:
        raise PersonNotFound(case_id, person_id)
    return _person(row)


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime; the case file keeps aware UTC times only")


def _participant(
    case_id: str, partner_id: str, role: ParticipantRole, invited_by: str, now: datetime
) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "partner_id": partner_id,
        "role_in_case": role.value,
        "invited_by": invited_by,
        "joined_at": now,
    }


def _entry_params(entry: EntryRow) -> dict[str, Any]:
    return {
        "entry_id": entry.entry_id,
        "case_id": entry.case_id,
        "field": entry.field,
        "person_id": entry.person_id,
        "ciphertext": entry.ciphertext,
        "created_by": entry.created_by,
        "created_at": entry.created_at,
    }


def _entry(row: Row[Any]) -> EntryRow:
    return EntryRow(
        entry_id=row.entry_id,
        case_id=row.case_id,
        field=row.field,
        ciphertext=bytes(row.ciphertext),
        created_by=row.created_by,
        created_at=row.created_at,
        person_id=row.person_id,
    )


def _case_exists(conn: Connection, case_id: str) -> bool:
    found = conn.execute(select(cases.c.case_id).where(cases.c.case_id == case_id)).first()
    return found is not None


def _require_case(conn: Connection, case_id: str) -> None:
    if not _case_exists(conn, case_id):
        raise CaseNotFound(case_id)


def require_live_case(conn: Connection, case_id: str) -> None:
    """The case exists and was not shredded; for a write that adds to it.

    On PostgreSQL the case row stays share-locked until the writing transaction ends: a
    shredding that claims the case meanwhile waits for it and then deletes what it added,
    and a shredding that committed first is seen here. SQLite runs one writer at a time.
    """
    row = conn.execute(
        select(cases.c.shredded_at).where(cases.c.case_id == case_id).with_for_update(read=True)
    ).first()
    if row is None:
        raise CaseNotFound(case_id)
    if row.shredded_at is not None:
        raise CaseShredded(case_id)


def _participants_query(case_id: str) -> Select[Any]:
    registrant_first = case_participants.c.role_in_case != ParticipantRole.REGISTRANT.value
    return (
        select(case_participants)
        .where(case_participants.c.case_id == case_id)
        .order_by(registrant_first, case_participants.c.joined_at, case_participants.c.partner_id)
    )


# Statements on the read path of every disclosure are built once; building a statement
# costs more than SQLAlchemy's cached compilation of it.
_CASE_BY_ID = select(cases).where(cases.c.case_id == bindparam("case_id"))
_PARTICIPANT_IDS = (
    select(case_participants.c.partner_id)
    .where(case_participants.c.case_id == bindparam("case_id"))
    .order_by(
        case_participants.c.role_in_case != ParticipantRole.REGISTRANT.value,
        case_participants.c.joined_at,
        case_participants.c.partner_id,
    )
)
_PERSONS_OF_CASE = (
    select(case_persons)
    .where(case_persons.c.case_id == bindparam("case_id"))
    .order_by(case_persons.c.added_at, case_persons.c.person_id)
)
_ENTRIES_OF_CASE = (
    select(case_entries)
    .where(case_entries.c.case_id == bindparam("case_id"))
    .order_by(case_entries.c.created_at, case_entries.c.entry_id)
)


def _load_case(conn: Connection, case_id: str) -> CaseRow:
    case = _load_case_or_none(conn, case_id)
    if case is None:
        raise CaseNotFound(case_id)
    return case


def _load_case_or_none(conn: Connection, case_id: str) -> CaseRow | None:
    row = conn.execute(_CASE_BY_ID, {"case_id": case_id}).first()
    if row is None:
        return None
    partners = conn.execute(_PARTICIPANT_IDS, {"case_id": case_id}).scalars().all()
    return CaseRow(
        case_id=row.case_id,
        subject_pseudonym=row.subject_pseudonym,
        case_type=row.case_type,
        phase=row.phase,
        registered_by=row.registered_by,
        created_at=row.created_at,
        closed_at=row.closed_at,
        wrapped_data_key=bytes(row.wrapped_data_key),
        participants=tuple(partners),
        shredded_at=row.shredded_at,
        **{name: getattr(row, name) for name in REGIE_COLUMNS},
    )


# For the other stores that write to a case in their own transaction (gateway.store.case_work).
entry_params = _entry_params
load_case = _load_case
