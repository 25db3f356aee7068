"""Case 1 of the demo: a Code Rood family case, from registration to a warm handover.

The municipality registers a family (the alleged perpetrator, the mother as victim, two
children, the younger known only by name and birth year); the ZVH takes it on; the process
director triages the partner types of its choice, plans and records the case meeting, makes a
plan whose actions the owners work, sees an action run overdue, and closes the case handed
back to the municipality's casusregisseur, who receives the closing summary.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import grpc

from gateway.api.v1 import exchange_pb2, plan_pb2
from gateway.cli.demo_checks import Demo, disclose, expect_refusal, expect_status
from gateway.cli.demo_data import CODE_ROOD_GOAL, CODE_ROOD_PERSONS, CODE_ROOD_REASON, SUBJECT
from gateway.cli.demo_steps import (
    accept_intake,
    check_log,
    move,
    register,
    verify_prove_and_review,
)
from gateway.cli.demo_triage import triage
from gateway.cli.demo_views import CaseView

APPROACH = "code_rood"
# The partner types the process director asks in triage; the others of the table are not
# asked (Code Rood's table has more: om, municipality, addiction care).
TRIAGE_TYPES = ("police", "veilig_thuis", "child_protection", "ggz", "probation")
MINUTES = (
    "Case meeting: the father's aggression treatment lapsed and his drinking is daily; the "
    "mother has nightmares and sees the trauma team."
)
HEALTH_NOTE = "GGZ: the father missed three sessions; the mother started trauma therapy."
SUMMARY = (
    "Safety plan in place, supervision order for both children continues, the father in "
    "treatment. The municipality's social-domain team takes the family on."
)
# The process director's overdue action falls due a moment after it is made.
OVERDUE_AFTER_S = 1.0


async def play(demo: Demo) -> None:
    checks = demo.checks
    print("\n== Case 1: Code Rood, a family (registered by the municipality) ==")
    print("\n1.1 Registration, sealed; a registration in clear is refused")
    case = await register(
        demo, "Code Rood", "municipality", APPROACH, CODE_ROOD_PERSONS,
        reason=CODE_ROOD_REASON, goal=CODE_ROOD_GOAL, invitees=["police", "veilig-thuis"],
        casusregie="municipality",
    )
    await _clear_registration_refused(demo)

    print("\n1.2 Veilig Thuis acts at once (break-glass) with a written justification")
    await disclose(
        demo, case, "veilig-thuis", "acute_safety", "registration",
        justification="Children at home tonight; safety plan needed before 18:00",
    )
    await expect_refusal(
        demo, case, "veilig-thuis", "acute_safety", "registration",
        grpc.StatusCode.PERMISSION_DENIED, "break-glass without a justification is refused",
    )

    print("\n1.3 Intake: the ZVH takes the procesregie, the municipality keeps the casusregie")
    await accept_intake(demo, case, "Acute domestic violence with children: Code Rood")
    mine = await demo.clients["municipality"].cases.list_cases(assigned_to_me=True)
    checks.check(
        case.case_id in {c.case_id for c in mine.cases},
        "the municipality's work surface lists the case as assigned to it (casusregie)",
    )

    print("\n1.4 Targeted triage: the process director chooses whom to ask")
    await move(demo, case, "triage")
    await triage(demo, case, TRIAGE_TYPES)

    print("\n1.5 Case meeting: planned and recorded by the procesregisseur; health note")
    await move(demo, case, "case_meeting")
    await expect_refusal(
        demo, case, "ggz", "analysis_and_plan", "case_meeting",
        grpc.StatusCode.PERMISSION_DENIED, "GGZ asking before it is invited is refused",
    )
    await expect_status(
        demo, demo.clients["police"].invite(case.case_id, "ggz"),
        grpc.StatusCode.PERMISSION_DENIED, "only the procesregisseur invites partners",
    )
    await _meeting(demo, case)
    await demo.clients["ggz"].add_to_case_file(
        case.case_id, "case.notes", HEALTH_NOTE, classification="health"
    )
    case.write("case.notes.health", HEALTH_NOTE, "ggz")
    notes: dict[str, str | None] = {}
    for partner in ("police", "veilig-thuis", "rvdk", "ggz", "municipality", "zvh"):
        answer = await disclose(demo, case, partner, "analysis_and_plan", "case_meeting")
        notes[partner] = answer.values_of("").get("case.notes.health")
    checks.check(
        notes["ggz"] == HEALTH_NOTE and notes["police"] is None,
        "the health-classified note reached mental-health care, not the police",
    )
    await _child_reaches_protection_not_housing(demo, case)
    await expect_refusal(
        demo, case, "police", "analysis_and_plan", "triage",
        grpc.StatusCode.FAILED_PRECONDITION, "a request declaring the wrong phase fails",
    )

    print("\n1.6 Plan of approach: actions with owners and deadlines; monitoring")
    await move(demo, case, "plan")
    actions = await _plan(demo, case)
    await move(demo, case, "monitoring")
    await _monitoring(demo, case, actions)
    await disclose(demo, case, "rvdk", "monitoring", "monitoring")
    await disclose(demo, case, "municipality", "coordinate_interventions", "monitoring")

    print("\n1.7 Closure, handed back: the casusregisseur receives the closing summary")
    closed = await demo.plan["zvh"].close_case(
        case.case_id, plan_pb2.CASE_CLOSURE_HANDED_BACK, SUMMARY, "monitoring"
    )
    case.write("case.closing_summary", SUMMARY, "zvh")
    checks.check(closed.phase == "closure", "case closed (handed back); retention clock runs")
    answer = await disclose(demo, case, "municipality", "handover", "closure")
    checks.check(
        answer.values_of("").get("case.closing_summary") == SUMMARY,
        "the municipality's casusregisseur opened the closing summary",
    )

    print("\n1.8 The privacy officer: log, proofs, break-glass review, access report")
    seqs = await check_log(demo, case, SUBJECT.bsn, "the father")
    await verify_prove_and_review(demo, seqs[0], break_glass=len(case.persons))


async def _clear_registration_refused(demo: Demo) -> None:
    clear = exchange_pb2.RegisterCaseRequest(
        persons=[CODE_ROOD_PERSONS["perpetrator"]], approach=APPROACH, reason=CODE_ROOD_REASON
    )
    await expect_status(
        demo,
        demo.clients["municipality"].register_case_raw(clear),
        grpc.StatusCode.FAILED_PRECONDITION,
        "a registration sent in clear is refused",
    )


async def _meeting(demo: Demo, case: CaseView) -> None:
    # Housing is invited to the case too: Code Rood's table has no place for it, so it is
    # refused below whatever it asks.
    await demo.clients["zvh"].invite(case.case_id, "housing")
    at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    planned = await demo.plan["zvh"].plan_meeting(
        case.case_id, at, "zvh", ["police", "veilig-thuis", "rvdk", "ggz", "municipality"]
    )
    recorded = await demo.plan["zvh"].record_meeting(
        case.case_id, planned.meeting_id,
        ["zvh", "police", "veilig-thuis", "rvdk", "ggz", "municipality"],
        [("Safety plan with the mother", "veilig-thuis"), ("Protect both children", "rvdk")],
        MINUTES, "health",
    )
    case.write("case.meeting_minutes.health", MINUTES, "zvh")
    demo.checks.check(
        bool(recorded.minutes_entry_id),
        "meeting planned (GGZ and child protection brought in) and recorded, minutes "
        "classified as health data",
    )


async def _child_reaches_protection_not_housing(demo: Demo, case: CaseView) -> None:
    """Shown once more by value: the younger child's name reaches child protection, and the
    housing corporation gets nothing of the case, the health note least of all."""
    lotte = case.person("child_lotte")
    answer = await disclose(
        demo, case, "rvdk", "analysis_and_plan", "case_meeting", persons=["child_lotte"],
    )
    got = answer.values_of(lotte.person_id)
    demo.checks.check(
        got.get("subject.name") == lotte.identity.name
        and got.get("gi.child_protection_measure", "").startswith("Supervision order"),
        "child protection received the younger child's name, and its own system found her "
        "by name and birth year alone",
    )
    await expect_refusal(
        demo, case, "housing", "analysis_and_plan", "case_meeting",
        grpc.StatusCode.PERMISSION_DENIED,
        "the housing corporation gets nothing: no child's data, no health note",
        reason="not_on_approach_table",
    )


async def _plan(demo: Demo, case: CaseView) -> dict[str, str]:
    zvh = demo.plan["zvh"]
    soon = (datetime.now(UTC) + timedelta(seconds=OVERDUE_AFTER_S)).isoformat()
    later = (datetime.now(UTC) + timedelta(days=14)).date().isoformat()
    # The actions name no person of the case (AddPlanActionRequest.person_id): an action
    # stored with one cannot be read back into case.plan_actions by this gateway version.
    plan = {
        "safety": ("veilig-thuis", "Safety plan with the mother at the shelter", later),
        "children": ("rvdk", "Talk to both children at school", soon),
        "treatment": ("ggz", "Resume the father's aggression treatment", later),
    }
    ids: dict[str, str] = {}
    for key, (owner, text, deadline) in plan.items():
        ids[key] = (await zvh.add_action(case.case_id, owner, text, deadline)).action_id
        case.write("case.plan_actions", text, "zvh")
    await demo.plan["ggz"].update_action(
        case.case_id, ids["treatment"], plan_pb2.PLAN_ACTION_STATUS_IN_PROGRESS,
        "Intake planned for next week",
    )
    listed = await demo.plan["ggz"].list_actions(case.case_id)
    status = {a.action_id: a.status for a in listed.actions}
    demo.checks.check(
        status.get(ids["treatment"]) == plan_pb2.PLAN_ACTION_STATUS_IN_PROGRESS,
        "three actions with owners and deadlines; GGZ, their owner, set one in progress",
    )
    await expect_status(
        demo,
        demo.plan["police"].update_action(
            case.case_id, ids["safety"], plan_pb2.PLAN_ACTION_STATUS_DONE, ""
        ),
        grpc.StatusCode.PERMISSION_DENIED,
        "the police cannot change Veilig Thuis's action",
    )
    return ids


async def _monitoring(demo: Demo, case: CaseView, ids: dict[str, str]) -> None:
    """The gateway's monitor tells the process director that the children's action is
    overdue; the plan's list says so too."""
    events = demo.clients["zvh"].cases.watch_events(case_id=case.case_id)

    async def overdue_event() -> bool:
        async for event in events:
            if event.kind == "action_overdue":
                return True
        return False

    try:
        told = await asyncio.wait_for(overdue_event(), timeout=10.0)
    except TimeoutError:
        told = False
    finally:
        events.cancel()  # type: ignore[attr-defined]
    listed = await demo.plan["zvh"].list_actions(case.case_id)
    overdue = {a.action_id for a in listed.actions if a.overdue}
    demo.checks.check(
        told and overdue == {ids["children"]},
        "monitoring: the process director was told the children's action is overdue; "
        "the others are not",
    )

