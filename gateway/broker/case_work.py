"""Use cases of the ZVH's work on a case: intake, approach, regie, and the partner's view.

Who may do what is decided in ``gateway.broker.regie`` from the case as read by this call;
this module reads, checks, stores (the change, its reason as an encrypted case-file entry and
its case events, in one transaction) and writes the accountability record. A record names the
decision, the approach ids or the new regie holder, never a reason's text.

Reading cases (ListCases, GetCase) is for participants only; a non-participant asking for a
case is refused and the refusal logged, as everywhere else.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from gateway.broker.caller import Principal, TraceContext
from gateway.broker.case_access import CaseAccess
from gateway.broker.casefile import CLOSING_PHASE, ESCALATION_FIELD, MAX_TEXT_CHARS, CaseFile
from gateway.broker.completion import run_to_completion
from gateway.broker.context import BrokerContext
from gateway.broker.errors import (
    InvalidRequest,
    PhaseMismatch,
    Refused,
    StateChanged,
)
from gateway.broker.log_events import RecordKind, detail_of
from gateway.broker.regie import (
    OPEN_INTAKE,
    ZVH_PARTNER_TYPE,
    Intake,
    check_approach,
    is_casusregisseur,
    is_procesregisseur,
    is_zvh_director,
)
from gateway.core import CompiledPolicy, UnknownPartner
from gateway.store.case_work import (
    CaseListing,
    CasePersonRow,
    Holder,
    ListFilter,
    RegieKind,
    StateConflict,
)
from gateway.store.cases import CaseRow, EntryRow
from gateway.store.errors import CaseShredded as StoreCaseShredded

# Case-file fields that keep the reasons of these actions (encrypted like every entry).
INTAKE_REASON_FIELD = "case.intake_reason"
APPROACH_REASON_FIELD = "case.approach_reason"
REGIE_REASON_FIELD = "case.regie_reason"
NOT_ZVH_DIRECTOR = "not_zvh_director"
NO_REGIE = "no_regie"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200

# decision (as the contract names it) -> the intake state it leads to
INTAKE_OF_DECISION = {
    "accept": Intake.ACCEPTED,
    "decline": Intake.DECLINED,
    "advice_only": Intake.ADVICE_ONLY,
}


class CaseDetailPart(Protocol):
    """An extension point of GetCase: what another module owns about a case (the open plan
    actions, the planned meetings) added to the detail under ``name``. Registered with
    ``CaseWork(detail_parts=...)``; the gRPC face writes each part with the writer registered
    under the same name (``gateway.server.case_service.CaseService(part_writers=...)``)."""

    name: str

    async def read(self, case: CaseRow, who: Principal) -> object: ...


@dataclass(frozen=True)
class CaseDetail:
    case: CaseRow
    persons: tuple[CasePersonRow, ...]
    # name -> what each CaseDetailPart read
    parts: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class CaseChange:
    """A case after a change, and the seq of the change's record."""

    case: CaseRow
    log_seq: int


@dataclass(frozen=True)
class ListQuery:
    phase: str = ""
    approach: str = ""
    assigned_to_me: bool = False
    page_size: int = 0
    page_token: str = ""


class WorkStore(Protocol):
    """The work surface's reads and changes of a case: intake, approach, regie
    (``gateway.store.case_work.CaseWorkStore``). Blocking calls; a change whose expected
    state no longer holds raises ``StateConflict``."""

    def list_cases(self, f: ListFilter) -> CaseListing: ...

    def persons(self, case_id: str) -> list[CasePersonRow]: ...

    def decide_intake(
        self,
        case_id: str,
        *,
        expected: Collection[str],
        intake: str,
        procesregie: Holder | None,
        close_in_phase: str | None,
        entry: EntryRow,
        now: datetime,
    ) -> CaseRow: ...

    def set_approach(
        self, case_id: str, *, expected: str, approach: str, entry: EntryRow, now: datetime
    ) -> CaseRow: ...

    def previous_holder(self, case_id: str, regie: RegieKind) -> Holder: ...

    def transfer_regie(
        self,
        case_id: str,
        regie: RegieKind,
        *,
        expected: Holder,
        to: Holder,
        entries: Sequence[EntryRow],
        now: datetime,
    ) -> CaseRow: ...

    def return_regie(
        self,
        case_id: str,
        regie: RegieKind,
        *,
        expected: Holder,
        previous: Holder,
        entries: Sequence[EntryRow],
        now: datetime,
    ) -> CaseRow: ...


