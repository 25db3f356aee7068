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
from datetime import date, datetime

from gateway.broker.caller import Principal, TraceContext
from gateway.broker.completion import run_to_completion
from gateway.broker.context import BrokerContext
from gateway.broker.errors import (
    CaseNotFound,
    CaseShredded,
    InvalidRequest,
    PhaseMismatch,
    Refused,
)
from gateway.broker.free_texts import FreeTexts
from gateway.broker.ids import new_id
from gateway.broker.regie import (
    initial_casusregie,
    is_procesregisseur,
    registration_approach,
    zvh_partners,
)
from gateway.broker.request_ids import ADD_TO_CASE_FILE, REGISTER_CASE, RequestIds
from gateway.broker.sources import Subject
from gateway.core import CompiledPolicy, UnknownPartner
from gateway.crypto.envelope import (
    DataKey,
    WrappedKey,
    field_aad,
    unwrap_data_key,
    wrap_data_key,
)
from gateway.crypto.free_text import KeyScope, TextClass, TextKind
from gateway.crypto.pseudonym import is_valid_bsn, subject_pseudonym
from gateway.store.audit_event import detail_of
from gateway.store.audit_log import RecordKind
from gateway.store.cases import CaseRow, CaseSnapshot, EntryRow
from gateway.store.errors import CaseShredded as StoreCaseShredded
from gateway.store.errors import PhaseConflict
from gateway.store.request_ids import PriorRequest

INITIAL_PHASE = "registration"
# Moving a case into this phase closes it: the moment is kept and starts the retention clock.
CLOSING_PHASE = "closure"
SHREDDED_CODE = "case_shredded"
SHREDDED_MESSAGE = "the case's data was deleted at the end of its retention period"
SUBJECT_FIELDS = (
    "subject.bsn",
    "subject.name",
    "subject.date_of_birth",
    "subject.address",
    "subject.postcode",
)
# Fields of the ZVH case file that participants may add to after registration.
# The case-file fields partners write after registration (the subject's identity and the
# reason are set by the registration itself).
WRITABLE_FIELDS = frozenset({
    "case.notes", "case.goal", "case.concerns", "case.plan_actions", "case.action_owners",
    "case.closure_reason",
})
# Fields where every entry counts (a log of notes); for the others the newest entry is the value.
ACCUMULATING_FIELDS = frozenset({"case.notes", "case.plan_actions", "case.action_owners"})
JUSTIFICATION_FIELD = "case.justification"
MAX_TEXT_CHARS = 20_000
MAX_CASE_ID_CHARS = 64
_CASE_TYPE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
# The one date form taken: date.fromisoformat also takes 19840307 and 1984-W10-3, which the
# transforms (year_only) and the partners' systems read differently or not at all.
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})\Z")
# The role claim of the ZVH's process director; it counts only for the case's procesregie holder.
PHASE_DIRECTOR_ROLE = "process_director"
# The refusal code of an action that needs the case's procesregie.
NOT_PROCESREGISSEUR = "not_procesregisseur"


@dataclass(frozen=True)
class Registration:
    subject: Subject
    # Deprecated alias of the approach (an approach id, or empty).
    case_type: str
    reason: str
    goal: str
    invitees: tuple[str, ...]
    approach: str = ""
    casusregie_partner: str = ""


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


