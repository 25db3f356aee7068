"""In-memory fakes of the use cases' ports (gateway.broker.ports, gateway.broker.sources).

They keep what the use cases write in dicts and lists, so a use-case test runs without a
database, a log writer or gRPC. They do what the protocols promise and no more: no
transactions to roll back, no request-id claims (the tests send no request ids).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gateway.broker.log_events import AuditEvent, LogRecord, RecordKind
from gateway.broker.sources import FetchContext, FetchResult, LookupResult, Subject
from gateway.store.cases import CaseRow, CaseSnapshot, EntryRow, PersonRow
from gateway.store.errors import CaseNotFound, PersonConflict, PersonNotFound
from gateway.store.request_ids import PriorRequest, RequestClaim


class FakeCaseStore:
    """The case store and the case reader over the same dicts."""

    def __init__(self) -> None:
        self.cases: dict[str, CaseRow] = {}
        self.entries: dict[str, list[EntryRow]] = {}
        self.people: dict[str, list[PersonRow]] = {}

    # -- CaseLookup / CaseStore -----------------------------------------------------------

    def get_case(self, case_id: str) -> CaseRow | None:
        return self.cases.get(case_id)

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
        assert claim is None, "the fake keeps no request ids"
        participants = (registered_by, *sorted({p for p, _ in invitees} - {registered_by}))
        row = CaseRow(
            case_id=case_id,
            subject_pseudonym=subject_pseudonym,
            case_type=case_type,
            phase=phase,
            registered_by=registered_by,
            created_at=now,
            closed_at=None,
            wrapped_data_key=wrapped_data_key,
            participants=participants,
            approach=approach,
            casusregie_partner=casusregie_partner,
        )
        self.cases[case_id] = row
        self.entries[case_id] = list(entries)
        self.people[case_id] = list(persons)
        return row

    def add_participant(
        self, case_id: str, partner_id: str, invited_by: str, now: datetime
    ) -> CaseRow:
        case = self._case(case_id)
        if partner_id not in case.participants:
            case = self.change(case_id, participants=(*case.participants, partner_id))
        return case

    def add_entries(self, case_id: str, entries: Sequence[EntryRow]) -> None:
        self._case(case_id)
        self.entries[case_id].extend(entries)

    def add_entry_once(self, claim: RequestClaim, entry: EntryRow) -> PriorRequest | None:
        raise AssertionError("the fake keeps no request ids")

    def persons(self, case_id: str) -> list[PersonRow]:
        return list(self.people.get(case_id, []))

    def add_person_once(
        self, claim: RequestClaim | None, person: PersonRow, entries: Sequence[EntryRow]
    ) -> PersonRow | PriorRequest:
        assert claim is None, "the fake keeps no request ids"
        self._case(person.case_id)
        self.people[person.case_id].append(person)
        self.entries[person.case_id].extend(entries)
        return person

    def remove_person(
        self, case_id: str, person_id: str, removed_by: str, now: datetime
    ) -> PersonRow:
        person = self._person(case_id, person_id)
        if not person.current:
            return person
        return self._replace_person(person, removed_by=removed_by, removed_at=now)

    def identify_person(
        self, case_id: str, person_id: str, bsn_pseudonym: str, entry: EntryRow
    ) -> PersonRow:
        person = self._person(case_id, person_id)
        if not person.current:
            raise PersonConflict(case_id, person_id, "removed")
        if person.bsn_pseudonym is not None:
            raise PersonConflict(case_id, person_id, "identified already")
        self.entries[case_id].append(entry)
        return self._replace_person(person, bsn_pseudonym=bsn_pseudonym)

    def set_phase(
        self,
        case_id: str,
        phase: str,
        *,
        expected_phase: str | None = None,
        closed_at: datetime | None = None,
        now: datetime | None = None,
    ) -> CaseRow:
        case = self._case(case_id)
        assert expected_phase in (None, case.phase)
        return self.change(case_id, phase=phase, closed_at=closed_at or case.closed_at)

    def prune_request_ids(self, before: datetime) -> int:
        return 0

    # -- CaseReader -----------------------------------------------------------------------

    async def read(self, case_id: str) -> CaseSnapshot | None:
        case = self.cases.get(case_id)
        if case is None:
            return None
        return CaseSnapshot(case, tuple(self.entries[case_id]), tuple(self.people[case_id]))

    # -- for the tests --------------------------------------------------------------------

    def change(self, case_id: str, **changes: object) -> CaseRow:
        """Change the case's row as another use case would (an intake, a regie transfer)."""
        row = dataclasses.replace(self._case(case_id), **changes)  # type: ignore[arg-type]
        self.cases[case_id] = row
        return row

    def _case(self, case_id: str) -> CaseRow:
        case = self.cases.get(case_id)
        if case is None:
            raise CaseNotFound(case_id)
        return case

    def _person(self, case_id: str, person_id: str) -> PersonRow:
        for person in self.people.get(case_id, []):
            if person.person_id == person_id:
                return person
        raise PersonNotFound(case_id, person_id)

    def _replace_person(self, person: PersonRow, **changes: object) -> PersonRow:
        people = self.people[person.case_id]
        new = dataclasses.replace(person, **changes)  # type: ignore[arg-type]
        people[people.index(person)] = new
        return new


