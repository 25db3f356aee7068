"""Use cases of the case meeting, the plan of approach and closure (CasePlanService).

The process director plans a meeting (its partners are invited to the case and told), records
it once held (attendance, decisions, minutes), keeps the plan as actions with an owner and a
deadline, and closes the case with a category and a closing summary. An action's owner
reports its progress.

Personal data stays in the case file, encrypted under the case's data key: an action's
description is a case-file entry of field case.plan_actions, the minutes one of
case.meeting_minutes[.<class>], the closing summary one of case.closing_summary; decisions and
status notes are ciphertexts under the same key. Each change is an accountability record that
names ids, partners, kinds and dates only. What needs the procesregie asks
``gateway.broker.regie.is_procesregisseur``, as every other use case does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol, TypeVar

from gateway.broker.caller import Principal, TraceContext
from gateway.broker.case_access import NOT_PROCESREGISSEUR, CaseAccess
from gateway.broker.case_entries import open_entry, seal_entry
from gateway.broker.case_events import CaseEventKind, CaseEventSink
from gateway.broker.case_reading import CaseReading
from gateway.broker.casefile import CLOSING_PHASE, CaseFile, known_partner
from gateway.broker.context import BrokerContext
from gateway.broker.errors import (
    AlreadyEnded,
    CaseNotFound,
    InvalidRequest,
    PhaseMismatch,
    Refused,
    choice_of,
)
from gateway.broker.holds import parse_until
from gateway.broker.ids import new_id
from gateway.broker.log_events import LogRecord, RecordKind, detail_of
from gateway.broker.regie import is_procesregisseur
from gateway.broker.text_classes import classification_of, classified_field
from gateway.core import CompiledPolicy
from gateway.crypto.envelope import DataKey, field_aad
from gateway.store.case_plan import (
    LIVE_STATUSES,
    ActionFinished,
    ActionNotFound,
    ActionRow,
    ActionStatus,
    MeetingAlreadyRecorded,
    MeetingNotFound,
    MeetingRow,
)
from gateway.store.cases import CaseRow, EntryRow
from gateway.store.errors import CaseShredded as StoreCaseShredded
from gateway.store.errors import PhaseConflict
from gateway.tlog.notes import format_time

MINUTES_FIELD = "case.meeting_minutes"
PLAN_ACTIONS_FIELD = "case.plan_actions"
CLOSING_SUMMARY_FIELD = "case.closing_summary"
# Associated data of the ciphertexts that are no case-file entry (bound to case and row).
DECISIONS_AAD_FIELD = "case.meeting_decisions"
NOTE_AAD_FIELD = "case.plan_actions.note"

MAX_MEETING_PARTNERS = 20
MAX_DECISIONS = 20
MAX_DECISION_CHARS = 500
MAX_DESCRIPTION_CHARS = 2000
MAX_NOTE_CHARS = 2000
MAX_TEXT_CHARS = 20_000
MAX_ID_CHARS = 64
# The log's detail values hold at most 256 characters: the partner lists must fit.
_MAX_PARTNER_LIST_CHARS = 256
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
R = TypeVar("R")

log = logging.getLogger("ketenpoort.plan")


class ClosureCategory:
    GOAL_REACHED = "goal_reached"
    HANDED_BACK = "handed_back"
    ESCALATED = "escalated"
    DECLINED = "declined"
    ALL = (GOAL_REACHED, HANDED_BACK, ESCALATED, DECLINED)


@dataclass(frozen=True)
class Decision:
    """One decision of a meeting."""

    text: str
    owner_partner: str = ""


@dataclass(frozen=True)
class MeetingView:
    meeting: MeetingRow
    # Empty for a caller that may not see them, or before the meeting is recorded.
    decisions: tuple[Decision, ...]


@dataclass(frozen=True)
class ActionView:
    action: ActionRow
    # Empty for a caller other than the process director and the owner.
    description: str
    note: str
    overdue: bool


@dataclass(frozen=True)
class Closed:
    case: CaseRow
    closed_at: datetime
    log_seq: int


class PlanStore(Protocol):
    """The plan of a case: meetings, actions, closure (``gateway.store.case_plan``).
    Blocking calls."""

    def has_person(self, case_id: str, person_id: str) -> bool: ...

    def meetings(self, case_id: str) -> list[MeetingRow]: ...

    def get_meeting(self, case_id: str, meeting_id: str) -> MeetingRow: ...

    def add_meeting(self, meeting: MeetingRow) -> None: ...

    def record_meeting(
        self,
        case_id: str,
        meeting_id: str,
        *,
        attended: Sequence[str],
        decisions_ciphertext: bytes,
        minutes: EntryRow | None,
        minutes_classification: str | None,
        recorded_by: str,
        recorded_at: datetime,
    ) -> MeetingRow: ...

    def actions(self, case_id: str) -> list[ActionRow]: ...

    def get_action(self, case_id: str, action_id: str) -> ActionRow: ...

    def add_action(self, action: ActionRow, description: EntryRow) -> None: ...

    def update_action(
        self,
        case_id: str,
        action_id: str,
        *,
        status: ActionStatus,
        note_ciphertext: bytes | None,
        by: str,
        at: datetime,
    ) -> ActionRow: ...

    def close_case(
        self,
        case_id: str,
        *,
        closing_phase: str,
        expected_phase: str,
        category: str,
        summary: EntryRow,
        closed_at: datetime,
    ) -> CaseRow: ...


class CasePlan:
    def __init__(
        self,
        ctx: BrokerContext,
        casefile: CaseFile,
        store: PlanStore,
        events: CaseEventSink,
    ) -> None:
        self._ctx = ctx
        self._casefile = casefile
        self._reading = CaseReading(ctx)
        self._access = CaseAccess(ctx)
        self._store = store
        self._events = events

    # --- meetings -----------------------------------------------------------------------

    async def plan_meeting(
        self,
        who: Principal,
        trace: TraceContext,
        case_id: str,
        scheduled_at: str,
        chair: str,
        invited: Sequence[str],
    ) -> tuple[str, int]:
        """Plan a meeting: its id and the seq of its record."""
        policy = self._ctx.policy.current
        when = parse_moment("scheduled_at", scheduled_at, end_of_day=False)
        partners = tuple(dict.fromkeys((chair, *invited)))
        if not chair:
            raise InvalidRequest("chair_partner is required")
        if len(partners) > MAX_MEETING_PARTNERS:
            raise InvalidRequest(f"at most {MAX_MEETING_PARTNERS} partners per meeting")
        for partner in partners:
            known_partner(policy, partner)
        listed = _partner_list(partners)
        case = await self._directed_case(who, trace, policy, case_id, "plan a meeting of")
        await self._invite_missing(who, trace, case, partners)
        now = self._ctx.clock()
        meeting = MeetingRow(
            meeting_id=new_id("m_"),
            case_id=case.case_id,
            scheduled_at=when,
            chair_partner=chair,
            planned_by=who.partner_id,
            planned_at=now,
            invited=partners,
            attended=(),
        )
        await self._write(who, trace, policy, case, self._store.add_meeting, meeting)
        record = await self._record(
            RecordKind.MEETING_PLANNED,
            who,
            trace,
            policy,
            case,
            meeting_id=meeting.meeting_id,
            scheduled_at=format_time(when),
            chair=chair,
            partners=listed,
        )
        try:
            await self._events.publish(
                case.case_id, partners, CaseEventKind.MEETING_PLANNED.value, now
            )
        except Exception as exc:
            # The meeting is planned and recorded; a stream that is away must not make the
            # caller plan it again. Identifiers and the error type only.
            log.error(
                "meeting_planned of meeting %s not published: %s",
                meeting.meeting_id,
                type(exc).__name__,
            )
        return meeting.meeting_id, record.seq

    async def record_meeting(
        self,
        who: Principal,
        trace: TraceContext,
        case_id: str,
        meeting_id: str,
        attended: Sequence[str],
        decisions: Sequence[Decision],
        minutes: str,
        minutes_classification: str,
    ) -> tuple[str, int]:
        """Record a held meeting once: the minutes' entry id ("" without minutes) and the
        seq of the record."""
        policy = self._ctx.policy.current
        _check_id("meeting_id", meeting_id)
        klass = classification_of(minutes_classification)
        minutes_field = classified_field(MINUTES_FIELD, klass)
        if len(minutes) > MAX_TEXT_CHARS:
            raise InvalidRequest(f"minutes must be at most {MAX_TEXT_CHARS} characters")
        if len(decisions) > MAX_DECISIONS:
            raise InvalidRequest(f"at most {MAX_DECISIONS} decisions per meeting")
        for d in decisions:
            if not d.text.strip() or len(d.text) > MAX_DECISION_CHARS:
                raise InvalidRequest(
                    f"a decision's text must be 1..{MAX_DECISION_CHARS} characters"
                )
            if d.owner_partner:
                known_partner(policy, d.owner_partner)
        present = tuple(dict.fromkeys(attended))
        case = await self._directed_case(who, trace, policy, case_id, "record a meeting of")
        meeting = await self._meeting(case.case_id, meeting_id)
        strangers = sorted(set(present) - set(meeting.invited))
        if strangers:
            raise InvalidRequest(
                f"attended_partners names partners not invited to the meeting: {strangers}"
            )
        key = self._reading.data_key(case)
        now = self._ctx.clock()
        entry = (
            seal_entry(key, case.case_id, minutes_field, minutes, who.partner_id, now)
            if minutes.strip()
            else None
        )
        decisions_ct = key.encrypt(
            json.dumps([[d.text, d.owner_partner] for d in decisions]).encode(),
            field_aad(case.case_id, meeting_id, DECISIONS_AAD_FIELD),
        )
        try:
            await self._write(
                who,
                trace,
                policy,
                case,
                lambda: self._store.record_meeting(
                    case.case_id,
                    meeting_id,
                    attended=present,
                    decisions_ciphertext=decisions_ct,
                    minutes=entry,
                    minutes_classification=klass.value if entry else None,
                    recorded_by=who.partner_id,
                    recorded_at=now,
                ),
            )
        except MeetingAlreadyRecorded:
            raise AlreadyEnded("the meeting was recorded already") from None
        record = await self._record(
            RecordKind.MEETING_RECORDED,
            who,
            trace,
            policy,
            case,
            meeting_id=meeting_id,
            attended=_partner_list(present),
            decisions=len(decisions),
            minutes_entry_id=entry.entry_id if entry else "",
            minutes_field=minutes_field if entry else "",
        )
        return (entry.entry_id if entry else ""), record.seq

    async def list_meetings(
        self, who: Principal, trace: TraceContext, case_id: str
    ) -> list[MeetingView]:
        policy = self._ctx.policy.current
        case = await self._access.participating_case(
            who, trace, policy, case_id, "list the meetings of"
        )
        return await self.meetings_of(case, who)

    async def meetings_of(self, case: CaseRow, who: Principal) -> list[MeetingView]:
        """The meetings of ``case`` as ``who`` may see them; its participation is checked."""
        meetings = await asyncio.to_thread(self._store.meetings, case.case_id)
        director = is_procesregisseur(case, who)
        key = self._reading.data_key(case) if meetings else None
        views = []
        for m in meetings:
            shown: tuple[Decision, ...] = ()
            if key is not None and m.decisions_ciphertext is not None and (
                director or who.partner_id in m.invited
            ):
                shown = _open_decisions(key, m)
            views.append(MeetingView(m, shown))
        return views

    # --- plan actions -------------------------------------------------------------------

    async def add_action(
        self,
        who: Principal,
        trace: TraceContext,
        case_id: str,
        owner: str,
        description: str,
        deadline: str,
        person_id: str = "",
    ) -> tuple[str, int]:
        policy = self._ctx.policy.current
        if not owner:
            raise InvalidRequest("owner_partner is required")
        known_partner(policy, owner)
        if not description.strip() or len(description) > MAX_DESCRIPTION_CHARS:
            raise InvalidRequest(f"description must be 1..{MAX_DESCRIPTION_CHARS} characters")
        due = parse_moment("deadline", deadline, end_of_day=True)
        if person_id:
            _check_id("person_id", person_id)
        case = await self._directed_case(who, trace, policy, case_id, "add an action to")
        if person_id and not await asyncio.to_thread(
            self._store.has_person, case.case_id, person_id
        ):
            raise InvalidRequest("person_id names no person of this case")
        await self._invite_missing(who, trace, case, (owner,))
        now = self._ctx.clock()
        key = self._reading.data_key(case)
        # Bound to the person it is about, as every entry that names one (open_entry).
        entry = seal_entry(
            key, case.case_id, PLAN_ACTIONS_FIELD, description, who.partner_id, now, person_id
        )
        action = ActionRow(
            action_id=new_id("a_"),
            case_id=case.case_id,
            owner_partner=owner,
            description_entry_id=entry.entry_id,
            person_id=person_id,
            deadline=due,
            status=ActionStatus.OPEN,
            note_ciphertext=None,
            created_by=who.partner_id,
            created_at=now,
            updated_by=who.partner_id,
            updated_at=now,
        )
        await self._write(who, trace, policy, case, self._store.add_action, action, entry)
        record = await self._record(
            RecordKind.PLAN_ACTION_ADDED,
            who,
            trace,
            policy,
            case,
            action_id=action.action_id,
            owner=owner,
            deadline=format_time(due),
            entry_id=entry.entry_id,
        )
        return action.action_id, record.seq

    async def update_action(
        self,
        who: Principal,
        trace: TraceContext,
        case_id: str,
        action_id: str,
        status: str,
        note: str,
    ) -> tuple[ActionStatus, int]:
        policy = self._ctx.policy.current
        _check_id("action_id", action_id)
        new_status = choice_of(ActionStatus, "status", status)
        if len(note) > MAX_NOTE_CHARS:
            raise InvalidRequest(f"note must be at most {MAX_NOTE_CHARS} characters")
        case = await self._access.participating_case(
            who, trace, policy, case_id, "update an action of"
        )
        _refuse_closed(case)
        action = await self._action(case.case_id, action_id)
        if who.partner_id != action.owner_partner and not is_procesregisseur(case, who):
            seq = await self._access.log_refusal(who, trace, policy, case, "not_action_owner")
            raise Refused(
                "not_action_owner",
                "only the action's owner or the process director changes its status",
                seq,
            )
        now = self._ctx.clock()
        key = self._reading.data_key(case)
        note_ct = (
            key.encrypt(note.encode(), field_aad(case.case_id, action_id, NOTE_AAD_FIELD))
            if note.strip()
            else None
        )
        try:
            await self._write(
                who,
                trace,
                policy,
                case,
                lambda: self._store.update_action(
                    case.case_id, action_id, status=new_status, note_ciphertext=note_ct,
                    by=who.partner_id, at=now,
                ),
            )
        except ActionFinished:
            raise AlreadyEnded("the action is done or cancelled and changes no more") from None
        record = await self._record(
            RecordKind.PLAN_ACTION_UPDATED,
            who,
            trace,
            policy,
            case,
            action_id=action_id,
            owner=action.owner_partner,
            status=new_status.value,
        )
        return new_status, record.seq

    async def list_actions(
        self, who: Principal, trace: TraceContext, case_id: str
    ) -> list[ActionView]:
        policy = self._ctx.policy.current
        case = await self._access.participating_case(
            who, trace, policy, case_id, "list the actions of"
        )
        return await self.actions_of(case, who)

    async def actions_of(self, case: CaseRow, who: Principal) -> list[ActionView]:
        """The actions of ``case`` as ``who`` may see them; its participation is checked."""
        actions = await asyncio.to_thread(self._store.actions, case.case_id)
        director = is_procesregisseur(case, who)
        now = self._ctx.clock()
        texts: dict[str, str] = {}
        key: DataKey | None = None
        if actions and (director or any(a.owner_partner == who.partner_id for a in actions)):
            snap = await self._reading.snapshot(case.case_id)
            key = self._reading.data_key(snap.case)
            texts = {
                e.entry_id: open_entry(key, e)
                for e in snap.entries
                if e.field == PLAN_ACTIONS_FIELD
            }
        views = []
        for a in actions:
            mine = key is not None and (director or a.owner_partner == who.partner_id)
            views.append(
                ActionView(
                    a,
                    description=texts.get(a.description_entry_id, "") if mine else "",
                    note=_open_note(key, a) if mine and key is not None else "",
                    overdue=is_overdue(a, now),
                )
            )
        return views

    # --- closure ------------------------------------------------------------------------

    async def close_case(
        self,
        who: Principal,
        trace: TraceContext,
        case_id: str,
        category: str,
        summary: str,
        from_phase: str,
    ) -> Closed:
        """Close the case with a category and a closing summary; the closure moment starts
        the retention clock, as ChangePhase to the closing phase does."""
        policy = self._ctx.policy.current
        if category not in ClosureCategory.ALL:
            raise InvalidRequest(f"category must be one of {', '.join(ClosureCategory.ALL)}")
        if not summary.strip() or len(summary) > MAX_TEXT_CHARS:
            raise InvalidRequest(f"closing_summary must be 1..{MAX_TEXT_CHARS} characters")
        if from_phase not in policy.phases:
            raise InvalidRequest(f"unknown phase {from_phase!r}")
        case = await self._directed_case(who, trace, policy, case_id, "close")
        now = self._ctx.clock()
        key = self._reading.data_key(case)
        entry = seal_entry(key, case.case_id, CLOSING_SUMMARY_FIELD, summary, who.partner_id, now)
        try:
            row = await self._write(
                who,
                trace,
                policy,
                case,
                lambda: self._store.close_case(
                    case.case_id,
                    closing_phase=CLOSING_PHASE,
                    expected_phase=from_phase,
                    category=category,
                    summary=entry,
                    closed_at=now,
                ),
            )
        except PhaseConflict as exc:
            raise PhaseMismatch(
                f"the case is in phase {exc.actual!r}, not {from_phase!r}"
            ) from None
        record = await self._ctx.record(
            RecordKind.CASE_CLOSED,
            who,
            trace,
            policy,
            case_id=case.case_id,
            subject_pseudonym=case.subject_pseudonym,
            phase=CLOSING_PHASE,
            detail=detail_of(category=category, from_phase=from_phase, entry_id=entry.entry_id),
        )
        return Closed(row, now, record.seq)

    # --- shared steps -------------------------------------------------------------------

    async def _directed_case(
        self,
        who: Principal,
        trace: TraceContext,
        policy: CompiledPolicy,
        case_id: str,
        action: str,
    ) -> CaseRow:
        """The case, if the caller takes part in it and holds the process director's regie
        on it, and it is not closed; otherwise a logged refusal."""
        case = await self._access.participating_case(who, trace, policy, case_id, action)
        if not is_procesregisseur(case, who):
            seq = await self._access.log_refusal(who, trace, policy, case, NOT_PROCESREGISSEUR)
            raise Refused(
                NOT_PROCESREGISSEUR,
                f"only the case's procesregisseur (the holder of its procesregie) may {action} "
                "a case",
                seq,
            )
        _refuse_closed(case)
        return case

    async def _invite_missing(
        self, who: Principal, trace: TraceContext, case: CaseRow, partners: Sequence[str]
    ) -> None:
        # A partner at the table takes part in the case (DESIGN §2.2): invited as
        # InvitePartner does, each with its own invitation record.
        for partner in partners:
            if partner not in case.participants:
                await self._casefile.invite(who, trace, case.case_id, partner)

    async def _meeting(self, case_id: str, meeting_id: str) -> MeetingRow:
        try:
            return await asyncio.to_thread(self._store.get_meeting, case_id, meeting_id)
        except MeetingNotFound:
            raise CaseNotFound(f"no meeting {meeting_id!r} in this case") from None

    async def _action(self, case_id: str, action_id: str) -> ActionRow:
        try:
            return await asyncio.to_thread(self._store.get_action, case_id, action_id)
        except ActionNotFound:
            raise CaseNotFound(f"no action {action_id!r} in this case") from None

    async def _write(
        self,
        who: Principal,
        trace: TraceContext,
        policy: CompiledPolicy,
        case: CaseRow,
        call: Callable[..., R],
        *args: object,
    ) -> R:
        """Run a store write on a worker thread; a case shredded meanwhile is refused (and
        the refusal logged) as any request on a shredded case is."""
        try:
            return await asyncio.to_thread(call, *args)
        except StoreCaseShredded:
            raise await self._access.shredded(who, trace, policy, case) from None

    async def _record(
        self,
        kind: RecordKind,
        who: Principal,
        trace: TraceContext,
        policy: CompiledPolicy,
        case: CaseRow,
        **detail: str | int,
    ) -> LogRecord:
        return await self._ctx.record(
            kind,
            who,
            trace,
            policy,
            case_id=case.case_id,
            subject_pseudonym=case.subject_pseudonym,
            phase=case.phase,
            detail=detail_of(**detail),
        )


def is_overdue(action: ActionRow, now: datetime) -> bool:
    return action.status in LIVE_STATUSES and action.deadline <= now


def parse_moment(name: str, text: str, *, end_of_day: bool) -> datetime:
    """An RFC 3339 date-time with offset, or (``end_of_day``) a date meaning the end of that
    day in UTC; INVALID_ARGUMENT naming ``name`` otherwise."""
    text = text.strip()
    if _DATE.fullmatch(text):
        if not end_of_day:
            raise InvalidRequest(f"{name} must be an RFC 3339 date-time with offset")
        try:
            return datetime.combine(date.fromisoformat(text), time(0), UTC) + timedelta(days=1)
        except (ValueError, OverflowError):
            raise InvalidRequest(f"{name} must be a calendar date") from None
    try:
        return parse_until(text)
    except InvalidRequest:
        raise InvalidRequest(
            f"{name} must be an RFC 3339 date-time with offset (2027-01-31T12:00:00Z)"
            + (" or date (2027-01-31)" if end_of_day else "")
        ) from None


def _refuse_closed(case: CaseRow) -> None:
    if case.phase == CLOSING_PHASE:
        raise PhaseMismatch("the case is closed: its meetings and plan change no more")


def _check_id(name: str, value: str) -> None:
    if not value or len(value) > MAX_ID_CHARS or "\x00" in value:
        raise InvalidRequest(f"{name} is required: 1..{MAX_ID_CHARS} characters, no NUL")


def _partner_list(partners: Sequence[str]) -> str:
    listed = ",".join(sorted(partners))
    if len(listed) > _MAX_PARTNER_LIST_CHARS:
        raise InvalidRequest("too many partners for one meeting")
    return listed


def _open_decisions(key: DataKey, m: MeetingRow) -> tuple[Decision, ...]:
    assert m.decisions_ciphertext is not None
    plain = key.decrypt(
        m.decisions_ciphertext, field_aad(m.case_id, m.meeting_id, DECISIONS_AAD_FIELD)
    )
    return tuple(Decision(text, owner) for text, owner in json.loads(plain))


def _open_note(key: DataKey, a: ActionRow) -> str:
    if a.note_ciphertext is None:
        return ""
    return key.decrypt(
        a.note_ciphertext, field_aad(a.case_id, a.action_id, NOTE_AAD_FIELD)
    ).decode()


