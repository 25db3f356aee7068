"""gRPC face of the case meetings, the plan of approach and closure (CasePlanService)."""

from __future__ import annotations

from typing import Any, cast

from grpc import aio

from gateway.api.v1 import cases_pb2, plan_pb2, plan_pb2_grpc
from gateway.broker.case_plan import ActionView, CasePlan, Decision, MeetingView
from gateway.broker.case_plan_parts import MEETINGS, OPEN_ACTIONS
from gateway.broker.errors import InvalidRequest
from gateway.server import request_context
from gateway.server.metrics import Metrics
from gateway.server.status import serve_call
from gateway.store.case_plan import ActionStatus
from gateway.tlog.notes import format_time

Ctx = aio.ServicerContext[Any, Any]

_STATUS_IN = {
    plan_pb2.PLAN_ACTION_STATUS_OPEN: ActionStatus.OPEN,
    plan_pb2.PLAN_ACTION_STATUS_IN_PROGRESS: ActionStatus.IN_PROGRESS,
    plan_pb2.PLAN_ACTION_STATUS_DONE: ActionStatus.DONE,
    plan_pb2.PLAN_ACTION_STATUS_CANCELLED: ActionStatus.CANCELLED,
}
_STATUS_OUT = {v: k for k, v in _STATUS_IN.items()}
_CATEGORY_IN = {
    plan_pb2.CASE_CLOSURE_GOAL_REACHED: "goal_reached",
    plan_pb2.CASE_CLOSURE_HANDED_BACK: "handed_back",
    plan_pb2.CASE_CLOSURE_ESCALATED: "escalated",
    plan_pb2.CASE_CLOSURE_DECLINED: "declined",
}


class CasePlanService(plan_pb2_grpc.CasePlanServiceServicer):
    def __init__(self, plan: CasePlan, metrics: Metrics) -> None:
        self._plan = plan
        self._metrics = metrics

    async def PlanMeeting(  # noqa: N802 (gRPC method name)
        self, request: plan_pb2.PlanMeetingRequest, context: Ctx
    ) -> plan_pb2.PlanMeetingResponse:
        async def work() -> plan_pb2.PlanMeetingResponse:
            rc = request_context.current()
            meeting_id, seq = await self._plan.plan_meeting(
                rc.principal,
                rc.trace,
                request.case_id,
                request.scheduled_at,
                request.chair_partner,
                tuple(request.invited_partners),
            )
            return plan_pb2.PlanMeetingResponse(meeting_id=meeting_id, log_seq=seq)

        return await serve_call("PlanMeeting", context, self._metrics, work)

    async def RecordMeeting(  # noqa: N802
        self, request: plan_pb2.RecordMeetingRequest, context: Ctx
    ) -> plan_pb2.RecordMeetingResponse:
        async def work() -> plan_pb2.RecordMeetingResponse:
            rc = request_context.current()
            entry_id, seq = await self._plan.record_meeting(
                rc.principal,
                rc.trace,
                request.case_id,
                request.meeting_id,
                tuple(request.attended_partners),
                tuple(Decision(d.text, d.owner_partner) for d in request.decisions),
                request.minutes,
                request.minutes_classification,
            )
            return plan_pb2.RecordMeetingResponse(minutes_entry_id=entry_id, log_seq=seq)

        return await serve_call("RecordMeeting", context, self._metrics, work)

    async def ListMeetings(  # noqa: N802
        self, request: plan_pb2.ListMeetingsRequest, context: Ctx
    ) -> plan_pb2.ListMeetingsResponse:
        async def work() -> plan_pb2.ListMeetingsResponse:
            rc = request_context.current()
            views = await self._plan.list_meetings(rc.principal, rc.trace, request.case_id)
            return plan_pb2.ListMeetingsResponse(meetings=[_meeting(v) for v in views])

        return await serve_call("ListMeetings", context, self._metrics, work)

    async def AddPlanAction(  # noqa: N802
        self, request: plan_pb2.AddPlanActionRequest, context: Ctx
    ) -> plan_pb2.AddPlanActionResponse:
        async def work() -> plan_pb2.AddPlanActionResponse:
            rc = request_context.current()
            action_id, seq = await self._plan.add_action(
                rc.principal,
                rc.trace,
                request.case_id,
                request.owner_partner,
                request.description,
                request.deadline,
                request.person_id,
            )
            return plan_pb2.AddPlanActionResponse(action_id=action_id, log_seq=seq)

        return await serve_call("AddPlanAction", context, self._metrics, work)

    async def UpdatePlanAction(  # noqa: N802
        self, request: plan_pb2.UpdatePlanActionRequest, context: Ctx
    ) -> plan_pb2.UpdatePlanActionResponse:
        async def work() -> plan_pb2.UpdatePlanActionResponse:
            rc = request_context.current()
            status = _STATUS_IN.get(request.status)
            if status is None:
                raise InvalidRequest("status must be open, in_progress, done or cancelled")
            new_status, seq = await self._plan.update_action(
                rc.principal,
                rc.trace,
                request.case_id,
                request.action_id,
                status.value,
                request.note,
            )
            return plan_pb2.UpdatePlanActionResponse(
                status=_STATUS_OUT[new_status], log_seq=seq
            )

        return await serve_call("UpdatePlanAction", context, self._metrics, work)

    async def ListPlanActions(  # noqa: N802
        self, request: plan_pb2.ListPlanActionsRequest, context: Ctx
    ) -> plan_pb2.ListPlanActionsResponse:
        async def work() -> plan_pb2.ListPlanActionsResponse:
            rc = request_context.current()
            views = await self._plan.list_actions(rc.principal, rc.trace, request.case_id)
            return plan_pb2.ListPlanActionsResponse(actions=[_action(v) for v in views])

        return await serve_call("ListPlanActions", context, self._metrics, work)

    async def CloseCase(  # noqa: N802
        self, request: plan_pb2.CloseCaseRequest, context: Ctx
    ) -> plan_pb2.CloseCaseResponse:
        async def work() -> plan_pb2.CloseCaseResponse:
            rc = request_context.current()
            category = _CATEGORY_IN.get(request.category)
            if category is None:
                raise InvalidRequest(
                    "category must be goal_reached, handed_back, escalated or declined"
                )
            closed = await self._plan.close_case(
                rc.principal,
                rc.trace,
                request.case_id,
                category,
                request.closing_summary,
                request.from_phase,
            )
            return plan_pb2.CloseCaseResponse(
                phase=closed.case.phase,
                closed_at=format_time(closed.closed_at),
                log_seq=closed.log_seq,
            )

        return await serve_call("CloseCase", context, self._metrics, work)