class FakeLog:
    """The accountability log as a list: appended events, in order, with a seq each."""

    def __init__(self) -> None:
        self.records: list[LogRecord] = []

    @property
    def events(self) -> list[AuditEvent]:
        return [r.event for r in self.records]

    def of_kind(self, kind: RecordKind) -> list[AuditEvent]:
        return [e for e in self.events if e.kind == kind]

    async def append(self, event: AuditEvent) -> LogRecord:
        return (await self.append_many([event]))[0]

    async def append_many(self, events: Sequence[AuditEvent]) -> list[LogRecord]:
        added = []
        for event in events:
            seq = len(self.records) + 1
            record = LogRecord(seq, event, prev_hash="", record_hash="", recorded_at=_NOW)
            self.records.append(record)
            added.append(record)
        return added

    def list_records(
        self,
        *,
        partner_id: str | None = None,
        case_id: str | None = None,
        subject_pseudonym: str | None = None,
        kinds: Collection[RecordKind] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after_seq: int = 0,
        limit: int = 100,
    ) -> list[LogRecord]:
        found = [
            r for r in self.records
            if r.seq > after_seq
            and (partner_id is None or r.event.partner_id == partner_id)
            and (case_id is None or r.event.case_id == case_id)
            and (subject_pseudonym is None or r.event.subject_pseudonym == subject_pseudonym)
            and (kinds is None or r.event.kind in kinds)
            and (since is None or r.event.occurred_at >= since)
            and (until is None or r.event.occurred_at < until)
        ]
        return found[:limit]


@dataclass(frozen=True)
class Fetch:
    """One fetch a fake source was asked: about whom, and which fields."""

    subject: Subject
    fields: tuple[str, ...]
    purpose: str


@dataclass
class FakeSource:
    """A partner's system that knows some persons by BSN or name, and records every call."""

    known: Mapping[str, Mapping[str, str]]  # a BSN or name -> the fields it holds
    fetches: list[Fetch] = field(default_factory=list)
    lookups: list[Subject] = field(default_factory=list)
    # Fields it cannot supply just now (named unavailable whenever asked).
    down: frozenset[str] = frozenset()

    def _held(self, subject: Subject) -> Mapping[str, str]:
        return self.known.get(subject.bsn) or self.known.get(subject.name) or {}

    async def fetch(
        self, subject: Subject, fields: Sequence[str], ctx: FetchContext, *, timeout_s: float
    ) -> FetchResult:
        self.fetches.append(Fetch(subject, tuple(fields), ctx.purpose))
        held = self._held(subject)
        return FetchResult(
            {f: held[f] for f in fields if f in held and f not in self.down},
            frozenset(f for f in fields if f in self.down),
        )

    async def lookup(self, subject: Subject, triage_id: str, *, timeout_s: float) -> LookupResult:
        self.lookups.append(subject)
        return LookupResult(known=bool(self._held(subject)))

    async def close(self) -> None:
        return None


_NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
