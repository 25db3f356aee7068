"""Use cases on the ZVH's own case file: register, invite, add entries, change phase.

The case file is the one thing the gateway keeps itself (DESIGN §2.0). Every value in it is
encrypted under the case's data key; the store sees ciphertext only. Each change is also an
accountability record, naming fields but never their values.

A registration or entry that comes with a request id is done once per partner and id: a
resend is answered as the first call was (:mod:`gateway.broker.request_ids`). Creating and
recording run to completion even when the caller stops waiting, so a case is never left
without its record by a caller's timeout.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from gateway.broker.caller import Principal, TraceContext
from gateway.broker.case_access import CaseAccess
from gateway.broker.case_entries import seal_entry
from gateway.broker.case_reading import SHREDDED_MESSAGE, CaseReading
from gateway.broker.completion import run_to_completion
from gateway.broker.context import BrokerContext
from gateway.broker.errors import (
    CaseShredded,
    InvalidRequest,
    PhaseMismatch,
)
from gateway.broker.free_texts import FreeTexts
from gateway.broker.ids import new_id
from gateway.broker.log_events import RecordKind, detail_of
from gateway.broker.persons import (
    PersonInput,
    identified_by,
    validate_person,
    validate_persons,
)
from gateway.broker.records import event
from gateway.broker.regie import (
    initial_casusregie,
    registration_approach,
    zvh_partners,
)
from gateway.broker.request_ids import ADD_TO_CASE_FILE, REGISTER_CASE, RequestIds
from gateway.broker.sources import Subject
from gateway.broker.text_classes import (
    classification_of,
    classified_field,
)
from gateway.core import CompiledPolicy, UnknownPartner
from gateway.crypto.envelope import (
    DataKey,
    wrap_data_key,
)
from gateway.crypto.free_text import KeyScope, TextClass, TextKind
from gateway.crypto.pseudonym import person_pseudonym, subject_pseudonym
from gateway.store.cases import CaseRow, EntryRow, PersonRow
from gateway.store.errors import CaseShredded as StoreCaseShredded
from gateway.store.errors import PhaseConflict
from gateway.store.request_ids import PriorRequest

INITIAL_PHASE = "registration"
# Moving a case into this phase closes it: the moment is kept and starts the retention clock.
CLOSING_PHASE = "closure"
# Fields of the ZVH case file that participants may add to after registration.
# The case-file fields partners write after registration (the subject's identity and the
# reason are set by the registration itself).
WRITABLE_FIELDS = frozenset({
    "case.notes", "case.goal", "case.concerns", "case.plan_actions", "case.action_owners",
    "case.closure_reason",
})
JUSTIFICATION_FIELD = "case.justification"
# Why a case escalated (CaseService.Escalate): an entry reopens the break-glass window.
ESCALATION_FIELD = "case.escalation_reason"
MAX_TEXT_CHARS = 20_000
_CASE_TYPE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
# The one date form taken: date.fromisoformat also takes 19840307 and 1984-W10-3, which the
# transforms (year_only) and the partners' systems read differently or not at all.
# The role claim of the ZVH's process director; it counts only for the case's procesregie holder.
PHASE_DIRECTOR_ROLE = "process_director"


class PersonLookup(Protocol):
    """Whether a person id names a person of the case (gateway.store.case_plan)."""

    def has_person(self, case_id: str, person_id: str) -> bool: ...


class _NoPersons:
    def has_person(self, case_id: str, person_id: str) -> bool:
        return False


@dataclass(frozen=True)
class Registration:
    """A case to register: its persons, or (the older form) one ``subject`` who is the one
    person with role "subject"; never both."""

    subject: Subject | None
    # Deprecated alias of the approach (an approach id, or empty).
    case_type: str
    reason: str
    goal: str
    invitees: tuple[str, ...]
    persons: tuple[PersonInput, ...] = ()
    # Free-text classes of reason and concerns (gateway.broker.text_classes); "" = ordinary.
    reason_classification: str = ""
    concerns: str = ""
    concerns_classification: str = ""
    approach: str = ""
    casusregie_partner: str = ""

    def all_persons(self) -> tuple[PersonInput, ...]:
        if self.persons or self.subject is None:
            return self.persons
        return (PersonInput.of_subject(self.subject),)


@dataclass(frozen=True)
class PersonRef:
    """A person as an answer names it: id and role in the case, never a value."""

    person_id: str
    role_in_case: str


@dataclass(frozen=True)
class _Placement:
    """What registration decides beyond the content: approach, casusregie, participants."""

    approach: str
    casusregie: str
    invitees: tuple[str, ...]


@dataclass(frozen=True)
class CaseView:
    case_id: str
    phase: str
    participants: tuple[str, ...]
    log_seq: int
    persons: tuple[PersonRef, ...] = ()


class CaseFile:
    def __init__(
        self,
        ctx: BrokerContext,
        *,
        texts: FreeTexts,
        requests: RequestIds | None = None,
        persons: PersonLookup | None = None,
    ) -> None:
        """``persons`` answers whether an entry's person_id is a person of the case; without
        it every person_id is refused."""
        self._ctx = ctx
        self._texts = texts
        self._requests = requests or RequestIds(ctx)
        self._persons = persons or _NoPersons()
        self._reading = CaseReading(ctx)
        self._access = CaseAccess(ctx)

    async def register(
        self, who: Principal, trace: TraceContext, reg: Registration, request_id: str = ""
    ) -> CaseView:
        """Register a case; with ``request_id``, once per caller and id (a resend gets the
        first call's case)."""
        policy = self._ctx.policy.current  # read once: a reload mid-request does not split it
        self._validate_registration(policy, reg)
        placement = _placement(policy, who, reg)
        return await run_to_completion(
            self._register(who, trace, policy, reg, placement, request_id)
        )

    async def _register(
        self,
        who: Principal,
        trace: TraceContext,
        policy: CompiledPolicy,
        reg: Registration,
        placement: _Placement,
        request_id: str,
    ) -> CaseView:
        ctx = self._ctx
        case_id = new_id("c_")
        now = ctx.clock()
        data_key = DataKey.generate()
        wrapped = wrap_data_key(data_key, ctx.keystore.current_kek, case_id)
        values = {**_classified_texts(reg), "case.goal": reg.goal}
        entries = [
            seal_entry(data_key, case_id, field, text, who.partner_id, now)
            for field, text in values.items()
            if text
        ]
        persons: list[PersonRow] = []
        for i, given in enumerate(reg.all_persons()):
            # A microsecond apart, so the store lists them in the order they were given.
            person, person_entries = self.new_person(
                case_id, given, who, now + timedelta(microseconds=i), data_key
            )
            persons.append(person)
            entries.extend(person_entries)
        # The case's own index entry is the first person's pseudonym.
        pseudonym = persons[0].pseudonym
        claim = (
            self._requests.claim(
                who,
                request_id,
                REGISTER_CASE,
                registration_content(reg),
                case_id=case_id,
                entry_id="",
                now=now,
            )
            if request_id
            else None
        )
        create = functools.partial(
            ctx.cases.create_case_once,
            claim,
            case_id=case_id,
            subject_pseudonym=pseudonym,
            case_type=placement.approach,
            phase=INITIAL_PHASE,
            registered_by=who.partner_id,
            wrapped_data_key=wrapped.to_bytes(),
            entries=entries,
            invitees=[(p, who.partner_id) for p in placement.invitees if p != who.partner_id],
            now=now,
            persons=persons,
            approach=placement.approach,
            casusregie_partner=placement.casusregie,
        )
        row = await asyncio.to_thread(create)
        if isinstance(row, PriorRequest):
            assert claim is not None  # only a claim finds an earlier request
            self._requests.check_same(claim, row)
            replay = await self._requests.replay(who, trace, policy, row)
            participants = registered_participants(who.partner_id, placement.invitees)
            first = await asyncio.to_thread(self._ctx.cases.persons, row.case_id)
            return CaseView(
                row.case_id, INITIAL_PHASE, participants, replay.seq, _refs(first)
            )
        # Every record carries one pseudonym: the registration the first person's, and each
        # further person a `person_added` record of its own (naming the registration by the
        # first person's role and the count), so that an access request about any of them
        # finds the registration. All in one commit.
        at = ctx.clock()
        records = await ctx.log.append_many([
            event(
                RecordKind.REGISTRATION if i == 0 else RecordKind.PERSON_ADDED,
                principal=who,
                trace=trace,
                at=at,
                case_id=case_id,
                subject_pseudonym=p.pseudonym,
                subject_id_type=p.subject_id_type,
                phase=INITIAL_PHASE,
                policy_version=policy.version,
                detail=(
                    _persons_detail(persons)
                    if i == 0
                    else detail_of(person_role=p.role_in_case, registered_with=len(persons))
                ),
            )
            for i, p in enumerate(persons)
        ])
        record = records[0]
        if request_id:
            await self._requests.maybe_prune(now)
        return CaseView(case_id, row.phase, row.participants, record.seq, _refs(persons))

    def new_person(
        self, case_id: str, given: PersonInput, who: Principal, now: datetime, key: DataKey
    ) -> tuple[PersonRow, list[EntryRow]]:
        """A person row with a fresh id and its pseudonym, and its identity as encrypted
        entries carrying its id; nothing is stored yet."""
        person_id = new_id("p_")
        pseudonym_key = self._ctx.keystore.pseudonym_key
        bsn_pseudonym = subject_pseudonym(pseudonym_key, given.bsn) if given.bsn else None
        person = PersonRow(
            case_id=case_id,
            person_id=person_id,
            role_in_case=given.role_in_case,
            pseudonym=bsn_pseudonym or person_pseudonym(pseudonym_key, person_id),
            identified_by=identified_by(given),
            added_by=who.partner_id,
            added_at=now,
            bsn_pseudonym=bsn_pseudonym,
        )
        entries = [
            seal_entry(key, case_id, field, text, who.partner_id, now, person_id)
            for field, text in given.values().items()
        ]
        return person, entries

    async def invite(
        self, who: Principal, trace: TraceContext, case_id: str, partner_id: str
    ) -> CaseView:
        policy = self._ctx.policy.current
        case = await self._access.participating_case(who, trace, policy, case_id, "invite")
        await self._access.require_procesregisseur(who, trace, policy, case, "invites partners to")
        known_partner(policy, partner_id)
        now = self._ctx.clock()
        try:
            row = await asyncio.to_thread(
                self._ctx.cases.add_participant, case_id, partner_id, who.partner_id, now
            )
        except StoreCaseShredded:
            raise await self._access.shredded(who, trace, policy, case) from None
        record = await self._ctx.record(
            RecordKind.INVITATION,
            who,
            trace,
            policy,
            case_id=case_id,
            subject_pseudonym=case.subject_pseudonym,
            phase=case.phase,
        )
        return CaseView(case_id, row.phase, row.participants, record.seq)

    async def add_entry(
        self,
        who: Principal,
        trace: TraceContext,
        case_id: str,
        field: str,
        text: str,
        request_id: str = "",
        *,
        classification: str = "",
        person_id: str = "",
    ) -> tuple[str, int]:
        """Add an entry; with ``request_id``, once per caller and id (a resend gets the first
        call's entry id). The entry id and the seq of the record that accounts for the call.

        The entry is stored under the field of its ``classification`` (case.notes ->
        case.notes.health, ...; gateway.broker.text_classes); ``person_id`` names the person
        of the case it is about."""
        if field not in WRITABLE_FIELDS:
            raise InvalidRequest(f"field must be one of {sorted(WRITABLE_FIELDS)}")
        if not text.strip() or len(text) > MAX_TEXT_CHARS:
            raise InvalidRequest(f"text must be 1..{MAX_TEXT_CHARS} characters")
        field = classified_field(field, classification_of(classification))
        policy = self._ctx.policy.current
        case = await self._access.participating_case(
            who, trace, policy, case_id, "add to the case file of"
        )
        if person_id and not await asyncio.to_thread(
            self._persons.has_person, case_id, person_id
        ):
            raise InvalidRequest("person_id names no person of this case")
        return await run_to_completion(
            self._add_entry(who, trace, policy, case, field, text, request_id, person_id)
        )

    async def _add_entry(
        self,
        who: Principal,
        trace: TraceContext,
        policy: CompiledPolicy,
        case: CaseRow,
        field: str,
        text: str,
        request_id: str,
        person_id: str = "",
    ) -> tuple[str, int]:
        case_id = case.case_id
        now = self._ctx.clock()
        key = self._reading.data_key(case)
        entry = seal_entry(key, case_id, field, text, who.partner_id, now, person_id)
        try:
            if not request_id:
                await asyncio.to_thread(self._ctx.cases.add_entries, case_id, [entry])
            else:
                claim = self._requests.claim(
                    who,
                    request_id,
                    ADD_TO_CASE_FILE,
                    (case_id, field, text, *((person_id,) if person_id else ())),
                    case_id=case_id,
                    entry_id=entry.entry_id,
                    now=now,
                )
                prior = await asyncio.to_thread(self._ctx.cases.add_entry_once, claim, entry)
                if prior is not None:
                    self._requests.check_same(claim, prior)
                    replay = await self._requests.replay(who, trace, policy, prior)
                    return prior.entry_id, replay.seq
        except StoreCaseShredded:
            raise await self._access.shredded(who, trace, policy, case) from None
        record = await self._ctx.record(
            RecordKind.CASE_NOTE,
            who,
            trace,
            policy,
            case_id=case_id,
            subject_pseudonym=case.subject_pseudonym,
            phase=case.phase,
            # Names the entry, so that a resent call's replay record can point at this one.
            detail=detail_of(entry_id=entry.entry_id),
        )
        if request_id:
            await self._requests.maybe_prune(now)
        return entry.entry_id, record.seq

    async def change_phase(
        self, who: Principal, trace: TraceContext, case_id: str, from_phase: str, to_phase: str
    ) -> CaseView:
        policy = self._ctx.policy.current
        if to_phase not in policy.phases:
            raise InvalidRequest(f"unknown phase {to_phase!r}; known: {', '.join(policy.phases)}")
        case = await self._access.participating_case(
            who, trace, policy, case_id, "change the phase of"
        )
        await self._access.require_procesregisseur(who, trace, policy, case, "changes the phase of")
        # Moving into the closing phase records the moment (a case reopened and closed again
        # starts its retention clock anew). A reopened case keeps the old moment, but
        # retention passes over cases that are not in the closing phase.
        closes = to_phase == CLOSING_PHASE and from_phase != CLOSING_PHASE
        try:
            row = await asyncio.to_thread(
                self._ctx.cases.set_phase,
                case_id,
                to_phase,
                expected_phase=from_phase,
                closed_at=self._ctx.clock() if closes else None,
                now=self._ctx.clock(),
            )
        except PhaseConflict as exc:
            raise PhaseMismatch(f"the case is in phase {case.phase!r}, not {from_phase!r}") from exc
        except StoreCaseShredded:
            raise await self._access.shredded(who, trace, policy, case) from None
        record = await self._ctx.record(
            RecordKind.PHASE_CHANGE,
            who,
            trace,
            policy,
            case_id=case_id,
            subject_pseudonym=case.subject_pseudonym,
            phase=to_phase,
        )
        return CaseView(case_id, row.phase, row.participants, record.seq)

    async def justification_entry(self, who: Principal, case: CaseRow, text: str) -> EntryRow:
        """A break-glass justification as an encrypted case-file entry, not yet stored: its
        id goes into the disclosure's log record, which is written first.

        Encrypted under the case's privacy-officer text key, not the case's data key: it is
        for the privacy officer who reviews the break-glass use, not for the case's partners
        (``gateway.crypto.free_text``; key ``privacy_officer/case/<case id>``, kind
        ``justification``, row the entry id)."""
        if case.shredded_at is not None:
            raise CaseShredded(SHREDDED_MESSAGE)
        entry_id = new_id("e_")
        try:
            sealed = await asyncio.to_thread(
                self._texts.seal,
                text,
                text_class=TextClass.PRIVACY_OFFICER,
                kind=TextKind.JUSTIFICATION,
                row_id=entry_id,
                scope=KeyScope.CASE,
                scope_id=case.case_id,
            )
        except StoreCaseShredded:
            raise CaseShredded(SHREDDED_MESSAGE) from None
        return EntryRow(
            entry_id=entry_id,
            case_id=case.case_id,
            field=JUSTIFICATION_FIELD,
            ciphertext=sealed.ciphertext,
            created_by=who.partner_id,
            created_at=self._ctx.clock(),
        )

    async def store_justification(self, entry: EntryRow) -> None:
        """Keep a justification built by ``justification_entry`` in the case file."""
        try:
            await asyncio.to_thread(self._ctx.cases.add_entries, entry.case_id, [entry])
        except StoreCaseShredded:
            raise CaseShredded(SHREDDED_MESSAGE) from None

    def new_entry(self, case: CaseRow, field: str, text: str, by: str) -> EntryRow:
        """A case-file entry of ``field`` encrypted under the case's data key, not yet stored
        (the use cases that change a case store it in the transaction of their change)."""
        key = self._reading.data_key(case)
        return seal_entry(key, case.case_id, field, text, by, self._ctx.clock())

    def _validate_registration(self, policy: CompiledPolicy, reg: Registration) -> None:
        if reg.subject is not None and reg.persons:
            raise InvalidRequest("give persons or subject, not both")
        if reg.persons:
            validate_persons(policy, reg.persons)
        elif reg.subject is not None:
            validate_person(policy, PersonInput.of_subject(reg.subject), "subject")
        else:
            validate_persons(policy, ())
        if reg.case_type and not _CASE_TYPE.match(reg.case_type):
            raise InvalidRequest("case_type must be a lower-case id such as 'code_rood'")
        if not reg.reason.strip() or len(reg.reason) > MAX_TEXT_CHARS:
            raise InvalidRequest(f"reason is required (at most {MAX_TEXT_CHARS} characters)")
        if len(reg.concerns) > MAX_TEXT_CHARS:
            raise InvalidRequest(f"concerns is too long (at most {MAX_TEXT_CHARS} characters)")
        _classified_texts(reg)  # refuses an unknown classification before anything is stored
        if len(reg.goal) > MAX_TEXT_CHARS:
            raise InvalidRequest(f"goal is longer than {MAX_TEXT_CHARS} characters")
        for partner in reg.invitees:
            known_partner(policy, partner)


def registration_content(reg: Registration) -> tuple[str, ...]:
    """What makes two registrations the same request: every value, as given."""
    s = reg.subject
    # The older single-subject form keeps the content it always had.
    subject: tuple[str, ...] = (
        (s.bsn, s.name, s.date_of_birth, s.address, s.postcode) if s else ()
    )
    if s is not None and s.reference:
        subject += (s.reference,)
    persons = tuple(v for p in reg.persons for v in ("\x1fperson", *p.content()))
    # Only when given, so a registration without them digests as it always did; the marker
    # (NUL, which no request string holds) keeps them apart from invitees.
    classified: tuple[str, ...] = (
        ("\x00classified", reg.reason_classification, reg.concerns, reg.concerns_classification)
        if reg.reason_classification or reg.concerns or reg.concerns_classification
        else ()
    )
    # Appended only when given, so a registration without them digests as it always did.
    placement: tuple[str, ...] = (
        ("\x00approach", reg.approach, reg.casusregie_partner)
        if reg.approach or reg.casusregie_partner
        else ()
    )
    return (
        *subject, reg.case_type, reg.reason, reg.goal, *classified, *reg.invitees, *persons,
        *placement,
    )


def _refs(persons: Collection[PersonRow]) -> tuple[PersonRef, ...]:
    return tuple(PersonRef(p.person_id, p.role_in_case) for p in persons)


def _persons_detail(persons: list[PersonRow]) -> tuple[tuple[str, str], ...]:
    # How many persons, and the first one's role (it carries this record's pseudonym).
    return detail_of(person_role=persons[0].role_in_case, persons=len(persons))


def _classified_texts(reg: Registration) -> dict[str, str]:
    """The registration's reason and concerns under the fields of their classes."""
    reason = classified_field("case.reason", classification_of(reg.reason_classification))
    concerns = classified_field(
        "case.concerns", classification_of(reg.concerns_classification)
    )
    return {reason: reg.reason, concerns: reg.concerns}


def registered_participants(registrant: str, invitees: Collection[str]) -> tuple[str, ...]:
    """The participants of a newly registered case as the store lists them: the registrant,
    then the invitees by partner id (they all joined at the same moment)."""
    return (registrant, *sorted(set(invitees) - {registrant}))


def _placement(policy: CompiledPolicy, who: Principal, reg: Registration) -> _Placement:
    """The approach, the casusregie and every partner a new case adds besides the registrant:
    the invitees, the ZVH (always) and a casusregie partner named in the registration."""
    approach = registration_approach(policy, reg.approach, reg.case_type)
    casusregie = initial_casusregie(policy, who, reg.casusregie_partner)
    extra = (*zvh_partners(policy), *((casusregie,) if casusregie else ()))
    invitees = tuple(dict.fromkeys((*reg.invitees, *extra)))
    return _Placement(approach, casusregie, invitees)


def known_partner(policy: CompiledPolicy, partner_id: str) -> None:
    try:
        policy.partner(partner_id)
    except UnknownPartner as exc:
        raise InvalidRequest(f"unknown partner {partner_id!r}") from exc
