"""Case meetings, the plan of approach and closure with a category, as the store keeps them.

Like the case file (``gateway.store.cases``) the store sees ciphertext only: an action's
description and a meeting's minutes are case-file entries made by the caller with the case's
data key, the decisions and status notes ciphertexts under the same key. Every write that
adds to a case share-locks its row first (``require_live_case``), so it either commits before
a shredding or sees the case shredded.

The monitoring's notices (an action due soon, an action overdue) are claimed with a
conditional update, so that of several replicas scanning at once exactly one sends each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, Row, and_, insert, select, update

from gateway.store.case_events import EventBell, insert_case_events
from gateway.store.cases import (
    EVENT_PHASE_CHANGED,
    CaseRow,
    EntryRow,
    _entry_params,
    _load_case,
    require_live_case,
)
from gateway.store.db import for_writing, translate_errors
from gateway.store.errors import CaseNotFound, CaseShredded, PhaseConflict, StoreError
from gateway.store.tables import (
    case_entries,
    case_meeting_partners,
    case_meetings,
    case_persons,
    cases,
    plan_actions,
)


class ActionStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    CANCELLED = "cancelled"


# The statuses of an action monitoring still follows (due, overdue, open in GetCase); done and
# cancelled actions change no more.
LIVE_STATUSES = frozenset({ActionStatus.OPEN, ActionStatus.IN_PROGRESS})


class NoticeKind(StrEnum):
    DUE = "action_due"
    OVERDUE = "action_overdue"


class MeetingNotFound(StoreError):
    """No meeting with that id in that case."""


class MeetingAlreadyRecorded(StoreError):
    """The meeting was recorded before; a meeting is recorded once."""


class ActionNotFound(StoreError):
    """No plan action with that id in that case."""


class ActionFinished(StoreError):
    """The action is done or cancelled and changes no more."""


@dataclass(frozen=True)
class MeetingRow:
    meeting_id: str
    case_id: str
    scheduled_at: datetime
    chair_partner: str
    planned_by: str
    planned_at: datetime
    invited: tuple[str, ...]
    attended: tuple[str, ...]
    recorded_by: str | None = None
    recorded_at: datetime | None = None
    decisions_ciphertext: bytes | None = None
    minutes_entry_id: str | None = None
    minutes_classification: str | None = None


@dataclass(frozen=True)
class ActionRow:
    action_id: str
    case_id: str
    owner_partner: str
    description_entry_id: str
    person_id: str
    deadline: datetime
    status: ActionStatus
    note_ciphertext: bytes | None
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime
    due_notified_at: datetime | None = None
    overdue_notified_at: datetime | None = None


@dataclass(frozen=True)
class Notice:
    """An action the monitoring must tell about, and what to tell."""

    kind: NoticeKind
    action: ActionRow


class CasePlanStore:
    """Synchronous access; use cases call it through ``asyncio.to_thread``."""

    def __init__(self, engine: Engine, bell: EventBell | None = None) -> None:
        self._engine = engine
        self._writer = for_writing(engine)
        self._bell = bell or EventBell()

    # --- meetings -----------------------------------------------------------------------

    @translate_errors("case plan: add meeting")
    def add_meeting(self, meeting: MeetingRow) -> None:
        with self._writer.begin() as conn:
            require_live_case(conn, meeting.case_id)
            conn.execute(
                insert(case_meetings).values(
                    meeting_id=meeting.meeting_id,
                    case_id=meeting.case_id,
                    scheduled_at=meeting.scheduled_at,
                    chair_partner=meeting.chair_partner,
                    planned_by=meeting.planned_by,
                    planned_at=meeting.planned_at,
                )
            )
            partners = dict.fromkeys((meeting.chair_partner, *meeting.invited))
            conn.execute(
                insert(case_meeting_partners),
                [
                    {
                        "meeting_id": meeting.meeting_id,
                        "partner_id": p,
                        "invited": True,
                        "attended": False,
                    }
                    for p in partners
                ],
            )

    @translate_errors("case plan: get meeting")
    def get_meeting(self, case_id: str, meeting_id: str) -> MeetingRow:
        with self._engine.begin() as conn:
            return _load_meeting(conn, case_id, meeting_id)

    @translate_errors("case plan: record meeting")
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
    ) -> MeetingRow:
        """Record the meeting once, with its minutes entry (if any), in one transaction."""
        with self._writer.begin() as conn:
            require_live_case(conn, case_id)
            _load_meeting(conn, case_id, meeting_id)
            changed = conn.execute(
                update(case_meetings)
                .where(
                    case_meetings.c.meeting_id == meeting_id,
                    case_meetings.c.case_id == case_id,
                    case_meetings.c.recorded_at.is_(None),
                )
                .values(
                    recorded_by=recorded_by,
                    recorded_at=recorded_at,
                    decisions_ciphertext=decisions_ciphertext,
                    minutes_entry_id=minutes.entry_id if minutes else None,
                    minutes_classification=minutes_classification,
                )
            ).rowcount
            if changed == 0:
                raise MeetingAlreadyRecorded(meeting_id)
            if minutes is not None:
                conn.execute(insert(case_entries).values(_entry_params(minutes)))
            for partner in dict.fromkeys(attended):
                marked = conn.execute(
                    update(case_meeting_partners)
                    .where(
                        case_meeting_partners.c.meeting_id == meeting_id,
                        case_meeting_partners.c.partner_id == partner,
                    )
                    .values(attended=True)
                ).rowcount
                if marked == 0:
                    raise ValueError(f"partner {partner!r} was not invited to the meeting")
            return _load_meeting(conn, case_id, meeting_id)

    @translate_errors("case plan: list meetings")
    def meetings(self, case_id: str) -> list[MeetingRow]:
        """The meetings of a case, by the time they are held (then by id)."""
        with self._engine.begin() as conn:
            ids = conn.execute(
                select(case_meetings.c.meeting_id)
                .where(case_meetings.c.case_id == case_id)
                .order_by(case_meetings.c.scheduled_at, case_meetings.c.meeting_id)
            ).scalars().all()
            return [_load_meeting(conn, case_id, m) for m in ids]

    # --- plan actions -------------------------------------------------------------------

    @translate_errors("case plan: add action")
    def add_action(self, action: ActionRow, description: EntryRow) -> None:
        """Add the action and its description entry in one transaction."""
        if description.entry_id != action.description_entry_id:
            raise ValueError("the description entry is not the action's")
        with self._writer.begin() as conn:
            require_live_case(conn, action.case_id)
            conn.execute(insert(case_entries).values(_entry_params(description)))
            conn.execute(insert(plan_actions).values(_action_params(action)))

    @translate_errors("case plan: get action")
    def get_action(self, case_id: str, action_id: str) -> ActionRow:
        with self._engine.begin() as conn:
            return _load_action(conn, case_id, action_id)

    @translate_errors("case plan: update action")
    def update_action(
        self,
        case_id: str,
        action_id: str,
        *,
        status: ActionStatus,
        note_ciphertext: bytes | None,
        by: str,
        at: datetime,
    ) -> ActionRow:
        """Set the status of an action that is not finished, and its newest note when one
        is given (without one the note before stays)."""
        values: dict[str, Any] = {"status": status.value, "updated_by": by, "updated_at": at}
        if note_ciphertext is not None:
            values["note_ciphertext"] = note_ciphertext
        with self._writer.begin() as conn:
            require_live_case(conn, case_id)
            _load_action(conn, case_id, action_id)
            changed = conn.execute(
                update(plan_actions)
                .where(
                    plan_actions.c.action_id == action_id,
                    plan_actions.c.case_id == case_id,
                    plan_actions.c.status.in_(sorted(LIVE_STATUSES)),
                )
                .values(values)
            ).rowcount
            if changed == 0:
                raise ActionFinished(action_id)
            return _load_action(conn, case_id, action_id)

    @translate_errors("case plan: list actions")
    def actions(self, case_id: str) -> list[ActionRow]:
        query = (
            select(plan_actions)
            .where(plan_actions.c.case_id == case_id)
            .order_by(plan_actions.c.created_at, plan_actions.c.action_id)
        )
        with self._engine.begin() as conn:
            return [_action(r) for r in conn.execute(query)]

    @translate_errors("case plan: person in case")
    def has_person(self, case_id: str, person_id: str) -> bool:
        """Whether ``person_id`` is a person of the case not removed from it."""
        with self._engine.begin() as conn:
            found = conn.execute(
                select(case_persons.c.person_id).where(
                    case_persons.c.case_id == case_id,
                    case_persons.c.person_id == person_id,
                    case_persons.c.removed_at.is_(None),
                )
            ).first()
        return found is not None

    # --- monitoring ---------------------------------------------------------------------

    @translate_errors("case plan: notices")
    def pending_notices(
        self, now: datetime, due_within: timedelta, limit: int = 500
    ) -> list[Notice]:
        """Actions of live (unshredded, not closed) cases that are overdue at ``now`` and not
        yet told so, or due within ``due_within`` and not yet told that;
        overdue first. An overdue action never gets a separate due notice after it."""
        a = plan_actions.c
        live = and_(
            a.status.in_(sorted(LIVE_STATUSES)),
            cases.c.shredded_at.is_(None),
            cases.c.closed_at.is_(None),
        )
        joined = plan_actions.join(cases, cases.c.case_id == a.case_id)
        overdue = (
            select(plan_actions)
            .select_from(joined)
            .where(live, a.deadline <= now, a.overdue_notified_at.is_(None))
            .order_by(a.deadline, a.action_id)
            .limit(limit)
        )
        due = (
            select(plan_actions)
            .select_from(joined)
            .where(
                live,
                a.deadline > now,
                a.deadline <= now + due_within,
                a.due_notified_at.is_(None),
            )
            .order_by(a.deadline, a.action_id)
            .limit(limit)
        )
        with self._engine.begin() as conn:
            found = [Notice(NoticeKind.OVERDUE, _action(r)) for r in conn.execute(overdue)]
            found += [Notice(NoticeKind.DUE, _action(r)) for r in conn.execute(due)]
        return found

    @translate_errors("case plan: claim notice")
    def claim_notice(self, notice: Notice, at: datetime) -> bool:
        """Mark the notice sent; True for the one caller that marked it (send it then)."""
        column = (
            plan_actions.c.overdue_notified_at
            if notice.kind is NoticeKind.OVERDUE
            else plan_actions.c.due_notified_at
        )
        values: dict[str, Any] = {column.name: at}
        if notice.kind is NoticeKind.OVERDUE:
            # Overdue says more than due: no due notice follows an overdue one.
            values["due_notified_at"] = at
        with self._writer.begin() as conn:
            changed = conn.execute(
                update(plan_actions)
                .where(plan_actions.c.action_id == notice.action.action_id, column.is_(None))
                .values(values)
            ).rowcount
        return bool(changed)

    # --- closure ------------------------------------------------------------------------

    @translate_errors("case plan: close case")
    def close_case(
        self,
        case_id: str,
        *,
        closing_phase: str,
        expected_phase: str,
        category: str,
        summary: EntryRow,
        closed_at: datetime,
    ) -> CaseRow:
        """Move the case into ``closing_phase`` with its category and closure moment (which
        starts the retention clock) and keep the closing summary, in one transaction; its
        participants hear of the phase change as they do of ChangePhase's."""
        if summary.case_id != case_id:
            raise ValueError("the summary belongs to another case")
        with self._writer.begin() as conn:
            require_live_case(conn, case_id)
            changed = conn.execute(
                update(cases)
                .where(
                    cases.c.case_id == case_id,
                    cases.c.shredded_at.is_(None),
                    cases.c.phase == expected_phase,
                    cases.c.phase != closing_phase,
                )
                .values(phase=closing_phase, closed_at=closed_at, closure_category=category)
            ).rowcount
            if changed == 0:
                actual = conn.execute(
                    select(cases.c.phase).where(cases.c.case_id == case_id)
                ).scalar_one()
                raise PhaseConflict(case_id, expected_phase, actual)
            conn.execute(insert(case_entries).values(_entry_params(summary)))
            row = _load_case(conn, case_id)
            # The transaction's last write (insert_case_events takes the events' lock).
            insert_case_events(conn, case_id, EVENT_PHASE_CHANGED, closed_at)
        self._bell.ring()
        return row

    @translate_errors("case plan: closure category")
    def closure_category(self, case_id: str) -> str | None:
        with self._engine.begin() as conn:
            row = conn.execute(
                select(cases.c.closure_category, cases.c.shredded_at).where(
                    cases.c.case_id == case_id
                )
            ).first()
        if row is None:
            raise CaseNotFound(case_id)
        if row.shredded_at is not None:
            raise CaseShredded(case_id)
        return str(row.closure_category) if row.closure_category is not None else None