class CaseFile:
    def __init__(
        self, ctx: BrokerContext, *, texts: FreeTexts, requests: RequestIds | None = None
    ) -> None:
        self._ctx = ctx
        self._texts = texts
        self._requests = requests or RequestIds(ctx)

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
        pseudonym = subject_pseudonym(ctx.keystore.pseudonym_key, reg.subject.bsn)
        data_key = DataKey.generate()
        wrapped = wrap_data_key(data_key, ctx.keystore.current_kek, case_id)
        values = {
            "subject.bsn": reg.subject.bsn,
            "subject.name": reg.subject.name,
            "subject.date_of_birth": reg.subject.date_of_birth,
            "subject.address": reg.subject.address,
            "subject.postcode": reg.subject.postcode,
            "case.reason": reg.reason,
            "case.goal": reg.goal,
        }
        entries = [
            _entry(data_key, case_id, field, text, who.partner_id, now)
            for field, text in values.items()
            if text
        ]
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
            approach=placement.approach,
            casusregie_partner=placement.casusregie,
        )
        row = await asyncio.to_thread(create)
        if isinstance(row, PriorRequest):
            assert claim is not None  # only a claim finds an earlier request
            self._requests.check_same(claim, row)
            replay = await self._requests.replay(who, trace, policy, row)
            participants = registered_participants(who.partner_id, placement.invitees)
            return CaseView(row.case_id, INITIAL_PHASE, participants, replay.seq)
        record = await self._ctx.record(
            RecordKind.REGISTRATION,
            who,
            trace,
            policy,
            case_id=case_id,
            subject_pseudonym=pseudonym,
            phase=INITIAL_PHASE,
        )
        if request_id:
            await self._requests.maybe_prune(now)
        return CaseView(case_id, row.phase, row.participants, record.seq)

    async def invite(
        self, who: Principal, trace: TraceContext, case_id: str, partner_id: str
    ) -> CaseView:
        policy = self._ctx.policy.current
        case = await self.participating_case(who, trace, policy, case_id, "invite")
        await self.require_procesregisseur(who, trace, policy, case, "invites partners to")
        _known_partner(policy, partner_id)
        now = self._ctx.clock()
        try:
            row = await asyncio.to_thread(
                self._ctx.cases.add_participant, case_id, partner_id, who.partner_id, now
            )
        except StoreCaseShredded:
            raise await self._shredded(who, trace, policy, case) from None
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
    ) -> tuple[str, int]:
        """Add an entry; with ``request_id``, once per caller and id (a resend gets the first
        call's entry id). The entry id and the seq of the record that accounts for the call."""
        if field not in WRITABLE_FIELDS:
            raise InvalidRequest(f"field must be one of {sorted(WRITABLE_FIELDS)}")
        if not text.strip() or len(text) > MAX_TEXT_CHARS:
            raise InvalidRequest(f"text must be 1..{MAX_TEXT_CHARS} characters")
        policy = self._ctx.policy.current
        case = await self.participating_case(who, trace, policy, case_id, "add to the case file of")
        return await run_to_completion(
            self._add_entry(who, trace, policy, case, field, text, request_id)
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
    ) -> tuple[str, int]:
        case_id = case.case_id
        now = self._ctx.clock()
        key = self.data_key(case)
        entry = _entry(key, case_id, field, text, who.partner_id, now)
        try:
            if not request_id:
                await asyncio.to_thread(self._ctx.cases.add_entries, case_id, [entry])
            else:
                claim = self._requests.claim(
                    who,
                    request_id,
                    ADD_TO_CASE_FILE,
                    (case_id, field, text),
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
            raise await self._shredded(who, trace, policy, case) from None
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
        case = await self.participating_case(who, trace, policy, case_id, "change the phase of")
        await self.require_procesregisseur(who, trace, policy, case, "changes the phase of")
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
            raise await self._shredded(who, trace, policy, case) from None
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

    async def get_case(self, case_id: str) -> CaseRow:
        check_case_id(case_id)
        row = await asyncio.to_thread(self._ctx.cases.get_case, case_id)
        if row is None:
            raise CaseNotFound(f"no case {case_id!r}")
        return row

    async def participating_case(
        self,
        who: Principal,
        trace: TraceContext,
        policy: CompiledPolicy,
        case_id: str,
        action: str,
    ) -> CaseRow:
        """The case, if the caller takes part in it and it was not shredded; otherwise a
        refusal logged under the request's policy."""
        case = await self.get_case(case_id)
        await self.refuse_if_shredded(who, trace, policy, case)
        if who.partner_id in case.participants:
            return case
        seq = await self._log_refusal(who, trace, policy, case, "not_participant")
        raise Refused(
            "not_participant",
            f"partner does not take part in this case and may not {action} it",
            seq,
        )

    async def require_procesregisseur(
        self,
        who: Principal,
        trace: TraceContext,
        policy: CompiledPolicy,
        case: CaseRow,
        action: str,
    ) -> None:
        """Refuse, with a logged refusal, a caller that is not the case's procesregisseur: a
        ``process_director`` claim counts only for the holder of the procesregie."""
        if is_procesregisseur(case, who):
            return
        seq = await self._log_refusal(who, trace, policy, case, NOT_PROCESREGISSEUR)
        raise Refused(
            NOT_PROCESREGISSEUR,
            f"only the case's procesregisseur (the holder of its procesregie) {action} a case",
            seq,
        )

    async def refuse_if_shredded(
        self, who: Principal, trace: TraceContext, policy: CompiledPolicy, case: CaseRow
    ) -> None:
        """Refuse, and log the refusal of, any request on a case whose data was shredded at
        the end of its retention period: before participation is checked (its participants
        were deleted with it) and before any source is asked."""
        if case.shredded_at is not None:
            raise await self._shredded(who, trace, policy, case)

    async def _shredded(
        self, who: Principal, trace: TraceContext, policy: CompiledPolicy, case: CaseRow
    ) -> CaseShredded:
        seq = await self._log_refusal(who, trace, policy, case, SHREDDED_CODE)
        return CaseShredded(SHREDDED_MESSAGE, seq)

    async def log_refusal(
        self, who: Principal, trace: TraceContext, policy: CompiledPolicy, case: CaseRow, code: str
    ) -> int:
        """Write the refusal record of a request on ``case``; its seq."""
        return await self._log_refusal(who, trace, policy, case, code)

    async def _log_refusal(
        self, who: Principal, trace: TraceContext, policy: CompiledPolicy, case: CaseRow, code: str
    ) -> int:
        record = await self._ctx.record(
            RecordKind.REFUSAL,
            who,
            trace,
            policy,
            case_id=case.case_id,
            subject_pseudonym=case.subject_pseudonym,
            phase=case.phase,
            refusal_code=code,
        )
        return record.seq

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
        return _entry(self.data_key(case), case.case_id, field, text, by, self._ctx.clock())

    def data_key(self, case: CaseRow) -> DataKey:
        if case.shredded_at is not None:
            # Its wrapped key is gone: say so rather than fail to unwrap an empty key.
            raise CaseShredded(SHREDDED_MESSAGE)
        wrapped = WrappedKey.from_bytes(case.wrapped_data_key)
        return unwrap_data_key(wrapped, self._ctx.keystore, case.case_id)

    async def snapshot(self, case_id: str) -> CaseSnapshot:
        """The case and its entries in one read; what a disclosure or triage needs."""
        check_case_id(case_id)
        snap = await self._ctx.snapshots.read(case_id)
        if snap is None:
            raise CaseNotFound(f"no case {case_id!r}")
        return snap

    def values(self, snap: CaseSnapshot, fields: Collection[str]) -> dict[str, str]:
        """Decrypt the named case-file fields: the newest entry, or all entries of a log-like
        field such as the notes. Fields without an entry are absent."""
        wanted = set(fields)
        if not wanted:
            return {}
        key = self.data_key(snap.case)
        found: dict[str, list[EntryRow]] = {}
        for entry in snap.entries:  # oldest first
            if entry.field in wanted:
                found.setdefault(entry.field, []).append(entry)
        values: dict[str, str] = {}
        for field, rows in found.items():
            if field in ACCUMULATING_FIELDS:
                values[field] = "\n".join(_open(key, r) for r in rows)
            else:
                values[field] = _open(key, rows[-1])
        return values

    def subject(self, snap: CaseSnapshot) -> Subject:
        v = self.values(snap, SUBJECT_FIELDS)
        return Subject(
            bsn=v.get("subject.bsn", ""),
            name=v.get("subject.name", ""),
            date_of_birth=v.get("subject.date_of_birth", ""),
            address=v.get("subject.address", ""),
            postcode=v.get("subject.postcode", ""),
        )

    def _validate_registration(self, policy: CompiledPolicy, reg: Registration) -> None:
        s = reg.subject
        if not is_valid_bsn(s.bsn):
            raise InvalidRequest("subject.bsn is not a valid BSN (nine digits passing the 11-test)")
        if not s.name.strip() or len(s.name) > 200:
            raise InvalidRequest("subject.name is required (at most 200 characters)")
        if not is_calendar_date(s.date_of_birth):
            raise InvalidRequest(
                "subject.date_of_birth must be a calendar date written YYYY-MM-DD"
            )
        if reg.case_type and not _CASE_TYPE.match(reg.case_type):
            raise InvalidRequest("case_type must be a lower-case id such as 'code_rood'")
        if not reg.reason.strip() or len(reg.reason) > MAX_TEXT_CHARS:
            raise InvalidRequest(f"reason is required (at most {MAX_TEXT_CHARS} characters)")
        if len(reg.goal) > MAX_TEXT_CHARS or len(s.address) > 500 or len(s.postcode) > 16:
            raise InvalidRequest("goal, address or postcode is too long")
        for partner in reg.invitees:
            _known_partner(policy, partner)


def is_calendar_date(text: str) -> bool:
    """True for ``YYYY-MM-DD`` naming a day that exists (no 1984-02-30), and nothing else."""
    match = _ISO_DATE.match(text)
    if match is None:
        return False
    try:
        date(*(int(part) for part in match.groups()))
    except ValueError:
        return False
    return True


def registration_content(reg: Registration) -> tuple[str, ...]:
    """What makes two registrations the same request: every value, as given."""
    s = reg.subject
    content = (
        s.bsn, s.name, s.date_of_birth, s.address, s.postcode,
        reg.case_type, reg.reason, reg.goal, *reg.invitees,
    )
    # Appended only when given, so a registration without them digests as it always did.
    if reg.approach or reg.casusregie_partner:
        content += ("\x00approach", reg.approach, reg.casusregie_partner)
    return content


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


def _known_partner(policy: CompiledPolicy, partner_id: str) -> None:
    try:
        policy.partner(partner_id)
    except UnknownPartner as exc:
        raise InvalidRequest(f"unknown partner {partner_id!r}") from exc


def check_case_id(case_id: str) -> None:
    """Refuse a case id no case can have before it reaches the database: PostgreSQL stores no
    NUL in text and would fail the query rather than find nothing."""
    if not case_id or len(case_id) > MAX_CASE_ID_CHARS or "\x00" in case_id:
        raise InvalidRequest(f"case_id is required: 1..{MAX_CASE_ID_CHARS} characters, no NUL")


def _entry(key: DataKey, case_id: str, field: str, text: str, by: str, now: datetime) -> EntryRow:
    entry_id = new_id("e_")
    ciphertext = key.encrypt(text.encode("utf-8"), field_aad(case_id, entry_id, field))
    return EntryRow(
        entry_id=entry_id,
        case_id=case_id,
        field=field,
        ciphertext=ciphertext,
        created_by=by,
        created_at=now,
    )


def _open(key: DataKey, row: EntryRow) -> str:
    return key.decrypt(row.ciphertext, field_aad(row.case_id, row.entry_id, row.field)).decode()