def _meeting(view: MeetingView) -> plan_pb2.Meeting:
    m = view.meeting
    return plan_pb2.Meeting(
        meeting_id=m.meeting_id,
        scheduled_at=format_time(m.scheduled_at),
        chair_partner=m.chair_partner,
        invited_partners=list(m.invited),
        attended_partners=list(m.attended),
        recorded=m.recorded_at is not None,
        recorded_at=format_time(m.recorded_at) if m.recorded_at is not None else "",
        decisions=[
            plan_pb2.MeetingDecision(text=d.text, owner_partner=d.owner_partner)
            for d in view.decisions
        ],
        minutes_classification=m.minutes_classification or "",
    )


def _action(view: ActionView) -> plan_pb2.PlanAction:
    a = view.action
    return plan_pb2.PlanAction(
        action_id=a.action_id,
        owner_partner=a.owner_partner,
        description=view.description,
        deadline=format_time(a.deadline),
        person_id=a.person_id,
        status=_STATUS_OUT[a.status],
        note=view.note,
        created_at=format_time(a.created_at),
        updated_at=format_time(a.updated_at),
        overdue=view.overdue,
    )


def _write_meetings(response: cases_pb2.GetCaseResponse, value: object) -> None:
    views = cast(tuple[MeetingView, ...], value)
    response.meetings.extend(_meeting(v) for v in views)


def _write_open_actions(response: cases_pb2.GetCaseResponse, value: object) -> None:
    views = cast(tuple[ActionView, ...], value)
    response.open_actions.extend(_action(v) for v in views)


# How GetCase (CaseService) shows the plan's parts of a case (gateway.broker.case_plan_parts).
PLAN_PART_WRITERS = {MEETINGS: _write_meetings, OPEN_ACTIONS: _write_open_actions}