def _load_meeting(conn: Connection, case_id: str, meeting_id: str) -> MeetingRow:
    row = conn.execute(
        select(case_meetings).where(
            case_meetings.c.meeting_id == meeting_id, case_meetings.c.case_id == case_id
        )
    ).first()
    if row is None:
        raise MeetingNotFound(meeting_id)
    partners = conn.execute(
        select(case_meeting_partners)
        .where(case_meeting_partners.c.meeting_id == meeting_id)
        .order_by(case_meeting_partners.c.partner_id)
    ).all()
    return MeetingRow(
        meeting_id=row.meeting_id,
        case_id=row.case_id,
        scheduled_at=row.scheduled_at,
        chair_partner=row.chair_partner,
        planned_by=row.planned_by,
        planned_at=row.planned_at,
        invited=tuple(p.partner_id for p in partners if p.invited),
        attended=tuple(p.partner_id for p in partners if p.attended),
        recorded_by=row.recorded_by,
        recorded_at=row.recorded_at,
        decisions_ciphertext=(
            bytes(row.decisions_ciphertext) if row.decisions_ciphertext is not None else None
        ),
        minutes_entry_id=row.minutes_entry_id,
        minutes_classification=row.minutes_classification,
    )


def _load_action(conn: Connection, case_id: str, action_id: str) -> ActionRow:
    row = conn.execute(
        select(plan_actions).where(
            plan_actions.c.action_id == action_id, plan_actions.c.case_id == case_id
        )
    ).first()
    if row is None:
        raise ActionNotFound(action_id)
    return _action(row)


def _action_params(a: ActionRow) -> dict[str, Any]:
    return {
        "action_id": a.action_id,
        "case_id": a.case_id,
        "owner_partner": a.owner_partner,
        "description_entry_id": a.description_entry_id,
        "person_id": a.person_id,
        "deadline": a.deadline,
        "status": a.status.value,
        "note_ciphertext": a.note_ciphertext,
        "created_by": a.created_by,
        "created_at": a.created_at,
        "updated_by": a.updated_by,
        "updated_at": a.updated_at,
        "due_notified_at": a.due_notified_at,
        "overdue_notified_at": a.overdue_notified_at,
    }


def _action(row: Row[Any]) -> ActionRow:
    return ActionRow(
        action_id=row.action_id,
        case_id=row.case_id,
        owner_partner=row.owner_partner,
        description_entry_id=row.description_entry_id,
        person_id=row.person_id,
        deadline=row.deadline,
        status=ActionStatus(row.status),
        note_ciphertext=bytes(row.note_ciphertext) if row.note_ciphertext is not None else None,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
        due_notified_at=row.due_notified_at,
        overdue_notified_at=row.overdue_notified_at,
    )
