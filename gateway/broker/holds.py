"""Use cases for confidentiality holds: place one on a subject, lift it again.

A hold (AVG art. 23, art. 41 UAVG, Wpg) keeps disclosures about a subject out of the
subject's access report while an investigation could be harmed by them. Only partners whose
type the policy allows (``may_place_holds``) may place one; only the partner that placed a
hold may lift it. Each place and lift is a log record, written before the answer; the record
holds the hold's id, end and scope, and the placing record the keyed digest of its reason
(``reason_hmac``), never the BSN or the reason. The reason is stored encrypted under a
hold-reason text key (``gateway.crypto.free_text``): the case's, or for a hold on every case
of the subject, one of the hold's own.

A hold names its subject by BSN (reaching every person with that BSN, see
``gateway.broker.subjects``), optionally limited to one case the subject is a person of; or by
case id and person id, for a person with or without a BSN: the hold is then kept on that
person's pseudonym, limited to that case, and covers none of the other persons of the case.
Either way the hold is one row on one pseudonym, and the log record names that pseudonym;
which pseudonyms it reaches is worked out when a report is made.

The record is committed before the hold's row: a hold is only in force once its placing is on
record. If the row write then fails (or two lifts race), the log names a hold attempt that did
not take effect; the hold table, not the log, says which holds are in force, and a retried
place or lift writes a second record.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Protocol

from gateway.broker.caller import Principal, TraceContext
from gateway.broker.context import BrokerContext
from gateway.broker.errors import (
    AlreadyEnded,
    CaseNotFound,
    HoldNotFound,
    InvalidRequest,
    Refused,
)
from gateway.broker.free_texts import FreeTexts, SealedText
from gateway.broker.ids import new_id
from gateway.broker.log_events import RecordKind, detail_of
from gateway.broker.subjects import NO_SUCH_PERSON, PersonLinks, Subjects, check_person_ids
from gateway.core import CompiledPolicy, UnknownPartner
from gateway.crypto.free_text import KeyScope, TextClass, TextKind
from gateway.store.errors import CaseShredded as StoreCaseShredded
from gateway.store.holds import ALL_CASES, Hold
from gateway.tlog.notes import format_time

MAX_REASON_CHARS = 2000
MAX_HOLD_YEARS = 5
MAX_ID_CHARS = 64
HOLDS_NOT_ALLOWED = "holds_not_allowed"
NOT_HOLD_OWNER = "not_hold_owner"
# RFC 3339 full-date, or date-time with a seconds field and an offset.
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
)


@dataclass(frozen=True)
class HoldRequest:
    """On whom: ``bsn`` (``case_id`` optional, limiting the hold), or ``case_id`` and
    ``person_id`` together; never both ways."""

    bsn: str
    case_id: str
    reason: str
    until: str
    person_id: str = ""


@dataclass(frozen=True)
class PlacedHold:
    hold_id: str
    record_seq: int


def parse_until(text: str) -> datetime:
    """An RFC 3339 date (the hold ends as that day begins, UTC) or date-time with offset."""
    text = text.strip()
    try:
        if _DATE.fullmatch(text):
            return datetime.combine(date.fromisoformat(text), time(0), UTC)
        match = _DATE_TIME.fullmatch(text)
        if match:
            day, clock, fraction, offset = match.groups()
            # Python reads at most microseconds; finer digits cannot change a hold's end.
            micros = (fraction or "")[:7]
            offset = "+00:00" if offset in ("Z", "z") else offset
            return datetime.fromisoformat(f"{day}T{clock}{micros}{offset}").astimezone(UTC)
    except (ValueError, OverflowError):
        # OverflowError: an offset that moves a time at the calendar's edge past it.
        pass
    raise InvalidRequest(
        "until must be an RFC 3339 date (2027-01-31) or date-time with offset "
        "(2027-01-31T12:00:00Z)"
    )


def latest_end(now: datetime) -> datetime:
    """``MAX_HOLD_YEARS`` calendar years after ``now`` (29 February counts as 28th)."""
    try:
        return now.replace(year=now.year + MAX_HOLD_YEARS)
    except ValueError:
        return now.replace(year=now.year + MAX_HOLD_YEARS, day=28)


def _scope(case_id: str) -> str:
    return "case" if case_id else "all_cases"


class HoldStore(Protocol):
    """Where confidentiality holds are kept (``gateway.store.holds``). Blocking calls."""

    def get(self, hold_id: str) -> Hold | None: ...

    def place(self, hold: Hold) -> None: ...

    def lift(self, hold_id: str, at: datetime) -> bool: ...


class HoldPersons(PersonLinks, Protocol):
    """The persons a hold may name, and a person's pseudonym by case and person id
    (``gateway.store.persons.PersonDirectory``). Blocking calls."""

    def pseudonym_of(self, case_id: str, person_id: str) -> str | None: ...


class ConfidentialityHolds:
    def __init__(
        self,
        ctx: BrokerContext,
        store: HoldStore,
        texts: FreeTexts,
        persons: HoldPersons,
    ) -> None:
        self._ctx = ctx
        self._store = store
        self._texts = texts
        self._persons = persons

    async def place(self, who: Principal, trace: TraceContext, req: HoldRequest) -> PlacedHold:
        policy = self._ctx.policy.current
        if not _may_place_holds(policy, who.partner_id):
            # The refusal names the subject where the request names one well.
            named = await asyncio.to_thread(self._pseudonym_or_none, req)
            seq = await self._refuse(who, trace, policy, named or "", HOLDS_NOT_ALLOWED)
            raise Refused(
                HOLDS_NOT_ALLOWED,
                "partners of this type may not place confidentiality holds",
                seq,
            )
        pseudonym = await asyncio.to_thread(self._pseudonym_of, req)
        reason = req.reason.strip()
        if not reason or len(req.reason) > MAX_REASON_CHARS:
            raise InvalidRequest(f"reason must be 1..{MAX_REASON_CHARS} characters")
        if "\x00" in req.reason:
            # PostgreSQL stores no NUL in text; refused before the hold's record is written.
            raise InvalidRequest("reason must not contain NUL characters")
        now = self._ctx.clock()
        until = parse_until(req.until)
        if until <= now:
            raise InvalidRequest("until must lie in the future")
        if until > latest_end(now):
            raise InvalidRequest(f"a hold lasts at most {MAX_HOLD_YEARS} years")
        phase = await self._case_phase(req, pseudonym)
        hold_id = new_id("h_")
        # Sealed before the record, so a failure leaves no record of a hold never placed.
        sealed = await self._seal_reason(req.reason, hold_id, req.case_id)
        record = await self._ctx.record(
            RecordKind.HOLD_PLACED,
            who,
            trace,
            policy,
            subject_pseudonym=pseudonym,
            case_id=req.case_id,
            phase=phase,
            detail=detail_of(
                hold_id=hold_id,
                until=format_time(until),
                case_scope=_scope(req.case_id),
                reason_hmac=self._texts.digest(TextKind.HOLD_REASON, req.reason),
            ),
        )
        hold = Hold(
            hold_id=hold_id,
            subject_pseudonym=pseudonym,
            placed_by=who.partner_id,
            case_id=req.case_id or ALL_CASES,
            reason_ciphertext=sealed.ciphertext,
            reason_key_id=sealed.key_id,
            placed_at=now,
            until=until,
            lifted_at=None,
            record_seq=record.seq,
        )
        await asyncio.to_thread(self._store.place, hold)
        return PlacedHold(hold_id, record.seq)

    async def lift(self, who: Principal, trace: TraceContext, hold_id: str) -> int:
        """Lift the caller's own hold; the seq of the lift's log record."""
        if not hold_id or len(hold_id) > MAX_ID_CHARS or "\x00" in hold_id:
            raise InvalidRequest(f"hold_id is required: 1..{MAX_ID_CHARS} characters, no NUL")
        policy = self._ctx.policy.current
        hold = await asyncio.to_thread(self._store.get, hold_id)
        if hold is None:
            raise HoldNotFound(f"no hold {hold_id!r}")
        if hold.placed_by != who.partner_id:
            seq = await self._refuse(who, trace, policy, hold.subject_pseudonym, NOT_HOLD_OWNER)
            raise Refused(NOT_HOLD_OWNER, "only the partner that placed a hold may lift it", seq)
        now = self._ctx.clock()
        if not hold.active_at(now):
            raise AlreadyEnded(f"hold {hold_id!r} has already ended or was lifted")
        record = await self._ctx.record(
            RecordKind.HOLD_LIFTED,
            who,
            trace,
            policy,
            subject_pseudonym=hold.subject_pseudonym,
            case_id=hold.case_id,
            phase="",
            detail=detail_of(
                hold_id=hold.hold_id,
                until=format_time(hold.until),
                case_scope=_scope(hold.case_id),
                placed_seq=hold.record_seq,
            ),
        )
        if not await asyncio.to_thread(self._store.lift, hold_id, now):
            # Another lift of the same hold committed between our read and our update.
            raise AlreadyEnded(f"hold {hold_id!r} was lifted meanwhile")
        return record.seq

    async def _seal_reason(self, reason: str, hold_id: str, case_id: str) -> SealedText:
        """Under the case's hold-reason key; a hold on every case, or on a case already
        shredded (its log records still reach the access report), gets a key of its own."""
        if case_id:
            try:
                return await asyncio.to_thread(self._seal, reason, hold_id, KeyScope.CASE, case_id)
            except StoreCaseShredded:
                pass
        return await asyncio.to_thread(self._seal, reason, hold_id, KeyScope.HOLD, hold_id)

    def _seal(self, reason: str, hold_id: str, scope: KeyScope, scope_id: str) -> SealedText:
        return self._texts.seal(
            reason,
            text_class=TextClass.HOLD_REASON,
            kind=TextKind.HOLD_REASON,
            row_id=hold_id,
            scope=scope,
            scope_id=scope_id,
        )

    def _subjects(self) -> Subjects:
        return Subjects(self._persons, self._ctx.keystore.pseudonym_key)

    def _pseudonym_of(self, req: HoldRequest) -> str:
        """The pseudonym the hold is kept on (blocking: may read the case persons): the
        BSN's, or the named person's; InvalidRequest / CaseNotFound for a bad or unknown one."""
        if req.person_id:
            if req.bsn:
                raise InvalidRequest(
                    "name the subject by bsn or by case_id and person_id, not both"
                )
            check_person_ids(req.case_id, req.person_id)
            pseudonym = self._persons.pseudonym_of(req.case_id, req.person_id)
            if pseudonym is None:
                raise CaseNotFound(NO_SUCH_PERSON)
            return pseudonym
        return self._subjects().bsn_pseudonym(req.bsn)

    def _pseudonym_or_none(self, req: HoldRequest) -> str | None:
        try:
            return self._pseudonym_of(req)
        except (InvalidRequest, CaseNotFound):
            return None

    async def _case_phase(self, req: HoldRequest, pseudonym: str) -> str:
        """The phase of the case a hold is limited to; NOT_FOUND alike for a case that does
        not exist and one the subject is not in, so the answer tells nothing about either.
        A subject named by BSN is in a case registered about it, and in a case where a
        person has that BSN (known when added, or learnt later)."""
        case_id = req.case_id
        if not case_id:
            return ""
        if len(case_id) > MAX_ID_CHARS or "\x00" in case_id:
            raise InvalidRequest(f"case_id is at most {MAX_ID_CHARS} characters, no NUL")
        case = await asyncio.to_thread(self._ctx.cases.get_case, case_id)
        if case is None:
            raise CaseNotFound("no such case for this subject")
        if req.person_id or case.subject_pseudonym == pseudonym:
            # A named person was found in this very case.
            return case.phase
        subject = await asyncio.to_thread(self._subjects().by_bsn_pseudonym, pseudonym)
        if not subject.in_case(case_id):
            raise CaseNotFound("no such case for this subject")
        return case.phase

    async def _refuse(
        self,
        who: Principal,
        trace: TraceContext,
        policy: CompiledPolicy,
        subject: str,
        code: str,
    ) -> int:
        record = await self._ctx.record(
            RecordKind.REFUSAL,
            who,
            trace,
            policy,
            subject_pseudonym=subject,
            case_id="",
            phase="",
            refusal_code=code,
        )
        return record.seq


def _may_place_holds(policy: CompiledPolicy, partner_id: str) -> bool:
    try:
        partner_type = policy.partner(partner_id).type
    except UnknownPartner:
        return False
    return any(t.id == partner_type and t.may_place_holds for t in policy.policy.partner_types)
