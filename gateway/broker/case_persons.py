"""Use cases on the persons of a case after registration: add one, remove one (softly),
identify one whose BSN becomes known later.

Each change is an accountability record naming the person by its pseudonym (the record's
subject pseudonym) and its role in the case, never an identifying value. A removed person
keeps its row, its entries and its records: the log stays linked, but nothing more is
disclosed about the person and no source is asked about it. Identifying a person keeps its
pseudonym (its earlier records stay linked) and stores the keyed pseudonym of the BSN beside
it, so that an access request by BSN finds the person's records from before the BSN.

Who may change the persons of a case is decided in one place, :func:`_may_change_persons`.
"""

from __future__ import annotations

import asyncio

from gateway.broker.caller import Principal, TraceContext
from gateway.broker.case_access import NOT_REGISSEUR, CaseAccess
from gateway.broker.case_entries import seal_entry
from gateway.broker.case_reading import CaseReading
from gateway.broker.casefile import CaseFile, PersonRef
from gateway.broker.completion import run_to_completion
from gateway.broker.context import BrokerContext
from gateway.broker.errors import InvalidRequest, PersonNotFound, PersonStateConflict, Refused
from gateway.broker.log_events import RecordKind, detail_of
from gateway.broker.persons import (
    MAX_PERSON_ID_CHARS,
    MAX_PERSONS,
    PERSON_FIELDS,
    PersonInput,
    validate_person,
)
from gateway.broker.regie import OPEN_INTAKE, is_casusregisseur, is_procesregisseur
from gateway.broker.request_ids import ADD_PERSON, RequestIds
from gateway.core import CompiledPolicy
from gateway.crypto.pseudonym import is_valid_bsn, normalise_bsn, subject_pseudonym
from gateway.store.cases import CaseRow, PersonRow
from gateway.store.errors import CaseShredded as StoreCaseShredded
from gateway.store.errors import PersonConflict
from gateway.store.errors import PersonNotFound as StorePersonNotFound
from gateway.store.request_ids import PriorRequest


def _may_change_persons(who: Principal, case: CaseRow) -> bool:
    """Whether ``who`` may add, remove or identify persons of ``case``: the holder of its
    procesregie or casusregie acting as such, or, until the ZVH has taken the case on at
    intake, the partner that registered it (completing its own registration).

    The one place this is decided; the caller takes part in the case."""
    if is_procesregisseur(case, who) or is_casusregisseur(case, who):
        return True
    return case.intake in OPEN_INTAKE and who.partner_id == case.registered_by


