"""The plan's store on SQLite and PostgreSQL: notices claimed once, finished actions stay
finished, closure keeps its category and moment, and only live cases are monitored."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from gateway.store import CaseRepository, EntryRow
from gateway.store.case_plan import (
    ActionFinished,
    ActionRow,
    ActionStatus,
    CasePlanStore,
    MeetingAlreadyRecorded,
    MeetingRow,
    NoticeKind,
)
from gateway.store.errors import PhaseConflict
from tests.store.factories import T0
from tests.store.test_store_cases import register

DAY = timedelta(days=1)


@pytest.fixture
def plan(engine: Engine) -> CasePlanStore:
    return CasePlanStore(engine)


def _entry(entry_id: str, field: str = "case.plan_actions") -> EntryRow:
    return EntryRow(entry_id, "c1", field, b"ct", "zvh", T0)


def _action(action_id: str, deadline_days: float) -> tuple[ActionRow, EntryRow]:
    description = _entry("e_" + action_id)
    return (
        ActionRow(
            action_id=action_id,
            case_id="c1",
            owner_partner="ggz",
            description_entry_id=description.entry_id,
            person_id="",
            deadline=T0 + deadline_days * DAY,
            status=ActionStatus.OPEN,
            note_ciphertext=None,
            created_by="zvh",
            created_at=T0,
            updated_by="zvh",
            updated_at=T0,
        ),
        description,
    )


def test_each_notice_is_claimed_once(cases: CaseRepository, plan: CasePlanStore) -> None:
    register(cases)
    plan.add_action(*_action("a1", 3))
    plan.add_action(*_action("a2", 1))
    notices = plan.pending_notices(T0 + 1.5 * DAY, due_within=2 * DAY)
    # a2 is overdue and told so first; a1 comes due.
    assert [(n.kind, n.action.action_id) for n in notices] == [
        (NoticeKind.OVERDUE, "a2"), (NoticeKind.DUE, "a1"),
    ]
    # Two replicas claim the same notices: each goes out once.
    assert [plan.claim_notice(n, T0 + 1.5 * DAY) for n in notices] == [True, True]
    assert [plan.claim_notice(n, T0 + 1.5 * DAY) for n in notices] == [False, False]
    assert plan.pending_notices(T0 + 1.5 * DAY, due_within=2 * DAY) == []
    # An action told overdue is not told due afterwards; a1 becomes overdue later.
    later = plan.pending_notices(T0 + 4 * DAY, due_within=2 * DAY)
    assert [(n.kind, n.action.action_id) for n in later] == [(NoticeKind.OVERDUE, "a1")]


def test_finished_actions_and_closed_cases_are_not_monitored(
    cases: CaseRepository, plan: CasePlanStore
) -> None:
    register(cases)
    plan.add_action(*_action("a1", 1))
    plan.add_action(*_action("a2", 1))
    plan.update_action("c1", "a1", status=ActionStatus.DONE, note_ciphertext=b"n", by="ggz",
                       at=T0)
    plan.update_action("c1", "a2", status=ActionStatus.IN_PROGRESS, note_ciphertext=b"first",
                       by="ggz", at=T0)
    plan.update_action("c1", "a2", status=ActionStatus.OPEN, note_ciphertext=None, by="zvh",
                       at=T0)
    assert plan.get_action("c1", "a2").note_ciphertext == b"first"
    with pytest.raises(ActionFinished):
        plan.update_action("c1", "a1", status=ActionStatus.OPEN, note_ciphertext=None,
                           by="ggz", at=T0)
    assert [n.action.action_id for n in plan.pending_notices(T0 + 2 * DAY, DAY)] == ["a2"]

    with pytest.raises(PhaseConflict):
        plan.close_case("c1", closing_phase="closure", expected_phase="plan",
                        category="declined", summary=_entry("e_s", "case.closing_summary"),
                        closed_at=T0 + DAY)
    closed = plan.close_case("c1", closing_phase="closure", expected_phase="registration",
                             category="declined", summary=_entry("e_s", "case.closing_summary"),
                             closed_at=T0 + DAY)
    assert closed.phase == "closure" and closed.closed_at == T0 + DAY
    assert plan.closure_category("c1") == "declined"
    assert plan.pending_notices(T0 + 2 * DAY, DAY) == []


def test_a_meeting_is_recorded_once(cases: CaseRepository, plan: CasePlanStore) -> None:
    register(cases)
    plan.add_meeting(MeetingRow("m1", "c1", T0 + DAY, "zvh", "zvh", T0, ("ggz", "politie"), ()))
    recorded = plan.record_meeting(
        "c1", "m1", attended=["zvh", "ggz"], decisions_ciphertext=b"d",
        minutes=_entry("e_m", "case.meeting_minutes"), minutes_classification="ordinary",
        recorded_by="zvh", recorded_at=T0 + DAY,
    )
    assert recorded.invited == ("ggz", "politie", "zvh") and recorded.attended == ("ggz", "zvh")
    with pytest.raises(MeetingAlreadyRecorded):
        plan.record_meeting(
            "c1", "m1", attended=[], decisions_ciphertext=b"d", minutes=None,
            minutes_classification=None, recorded_by="zvh", recorded_at=T0 + DAY,
        )
    assert [m.meeting_id for m in plan.meetings("c1")] == ["m1"]
