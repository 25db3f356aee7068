"""Case meetings, the plan of approach, its monitoring and closure over real gRPC, on SQLite
and PostgreSQL, under the shipped policy with the plan's fields and the handover purpose laid
over it (tests/integration/plan_policy.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from sqlalchemy import select

from gateway.api.v1 import common_pb2, exchange_pb2, plan_pb2
from gateway.cli.demo_data import GOAL, REASON, SUBJECT
from gateway.store.tables import case_meetings, cases, plan_actions
from tests.integration.harness import Harness, running_harness
from tests.integration.helpers import accept
from tests.integration.plan_helpers import (
    Clock,
    PlanCaller,
    RecordingSink,
    log_bodies,
    log_kinds,
    stored_entries,
)
from tests.integration.plan_policy import plan_policy

MINUTES = (
    "Minuten: moeder vertelt over dreiging door ex-partner, kinderen slapen slecht.\n"
    + "Afspraken volgen hieronder. " * 12
)
DECISION = "Huisverbod voorbereiden met de politie"
DESCRIPTION = "Gesprek met moeder over veilige opvang plannen.\n" + "Met de kinderen. " * 20
SUMMARY = "Overgedragen aan het sociaal wijkteam.\nDe casusregisseur zet de hulp voort. " * 5


@dataclass
class PlanGateway:
    harness: Harness
    sink: RecordingSink
    clock: Clock
    zvh: PlanCaller
    police: PlanCaller
    ggz: PlanCaller
    housing: PlanCaller

    async def register(self, invitees: tuple[str, ...] = ("zvh", "ggz", "housing")) -> str:
        # The general approach: every partner type of the covenant is on its table.
        response: exchange_pb2.RegisterCaseResponse = await self.police.client.register_case(
            SUBJECT,
            "general",
            reason=REASON,
            goal=GOAL,
            invitees=list(invitees),
            casusregie_partner="police",
        )
        # The ZVH's process director takes the case on, and with it the procesregie.
        await accept(self.zvh.client, response.case_id)
        return response.case_id

    async def to_case_meeting(self, case_id: str) -> None:
        await self.zvh.client.change_phase(case_id, "registration", "triage")
        await self.zvh.client.change_phase(case_id, "triage", "case_meeting")


@pytest.fixture
async def plan(db_url: str, dev_keys: Path, tmp_path: Path) -> AsyncIterator[PlanGateway]:
    policy = plan_policy(tmp_path)
    sink = RecordingSink()
    clock = Clock(datetime.now(UTC))
    async with running_harness(
        db_url,
        dev_keys,
        policy,
        clock=clock,
        case_events=sink,
        # The test runs the monitoring itself, at the clock it moves.
        config_changes={"plan_monitor_interval_s": 0.0},
    ) as harness:
        callers = {p: PlanCaller(harness, p) for p in ("zvh", "police", "ggz", "housing")}
        try:
            yield PlanGateway(harness, sink, clock, **callers)
        finally:
            for caller in callers.values():
                await caller.close()


def _in(days: float, clock: Clock) -> str:
    return (clock.now + timedelta(days=days)).isoformat()


async def _code(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    return info.value.code()


async def test_a_meeting_is_planned_recorded_and_its_minutes_stay_encrypted(
    plan: PlanGateway,
) -> None:
    case_id = await plan.register(invitees=("zvh", "housing"))
    planned = await plan.zvh(
        "PlanMeeting",
        plan_pb2.PlanMeetingRequest(
            case_id=case_id,
            scheduled_at=_in(7, plan.clock),
            chair_partner="zvh",
            invited_partners=["police", "ggz"],
        ),
    )
    # ggz was not yet taking part: the meeting's invitation brings it into the case.
    await plan.ggz.client.add_to_case_file(case_id, "case.notes", "ggz neemt deel")
    [event] = plan.sink.of("meeting_planned")
    assert event.case_id == case_id and set(event.recipients) == {"zvh", "police", "ggz"}

    recorded = await plan.zvh(
        "RecordMeeting",
        plan_pb2.RecordMeetingRequest(
            case_id=case_id,
            meeting_id=planned.meeting_id,
            attended_partners=["zvh", "police", "ggz"],
            decisions=[plan_pb2.MeetingDecision(text=DECISION, owner_partner="police")],
            minutes=MINUTES,
        ),
    )
    assert recorded.minutes_entry_id and recorded.log_seq > planned.log_seq

    # Neither minutes nor decisions reach the log; the database holds them as ciphertext.
    bodies = "\n".join(log_bodies(plan.harness))
    assert MINUTES not in bodies and DECISION not in bodies
    assert planned.meeting_id in bodies
    [minutes_ct] = stored_entries(plan.harness, case_id)["case.meeting_minutes"]
    assert MINUTES.encode() not in minutes_ct and b"dreiging" not in minutes_ct
    with plan.harness.gateway.engine.begin() as conn:
        decisions_ct = conn.execute(
            select(case_meetings.c.decisions_ciphertext).where(
                case_meetings.c.meeting_id == planned.meeting_id
            )
        ).scalar_one()
    assert DECISION.encode() not in bytes(decisions_ct)
    kinds = log_kinds(plan.harness, case_id)
    assert "meeting_planned" in kinds and "meeting_recorded" in kinds

    # Partners at the table see the decisions; housing takes part in the case but not the
    # meeting, and sees that it was held.
    listed = await plan.ggz("ListMeetings", plan_pb2.ListMeetingsRequest(case_id=case_id))
    [meeting] = listed.meetings
    assert meeting.recorded and [d.text for d in meeting.decisions] == [DECISION]
    assert set(meeting.attended_partners) == {"zvh", "police", "ggz"}
    other = await plan.housing("ListMeetings", plan_pb2.ListMeetingsRequest(case_id=case_id))
    assert other.meetings[0].recorded and not other.meetings[0].decisions

    # The minutes are a case-file field the policy releases: a chain partner gets their
    # start (truncated to 280 characters), as the shipped policy says.
    await plan.to_case_meeting(case_id)
    opened = await plan.ggz.client.request_disclosure(
        case_id, "analysis_and_plan", "case_meeting", fields=["case.meeting_minutes"]
    )
    shown = opened.values["case.meeting_minutes"]
    assert shown != MINUTES and MINUTES.startswith(shown.rstrip("…"))
    assert len(shown) <= 281

    # A meeting is recorded once.
    again = plan.zvh(
        "RecordMeeting",
        plan_pb2.RecordMeetingRequest(case_id=case_id, meeting_id=planned.meeting_id),
    )
    assert await _code(again) == grpc.StatusCode.FAILED_PRECONDITION


async def test_only_the_process_director_plans_and_bad_input_is_refused(
    plan: PlanGateway,
) -> None:
    case_id = await plan.register()
    request = plan_pb2.PlanMeetingRequest(
        case_id=case_id, scheduled_at=_in(3, plan.clock), chair_partner="zvh"
    )
    assert await _code(plan.police("PlanMeeting", request)) == grpc.StatusCode.PERMISSION_DENIED
    assert "refusal" in log_kinds(plan.harness, case_id)
    # The ZVH acting in another role does not hold the process director's regie.
    chain = PlanCaller(plan.harness, "zvh", role="chain_partner")
    try:
        assert await _code(chain("PlanMeeting", request)) == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await chain.close()
    bad_time = plan_pb2.PlanMeetingRequest(
        case_id=case_id, scheduled_at="next tuesday", chair_partner="zvh"
    )
    assert await _code(plan.zvh("PlanMeeting", bad_time)) == grpc.StatusCode.INVALID_ARGUMENT
    stranger = plan_pb2.PlanMeetingRequest(
        case_id=case_id, scheduled_at=_in(3, plan.clock), chair_partner="zvh",
        invited_partners=["nobody"],
    )
    assert await _code(plan.zvh("PlanMeeting", stranger)) == grpc.StatusCode.INVALID_ARGUMENT
    unknown = plan_pb2.RecordMeetingRequest(case_id=case_id, meeting_id="m_none")
    assert await _code(plan.zvh("RecordMeeting", unknown)) == grpc.StatusCode.NOT_FOUND
    minutes_class = plan_pb2.RecordMeetingRequest(
        case_id=case_id, meeting_id="m_none", minutes="x", minutes_classification="secret"
    )
    assert (
        await _code(plan.zvh("RecordMeeting", minutes_class))
        == grpc.StatusCode.INVALID_ARGUMENT
    )


async def test_the_owner_updates_its_action_and_others_are_refused(plan: PlanGateway) -> None:
    case_id = await plan.register()
    added = await plan.zvh(
        "AddPlanAction",
        plan_pb2.AddPlanActionRequest(
            case_id=case_id, owner_partner="ggz", description=DESCRIPTION,
            deadline=(plan.clock.now + timedelta(days=10)).date().isoformat(),
        ),
    )
    assert DESCRIPTION not in "\n".join(log_bodies(plan.harness))
    [description_ct] = stored_entries(plan.harness, case_id)["case.plan_actions"]
    assert DESCRIPTION.encode() not in description_ct

    update = plan_pb2.UpdatePlanActionRequest(
        case_id=case_id, action_id=added.action_id,
        status=plan_pb2.PLAN_ACTION_STATUS_IN_PROGRESS, note="Eerste gesprek gevoerd",
    )
    answer = await plan.ggz("UpdatePlanAction", update)
    assert answer.status == plan_pb2.PLAN_ACTION_STATUS_IN_PROGRESS
    # A participant that does not own the action may not change it, nor may a chain
    # partner add actions.
    assert (
        await _code(plan.housing("UpdatePlanAction", update)) == grpc.StatusCode.PERMISSION_DENIED
    )
    add = plan_pb2.AddPlanActionRequest(
        case_id=case_id, owner_partner="housing", description="x", deadline="2030-01-01"
    )
    assert await _code(plan.housing("AddPlanAction", add)) == grpc.StatusCode.PERMISSION_DENIED
    unspecified = plan_pb2.UpdatePlanActionRequest(case_id=case_id, action_id=added.action_id)
    assert (
        await _code(plan.ggz("UpdatePlanAction", unspecified)) == grpc.StatusCode.INVALID_ARGUMENT
    )

    # The owner and the process director read the description and note; others do not.
    mine = await plan.ggz("ListPlanActions", plan_pb2.ListPlanActionsRequest(case_id=case_id))
    [action] = mine.actions
    assert action.description == DESCRIPTION and action.note == "Eerste gesprek gevoerd"
    assert action.status == plan_pb2.PLAN_ACTION_STATUS_IN_PROGRESS and not action.overdue
    theirs = await plan.housing(
        "ListPlanActions", plan_pb2.ListPlanActionsRequest(case_id=case_id)
    )
    assert theirs.actions[0].owner_partner == "ggz" and theirs.actions[0].description == ""

    # The process director may close it; a done action changes no more.
    done = plan_pb2.UpdatePlanActionRequest(
        case_id=case_id, action_id=added.action_id, status=plan_pb2.PLAN_ACTION_STATUS_DONE
    )
    await plan.zvh("UpdatePlanAction", done)
    assert await _code(plan.ggz("UpdatePlanAction", update)) == grpc.StatusCode.FAILED_PRECONDITION
    kinds = log_kinds(plan.harness, case_id)
    assert kinds.count("plan_action_updated") == 2 and "plan_action_added" in kinds


async def test_due_and_overdue_actions_are_told_once(plan: PlanGateway) -> None:
    case_id = await plan.register()
    monitor = plan.harness.gateway.plan_monitor
    assert monitor is not None

    async def add(days: float) -> str:
        added = await plan.zvh(
            "AddPlanAction",
            plan_pb2.AddPlanActionRequest(
                case_id=case_id, owner_partner="ggz", description=DESCRIPTION,
                deadline=_in(days, plan.clock),
            ),
        )
        return str(added.action_id)

    late = await add(3)
    finished = await add(3)
    await plan.ggz(
        "UpdatePlanAction",
        plan_pb2.UpdatePlanActionRequest(
            case_id=case_id, action_id=finished, status=plan_pb2.PLAN_ACTION_STATUS_DONE
        ),
    )
    report = await monitor.run_once()
    assert report is not None and (report.due, report.overdue) == (0, 0)

    plan.clock.advance(timedelta(days=1, hours=12))  # within the two days' notice
    report = await monitor.run_once()
    assert report is not None and (report.due, report.overdue) == (1, 0)
    [due] = plan.sink.of("action_due")
    assert due.case_id == case_id and set(due.recipients) == {"zvh", "ggz"}
    assert (await monitor.run_once()) == report.__class__(0, 0)

    plan.clock.advance(timedelta(days=2))
    report = await monitor.run_once()
    assert report is not None and (report.due, report.overdue) == (0, 1)
    [overdue] = plan.sink.of("action_overdue")
    # Escalated to the process director, and told to the owner.
    assert set(overdue.recipients) == {"zvh", "ggz"} and overdue.at == plan.clock.now
    plan.clock.advance(timedelta(days=5))
    assert (await monitor.run_once()) == report.__class__(0, 0)
    assert len(plan.sink.of("action_overdue")) == 1

    listed = await plan.zvh("ListPlanActions", plan_pb2.ListPlanActionsRequest(case_id=case_id))
    overdue_ids = {a.action_id for a in listed.actions if a.overdue}
    assert overdue_ids == {late}
    with plan.harness.gateway.engine.begin() as conn:
        told = conn.execute(
            select(plan_actions.c.overdue_notified_at).where(plan_actions.c.action_id == late)
        ).scalar_one()
    assert told is not None


async def test_closure_with_a_category_then_the_handover(plan: PlanGateway) -> None:
    case_id = await plan.register()
    close = plan_pb2.CloseCaseRequest(
        case_id=case_id, category=plan_pb2.CASE_CLOSURE_HANDED_BACK,
        closing_summary=SUMMARY, from_phase="registration",
    )
    assert await _code(plan.police("CloseCase", close)) == grpc.StatusCode.PERMISSION_DENIED
    no_category = plan_pb2.CloseCaseRequest(
        case_id=case_id, closing_summary=SUMMARY, from_phase="registration"
    )
    assert await _code(plan.zvh("CloseCase", no_category)) == grpc.StatusCode.INVALID_ARGUMENT
    wrong_phase = plan_pb2.CloseCaseRequest(
        case_id=case_id, category=plan_pb2.CASE_CLOSURE_HANDED_BACK,
        closing_summary=SUMMARY, from_phase="monitoring",
    )
    assert await _code(plan.zvh("CloseCase", wrong_phase)) == grpc.StatusCode.FAILED_PRECONDITION

    closed = await plan.zvh("CloseCase", close)
    assert closed.phase == "closure" and closed.closed_at
    with plan.harness.gateway.engine.begin() as conn:
        row = conn.execute(
            select(cases.c.closure_category, cases.c.closed_at).where(cases.c.case_id == case_id)
        ).one()
    # The closure moment is what starts the retention clock.
    assert row.closure_category == "handed_back" and row.closed_at == plan.clock.now
    assert SUMMARY not in "\n".join(log_bodies(plan.harness))
    assert "case_closed" in log_kinds(plan.harness, case_id)

    # After closure the case director still receives the closing summary (handover) ...
    opened = await plan.police.client.request_disclosure(
        case_id, "handover", "closure", fields=["case.closing_summary"]
    )
    assert opened.values["case.closing_summary"] == SUMMARY
    # ... a chain partner does not (nothing released: refused), and the plan changes no more.
    other = plan.ggz.client.request_disclosure(
        case_id, "handover", "closure", fields=["case.closing_summary"]
    )
    assert await _code(other) == grpc.StatusCode.PERMISSION_DENIED
    add = plan_pb2.AddPlanActionRequest(
        case_id=case_id, owner_partner="ggz", description="x", deadline="2030-01-01"
    )
    assert await _code(plan.zvh("AddPlanAction", add)) == grpc.StatusCode.FAILED_PRECONDITION
    assert await _code(plan.zvh("CloseCase", close)) == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_health_note_does_not_reach_a_partner_without_a_ground(
    plan: PlanGateway,
) -> None:
    case_id = await plan.register()
    text = "Moeder is opgenomen geweest in een psychiatrische kliniek."
    await plan.zvh.client.add_to_case_file(case_id, "case.notes", text, classification="health")
    assert set(stored_entries(plan.harness, case_id)) >= {"case.notes.health"}
    await plan.to_case_meeting(case_id)
    care = await plan.ggz.client.request_disclosure(
        case_id, "analysis_and_plan", "case_meeting", fields=["case.notes.health"]
    )
    assert care.values["case.notes.health"] == text
    housing = await plan.housing.client.request_disclosure(
        case_id, "analysis_and_plan", "case_meeting", fields=["case.notes.health", "case.goal"]
    )
    assert "case.notes.health" not in housing.values and housing.values["case.goal"] == GOAL
    assert housing.outcomes["case.notes.health"].outcome == common_pb2.OUTCOME_WITHHELD
    # The ordinary notes field does not carry the health note either.
    notes = await plan.ggz.client.request_disclosure(
        case_id, "analysis_and_plan", "case_meeting", fields=["case.notes"]
    )
    assert text not in "".join(notes.values.values())


async def test_a_confidential_note_reaches_only_its_author(plan: PlanGateway) -> None:
    case_id = await plan.register()
    await plan.ggz.client.add_to_case_file(
        case_id, "case.notes", "ggz: alleen voor ons", classification="confidential"
    )
    await plan.police.client.add_to_case_file(
        case_id, "case.notes", "politie: alleen voor ons", classification="confidential"
    )
    await plan.to_case_meeting(case_id)
    field = "case.notes.confidential"
    ggz = await plan.ggz.client.request_disclosure(
        case_id, "analysis_and_plan", "case_meeting", fields=[field]
    )
    assert ggz.values[field] == "ggz: alleen voor ons"
    police = await plan.police.client.request_disclosure(
        case_id, "analysis_and_plan", "case_meeting", fields=[field]
    )
    assert police.values[field] == "politie: alleen voor ons"
    zvh = await plan.zvh.client.request_disclosure(
        case_id, "analysis_and_plan", "case_meeting", fields=[field]
    )
    assert field not in zvh.values

    bad = plan.ggz.client.add_to_case_file(case_id, "case.notes", "x", classification="secret")
    assert await _code(bad) == grpc.StatusCode.INVALID_ARGUMENT
    goal = plan.ggz.client.add_to_case_file(case_id, "case.goal", "x", classification="health")
    assert await _code(goal) == grpc.StatusCode.INVALID_ARGUMENT
    person = plan.ggz.client.add_to_case_file(case_id, "case.notes", "x", person_id="p_none")
    assert await _code(person) == grpc.StatusCode.INVALID_ARGUMENT


async def test_registration_classifies_reason_and_concerns(plan: PlanGateway) -> None:
    clear = plan.harness.client("police", "case_director", seal_submissions=False)
    try:
        response = await clear.register_case_raw(
            exchange_pb2.RegisterCaseRequest(
                subject=SUBJECT, case_type="code_rood", reason=REASON, goal=GOAL,
                invitees=["zvh"], reason_classification="criminal",
                concerns="Zorgen over middelengebruik", concerns_classification="health",
                request_id="reg-classified-1",
            )
        )
        stored = set(stored_entries(plan.harness, response.case_id))
        assert {"case.reason.criminal", "case.concerns.health"} <= stored
        assert "case.reason" not in stored
        # The classes are part of the request: a resend gets the same case, other classes
        # under the same request id are another request.
        def request(concerns_class: str) -> exchange_pb2.RegisterCaseRequest:
            return exchange_pb2.RegisterCaseRequest(
                subject=SUBJECT, case_type="code_rood", reason=REASON, goal=GOAL,
                invitees=["zvh"], reason_classification="criminal",
                concerns="Zorgen over middelengebruik", concerns_classification=concerns_class,
                request_id="reg-classified-1",
            )

        again = await clear.register_case_raw(request("health"))
        assert again.case_id == response.case_id
        other = clear.register_case_raw(request("ordinary"))
        assert await _code(other) == grpc.StatusCode.ALREADY_EXISTS
        bad = clear.register_case_raw(
            exchange_pb2.RegisterCaseRequest(
                subject=SUBJECT, case_type="code_rood", reason=REASON,
                reason_classification="whisper",
            )
        )
        assert await _code(bad) == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        await clear.close()


async def test_retention_shreds_the_plan_with_the_case(plan: PlanGateway) -> None:
    case_id = await plan.register()
    meeting = await plan.zvh(
        "PlanMeeting",
        plan_pb2.PlanMeetingRequest(
            case_id=case_id, scheduled_at=_in(1, plan.clock), chair_partner="zvh",
            invited_partners=["ggz"],
        ),
    )
    await plan.zvh(
        "AddPlanAction",
        plan_pb2.AddPlanActionRequest(
            case_id=case_id, owner_partner="ggz", description=DESCRIPTION,
            deadline=_in(5, plan.clock),
        ),
    )
    await plan.zvh(
        "CloseCase",
        plan_pb2.CloseCaseRequest(
            case_id=case_id, category=plan_pb2.CASE_CLOSURE_GOAL_REACHED,
            closing_summary=SUMMARY, from_phase="registration",
        ),
    )
    gateway = plan.harness.gateway
    assert gateway.retention is not None
    plan.clock.advance(timedelta(days=gateway.config.retention_days_after_closure + 1))
    report = await gateway.retention.run_once()
    assert report is not None and [c.case_id for c in report.cases] == [case_id]
    with gateway.engine.begin() as conn:
        for table in (plan_actions, case_meetings):
            left = conn.execute(select(table).where(table.c.case_id == case_id)).all()
            assert left == []
    assert meeting.meeting_id
    # The monitor passes over a closed case: its actions are never overdue.
    assert gateway.plan_monitor is not None
    assert (await gateway.plan_monitor.run_once()) is not None
    assert plan.sink.of("action_overdue") == []


async def test_the_plan_service_is_served_healthy_and_reflected(plan: PlanGateway) -> None:
    channel = plan.harness.channel("zvh")
    try:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(
            health_pb2.HealthCheckRequest(service="ketenpoort.v1.CasePlanService"), timeout=5
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        names: set[str] = set()
        async for response in stub.ServerReflectionInfo(iter([request]), timeout=5):
            names |= {s.name for s in response.list_services_response.service}
        assert "ketenpoort.v1.CasePlanService" in names
    finally:
        await channel.close()


async def test_an_action_about_a_person_is_read_back_and_disclosed(plan: PlanGateway) -> None:
    """An action that names a person of the case is sealed bound to that person: the owner
    reads it back and a disclosure of the plan opens it (a description bound to no person but
    stored under one failed every disclosure of the plan)."""
    case_id = await plan.register()
    detail = await plan.zvh.client.cases.get_case(case_id)
    [person] = detail.persons
    added = await plan.zvh(
        "AddPlanAction",
        plan_pb2.AddPlanActionRequest(
            case_id=case_id, owner_partner="ggz", description=DESCRIPTION,
            deadline=(plan.clock.now + timedelta(days=10)).date().isoformat(),
            person_id=person.person_id,
        ),
    )
    mine = await plan.ggz("ListPlanActions", plan_pb2.ListPlanActionsRequest(case_id=case_id))
    assert [a.description for a in mine.actions if a.action_id == added.action_id] == [
        DESCRIPTION
    ]
    await plan.to_case_meeting(case_id)
    await plan.zvh.client.change_phase(case_id, "case_meeting", "plan")
    opened = await plan.ggz.client.request_disclosure(
        case_id, "analysis_and_plan", "plan", fields=["case.plan_actions"]
    )
    assert DESCRIPTION in opened.values["case.plan_actions"]


async def test_get_case_shows_the_meetings_and_the_open_actions(plan: PlanGateway) -> None:
    case_id = await plan.register()
    meeting = await plan.zvh(
        "PlanMeeting",
        plan_pb2.PlanMeetingRequest(
            case_id=case_id, scheduled_at=_in(7, plan.clock), chair_partner="zvh",
            invited_partners=["police", "ggz"],
        ),
    )
    deadline = (plan.clock.now + timedelta(days=10)).date().isoformat()
    kept = await plan.zvh("AddPlanAction", plan_pb2.AddPlanActionRequest(
        case_id=case_id, owner_partner="ggz", description=DESCRIPTION, deadline=deadline))
    finished = await plan.zvh("AddPlanAction", plan_pb2.AddPlanActionRequest(
        case_id=case_id, owner_partner="ggz", description="klaar", deadline=deadline))
    await plan.ggz("UpdatePlanAction", plan_pb2.UpdatePlanActionRequest(
        case_id=case_id, action_id=finished.action_id, status=plan_pb2.PLAN_ACTION_STATUS_DONE))

    owner = await plan.ggz.client.cases.get_case(case_id)
    assert [m.meeting_id for m in owner.meetings] == [meeting.meeting_id]
    assert [(a.action_id, a.description) for a in owner.open_actions] == [
        (kept.action_id, DESCRIPTION)
    ]
    # Another participant sees the action, not what it says.
    other = await plan.housing.client.cases.get_case(case_id)
    assert [(a.action_id, a.description) for a in other.open_actions] == [(kept.action_id, "")]


async def test_a_process_director_claim_without_the_procesregie_closes_nothing(
    plan: PlanGateway,
) -> None:
    """The role claim alone grants nothing: police claiming process_director, and the case
    director, are refused closing a case whose procesregie the ZVH holds; each on record."""
    case_id = await plan.register()
    close = plan_pb2.CloseCaseRequest(
        case_id=case_id,
        category=plan_pb2.CASE_CLOSURE_HANDED_BACK,
        closing_summary="Overgedragen aan het lokale team.",
        from_phase="registration",
    )
    claimant = PlanCaller(plan.harness, "police", role="process_director")
    try:
        assert await _code(claimant("CloseCase", close)) == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await claimant.close()
    assert await _code(plan.police("CloseCase", close)) == grpc.StatusCode.PERMISSION_DENIED
    # The police may not act as process director at all (refused with its token, on record
    # as an auth refusal); as case director it reaches the case and is refused there.
    refusals = [r.event for r in plan.harness.gateway.log.list_records(case_id=case_id)
                if r.event.kind == "refusal"]
    assert [(e.partner_id, e.role, e.refusal_code) for e in refusals] == [
        ("police", "case_director", "not_procesregisseur")
    ]
    assert "case_closed" not in log_kinds(plan.harness, case_id)


async def test_closing_a_case_tells_its_participants_of_the_phase_change(
    plan: PlanGateway,
) -> None:
    case_id = await plan.register()
    stream = plan.police.client.cases.watch_events()
    await plan.zvh("CloseCase", plan_pb2.CloseCaseRequest(
        case_id=case_id, category=plan_pb2.CASE_CLOSURE_GOAL_REACHED,
        closing_summary=SUMMARY, from_phase="registration",
    ))
    kinds = []
    async for event in stream:
        if event.case_id == case_id:
            kinds.append(event.kind)
        if "phase_changed" in kinds:
            break
    assert kinds[-1] == "phase_changed"