class CasePersons:
    def __init__(
        self, ctx: BrokerContext, casefile: CaseFile, requests: RequestIds | None = None
    ) -> None:
        self._ctx = ctx
        self._casefile = casefile
        self._reading = CaseReading(ctx)
        self._access = CaseAccess(ctx)
        self._requests = requests or RequestIds(ctx)

    async def add(
        self,
        who: Principal,
        trace: TraceContext,
        case_id: str,
        person: PersonInput,
        request_id: str = "",
    ) -> tuple[PersonRef, int]:
        """Add a person; with ``request_id``, once per caller and id (a resend gets the first
        call's person). The person and the seq of the record that accounts for the call."""
        policy = self._ctx.policy.current
        validate_person(policy, person, "person")
        case = await self._changeable(who, trace, policy, case_id, "add a person to")
        return await run_to_completion(
            self._add(who, trace, policy, case, person, request_id)
        )

    async def _add(
        self,
        who: Principal,
        trace: TraceContext,
        policy: CompiledPolicy,
        case: CaseRow,
        given: PersonInput,
        request_id: str,
    ) -> tuple[PersonRef, int]:
        now = self._ctx.clock()
        known = await asyncio.to_thread(self._ctx.cases.persons, case.case_id)
        if len(known) >= MAX_PERSONS:
            raise InvalidRequest(f"a case has at most {MAX_PERSONS} persons")
        key = self._reading.data_key(case)
        person, entries = self._casefile.new_person(case.case_id, given, who, now, key)
        claim = (
            self._requests.claim(
                who,
                request_id,
                ADD_PERSON,
                (case.case_id, *given.content()),
                case_id=case.case_id,
                entry_id=person.person_id,
                now=now,
            )
            if request_id
            else None
        )
        try:
            added = await asyncio.to_thread(
                self._ctx.cases.add_person_once, claim, person, entries
            )
        except StoreCaseShredded:
            raise await self._access.shredded(who, trace, policy, case) from None
        if isinstance(added, PriorRequest):
            assert claim is not None  # only a claim finds an earlier request
            self._requests.check_same(claim, added)
            replay = await self._requests.replay(who, trace, policy, added)
            return PersonRef(added.entry_id, given.role_in_case), replay.seq
        record = await self._ctx.record(
            RecordKind.PERSON_ADDED,
            who,
            trace,
            policy,
            case_id=case.case_id,
            subject_pseudonym=person.pseudonym,
            subject_id_type=person.subject_id_type,
            phase=case.phase,
            # The person id lets a resent call's replay find this record; it is the gateway's
            # own id, no identifying value.
            detail=detail_of(entry_id=person.person_id, person_role=person.role_in_case),
        )
        if request_id:
            await self._requests.maybe_prune(now)
        return PersonRef(person.person_id, person.role_in_case), record.seq

    async def remove(
        self, who: Principal, trace: TraceContext, case_id: str, person_id: str
    ) -> int:
        """Remove a person softly; removing a removed person changes nothing but is logged."""
        _check_person_id(person_id)
        policy = self._ctx.policy.current
        case = await self._changeable(who, trace, policy, case_id, "remove a person from")
        now = self._ctx.clock()
        try:
            person = await asyncio.to_thread(
                self._ctx.cases.remove_person, case.case_id, person_id, who.partner_id, now
            )
        except StorePersonNotFound:
            raise PersonNotFound(f"the case has no person {person_id!r}") from None
        except StoreCaseShredded:
            raise await self._access.shredded(who, trace, policy, case) from None
        return await self._logged(RecordKind.PERSON_REMOVED, who, trace, policy, case, person)

    async def identify(
        self, who: Principal, trace: TraceContext, case_id: str, person_id: str, bsn: str
    ) -> int:
        """Record a BSN learnt after the person was added: the keyed pseudonym of the BSN is
        kept beside the person's own, which stays; the BSN itself as an encrypted entry."""
        _check_person_id(person_id)
        if not is_valid_bsn(bsn):
            raise InvalidRequest("bsn is not a valid BSN (nine digits passing the 11-test)")
        policy = self._ctx.policy.current
        case = await self._changeable(who, trace, policy, case_id, "identify a person of")
        key = self._reading.data_key(case)
        now = self._ctx.clock()
        entry = seal_entry(
            key, case.case_id, PERSON_FIELDS["bsn"], normalise_bsn(bsn), who.partner_id, now,
            person_id,
        )
        bsn_pseudonym = subject_pseudonym(self._ctx.keystore.pseudonym_key, bsn)
        try:
            person = await asyncio.to_thread(
                self._ctx.cases.identify_person, case.case_id, person_id, bsn_pseudonym, entry
            )
        except StorePersonNotFound:
            raise PersonNotFound(f"the case has no person {person_id!r}") from None
        except PersonConflict as exc:
            raise PersonStateConflict(f"the person is {exc.state}") from None
        except StoreCaseShredded:
            raise await self._access.shredded(who, trace, policy, case) from None
        return await self._logged(RecordKind.PERSON_IDENTIFIED, who, trace, policy, case, person)

    async def _logged(
        self,
        kind: RecordKind,
        who: Principal,
        trace: TraceContext,
        policy: CompiledPolicy,
        case: CaseRow,
        person: PersonRow,
    ) -> int:
        record = await self._ctx.record(
            kind,
            who,
            trace,
            policy,
            case_id=case.case_id,
            subject_pseudonym=person.pseudonym,
            subject_id_type=person.subject_id_type,
            phase=case.phase,
            detail=detail_of(person_role=person.role_in_case),
        )
        return record.seq

    async def _changeable(
        self,
        who: Principal,
        trace: TraceContext,
        policy: CompiledPolicy,
        case_id: str,
        action: str,
    ) -> CaseRow:
        # A refusal is logged under the case's own pseudonym: it names no person of the case.
        case = await self._access.participating_case(who, trace, policy, case_id, action)
        if _may_change_persons(who, case):
            return case
        seq = await self._access.log_refusal(who, trace, policy, case, NOT_REGISSEUR)
        raise Refused(
            NOT_REGISSEUR,
            f"only the holders of the case's regie (or its registrant before the intake) "
            f"{action} it",
            seq,
        )


def _check_person_id(person_id: str) -> None:
    if not person_id or len(person_id) > MAX_PERSON_ID_CHARS or "\x00" in person_id:
        raise InvalidRequest(f"person_id is required: 1..{MAX_PERSON_ID_CHARS} characters")