class CaseWork:
    def __init__(
        self,
        ctx: BrokerContext,
        casefile: CaseFile,
        store: WorkStore,
        *,
        detail_parts: Sequence[CaseDetailPart] = (),
    ) -> None:
        self._ctx = ctx
        self._casefile = casefile
        self._access = CaseAccess(ctx)
        self._store = store
        self._parts = tuple(detail_parts)

    # -- intake ---------------------------------------------------------------------------

    async def decide_intake(
        self, who: Principal, trace: TraceContext, case_id: str, decision: str, reason: str
    ) -> CaseChange:
        intake = INTAKE_OF_DECISION.get(decision)
        if intake is None:
            raise InvalidRequest(f"decision must be one of {', '.join(INTAKE_OF_DECISION)}")
        _check_reason(reason, required=True)
        policy = self._ctx.policy.current
        case = await self._access.participating_case(
            who, trace, policy, case_id, "decide the intake of"
        )
        if not is_zvh_director(who):
            raise await self._refuse(
                who, trace, policy, case, NOT_ZVH_DIRECTOR,
                "only a process director of the ZVH decides a case's intake",
            )
        if case.intake not in OPEN_INTAKE:
            raise StateChanged(f"the intake of this case was decided already ({case.intake})")
        entry = self._entry(case, INTAKE_REASON_FIELD, reason, who)
        change = self._store.decide_intake
        holder = Holder(who.partner_id, who.user_ref) if intake is Intake.ACCEPTED else None
        closes = intake is Intake.DECLINED and case.phase != CLOSING_PHASE

        async def store() -> CaseRow:
            return await asyncio.to_thread(
                lambda: change(
                    case.case_id,
                    expected=tuple(OPEN_INTAKE),
                    intake=intake.value,
                    procesregie=holder,
                    close_in_phase=CLOSING_PHASE if closes else None,
                    entry=entry,
                    now=self._ctx.clock(),
                )
            )

        detail = detail_of(decision=decision, entry_id=entry.entry_id)
        return await self._change(who, trace, policy, case, store, RecordKind.INTAKE_DECISION,
                                  detail)

    # -- approach -------------------------------------------------------------------------

    async def change_approach(
        self, who: Principal, trace: TraceContext, case_id: str, approach: str, reason: str
    ) -> CaseChange:
        _check_reason(reason, required=True)
        policy = self._ctx.policy.current
        check_approach(policy, approach)
        case = await self._access.participating_case(
            who, trace, policy, case_id, "change the approach of"
        )
        await self._access.require_procesregisseur(
            who, trace, policy, case, "changes the approach of"
        )
        if approach == case.approach:
            raise InvalidRequest("the case has that approach already")
        entry = self._entry(case, APPROACH_REASON_FIELD, reason, who)
        change = self._store.set_approach

        async def store() -> CaseRow:
            return await asyncio.to_thread(
                lambda: change(
                    case.case_id,
                    expected=case.approach,
                    approach=approach,
                    entry=entry,
                    now=self._ctx.clock(),
                )
            )

        detail = detail_of(**{"from": case.approach, "to": approach, "entry_id": entry.entry_id})
        return await self._change(who, trace, policy, case, store, RecordKind.APPROACH_CHANGE,
                                  detail)

    async def escalate(
        self, who: Principal, trace: TraceContext, case_id: str, reason: str
    ) -> CaseChange:
        """A new acute moment in the case: the procesregisseur reopens its break-glass window
        (Code Rood is worked in escalations, each needing immediate intervention)."""
        _check_reason(reason, required=True)
        policy = self._ctx.policy.current
        case = await self._access.participating_case(who, trace, policy, case_id, "escalate")
        await self._access.require_procesregisseur(who, trace, policy, case, "escalates")
        if not _has_break_glass(policy, case.approach):
            raise PhaseMismatch(
                f"approach {case.approach!r} has no break-glass purpose: nothing to reopen"
            )
        entry = self._entry(case, ESCALATION_FIELD, reason, who)
        add = self._ctx.cases.add_entries

        async def store() -> CaseRow:
            await asyncio.to_thread(add, case.case_id, [entry])
            return case

        return await self._change(who, trace, policy, case, store, RecordKind.ESCALATION,
                                  detail_of(entry_id=entry.entry_id))

    # -- regie ----------------------------------------------------------------------------

    async def transfer_regie(
        self,
        who: Principal,
        trace: TraceContext,
        case_id: str,
        regie: RegieKind,
        to: Holder,
        reason: str = "",
    ) -> CaseChange:
        _check_reason(reason, required=False)
        policy = self._ctx.policy.current
        case = await self._access.participating_case(
            who, trace, policy, case_id, "hand on a regie of"
        )
        await self._may_hand_on(who, trace, policy, case, regie)
        _check_new_holder(policy, case, regie, to)
        current = _holder(case, regie)
        if current == to:
            raise InvalidRequest(f"{to.partner_id} holds the {regie} already")
        entries = self._reason_entries(case, reason, who)
        change = self._store.transfer_regie

        async def store() -> CaseRow:
            return await asyncio.to_thread(
                lambda: change(
                    case.case_id, regie, expected=current, to=to, entries=entries,
                    now=self._ctx.clock(),
                )
            )

        detail = _regie_detail(regie, to, entries)
        return await self._change(who, trace, policy, case, store, RecordKind.REGIE_TRANSFER,
                                  detail)

    async def return_regie(
        self,
        who: Principal,
        trace: TraceContext,
        case_id: str,
        regie: RegieKind,
        reason: str = "",
    ) -> CaseChange:
        _check_reason(reason, required=False)
        policy = self._ctx.policy.current
        case = await self._access.participating_case(
            who, trace, policy, case_id, "return a regie of"
        )
        await self._may_hand_on(who, trace, policy, case, regie)
        previous = await asyncio.to_thread(self._store.previous_holder, case.case_id, regie)
        if regie is RegieKind.PROCESREGIE and not previous.partner_id:
            raise StateChanged("the procesregie has no previous holder to return to")
        current = _holder(case, regie)
        entries = self._reason_entries(case, reason, who)
        change = self._store.return_regie

        async def store() -> CaseRow:
            return await asyncio.to_thread(
                lambda: change(
                    case.case_id, regie, expected=current, previous=previous, entries=entries,
                    now=self._ctx.clock(),
                )
            )

        detail = _regie_detail(regie, previous, entries)
        return await self._change(who, trace, policy, case, store, RecordKind.REGIE_RETURN,
                                  detail)

    async def _may_hand_on(
        self,
        who: Principal,
        trace: TraceContext,
        policy: CompiledPolicy,
        case: CaseRow,
        regie: RegieKind,
    ) -> None:
        """The procesregie is handed on by its holder only; the casusregie by its holder or
        the procesregisseur."""
        if regie is RegieKind.PROCESREGIE:
            await self._access.require_procesregisseur(
                who, trace, policy, case, "hands on the procesregie of"
            )
        elif not (is_procesregisseur(case, who) or is_casusregisseur(case, who)):
            raise await self._refuse(
                who, trace, policy, case, NO_REGIE,
                "only the casusregisseur or the procesregisseur hands on the casusregie",
            )

    # -- reading --------------------------------------------------------------------------

    async def list_cases(self, who: Principal, query: ListQuery) -> CaseListing:
        policy = self._ctx.policy.current
        if query.phase and query.phase not in policy.phases:
            raise InvalidRequest(f"unknown phase; known: {', '.join(policy.phases)}")
        if query.approach:
            check_approach(policy, query.approach)
        size = query.page_size or DEFAULT_PAGE_SIZE
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise InvalidRequest(f"page_size must be 0..{MAX_PAGE_SIZE}")
        f = ListFilter(
            partner_id=who.partner_id,
            user=who.user_ref,
            phase=query.phase,
            approach=query.approach,
            assigned_to_me=query.assigned_to_me,
            after=decode_page_token(query.page_token),
            limit=size,
        )
        return await asyncio.to_thread(self._store.list_cases, f)

    async def get_case(self, who: Principal, trace: TraceContext, case_id: str) -> CaseDetail:
        policy = self._ctx.policy.current
        case = await self._access.participating_case(who, trace, policy, case_id, "view")
        persons = await asyncio.to_thread(self._store.persons, case.case_id)
        parts = {part.name: await part.read(case, who) for part in self._parts}
        return CaseDetail(case, tuple(persons), parts)

    # -- shared ---------------------------------------------------------------------------

    async def _change(
        self,
        who: Principal,
        trace: TraceContext,
        policy: CompiledPolicy,
        case: CaseRow,
        store: Callable[[], Awaitable[CaseRow]],
        kind: RecordKind,
        detail: tuple[tuple[str, str], ...],
    ) -> CaseChange:
        async def run() -> CaseChange:
            try:
                row = await store()
            except StateConflict as exc:
                raise StateChanged("the case changed meanwhile; read it again") from exc
            except StoreCaseShredded:
                raise await self._access.shredded(who, trace, policy, case) from None
            record = await self._ctx.record(
                kind,
                who,
                trace,
                policy,
                case_id=case.case_id,
                subject_pseudonym=case.subject_pseudonym,
                phase=row.phase,
                detail=detail,
            )
            return CaseChange(row, record.seq)

        # The change and its record run to completion even when the caller stops waiting.
        return await run_to_completion(run())

    async def _refuse(
        self,
        who: Principal,
        trace: TraceContext,
        policy: CompiledPolicy,
        case: CaseRow,
        code: str,
        message: str,
    ) -> Refused:
        seq = await self._access.log_refusal(who, trace, policy, case, code)
        return Refused(code, message, seq)

    def _entry(self, case: CaseRow, field_id: str, text: str, who: Principal) -> EntryRow:
        return self._casefile.new_entry(case, field_id, text, who.partner_id)

    def _reason_entries(self, case: CaseRow, reason: str, who: Principal) -> list[EntryRow]:
        return [self._entry(case, REGIE_REASON_FIELD, reason, who)] if reason.strip() else []


def _has_break_glass(policy: CompiledPolicy, approach_id: str) -> bool:
    approach = policy.approach(approach_id)
    return any(
        p.break_glass and approach.uses(p.id) for p in policy.purposes.values()
    )


def _check_reason(reason: str, *, required: bool) -> None:
    if len(reason) > MAX_TEXT_CHARS or (required and not reason.strip()):
        need = "1" if required else "0"
        raise InvalidRequest(f"reason must be {need}..{MAX_TEXT_CHARS} characters")


def _holder(case: CaseRow, regie: RegieKind) -> Holder:
    if regie is RegieKind.PROCESREGIE:
        return Holder(case.procesregie_partner, case.procesregie_user)
    return Holder(case.casusregie_partner, case.casusregie_user)


def _check_new_holder(
    policy: CompiledPolicy, case: CaseRow, regie: RegieKind, to: Holder
) -> None:
    """The procesregie goes to a ZVH partner; the casusregie to a participant."""
    if not to.partner_id:
        raise InvalidRequest("to_partner is required")
    try:
        spec = policy.partner(to.partner_id)
    except UnknownPartner as exc:
        raise InvalidRequest("unknown to_partner") from exc
    if regie is RegieKind.PROCESREGIE and spec.type != ZVH_PARTNER_TYPE:
        raise InvalidRequest("the procesregie goes to a partner of type zvh only")
    if to.partner_id not in case.participants:
        raise InvalidRequest("to_partner does not take part in the case; invite it first")


def _regie_detail(
    regie: RegieKind, to: Holder, entries: Sequence[EntryRow]
) -> tuple[tuple[str, str], ...]:
    items = {"regie": regie.value, "to_partner": to.partner_id, "to_user": to.user}
    if entries:
        items["entry_id"] = entries[0].entry_id
    return detail_of(**items)


def encode_page_token(case: CaseRow) -> str:
    """An opaque cursor after ``case`` in the order of ListCases."""
    raw = json.dumps([case.created_at.isoformat(), case.case_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str) -> tuple[datetime, str] | None:
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        at, case_id = json.loads(raw)
        moment = datetime.fromisoformat(at)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidRequest("page_token is not one this gateway gave") from exc
    if not isinstance(case_id, str) or moment.tzinfo is None:
        raise InvalidRequest("page_token is not one this gateway gave")
    return moment, case_id
