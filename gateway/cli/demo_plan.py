"""The case plan's calls (CasePlanService, proto/ketenpoort/v1/plan.proto) as a partner
system makes them: over its own mutual-TLS channel, with the tokens of its PartnerClient."""

from __future__ import annotations

from collections.abc import Sequence

from adapters.channels import open_channel
from adapters.client import PartnerClient
from gateway.api.v1 import plan_pb2, plan_pb2_grpc

_TIMEOUT_S = 10.0


class PlanCalls:
    def __init__(self, address: str, client: PartnerClient) -> None:
        self._client = client
        self._channel = open_channel(address, client.credentials.tls)
        self._stub = plan_pb2_grpc.CasePlanServiceStub(self._channel)  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        await self._channel.close(None)

    async def plan_meeting(
        self, case_id: str, scheduled_at: str, chair: str, invited: Sequence[str]
    ) -> plan_pb2.PlanMeetingResponse:
        response: plan_pb2.PlanMeetingResponse = await self._stub.PlanMeeting(
            plan_pb2.PlanMeetingRequest(
                case_id=case_id, scheduled_at=scheduled_at, chair_partner=chair,
                invited_partners=list(invited),
            ),
            metadata=self._client.metadata(), timeout=_TIMEOUT_S,
        )
        return response

    async def record_meeting(
        self,
        case_id: str,
        meeting_id: str,
        attended: Sequence[str],
        decisions: Sequence[tuple[str, str]],
        minutes: str,
        classification: str,
    ) -> plan_pb2.RecordMeetingResponse:
        response: plan_pb2.RecordMeetingResponse = await self._stub.RecordMeeting(
            plan_pb2.RecordMeetingRequest(
                case_id=case_id, meeting_id=meeting_id, attended_partners=list(attended),
                decisions=[
                    plan_pb2.MeetingDecision(text=text, owner_partner=owner)
                    for text, owner in decisions
                ],
                minutes=minutes, minutes_classification=classification,
            ),
            metadata=self._client.metadata(), timeout=_TIMEOUT_S,
        )
        return response

    async def add_action(
        self, case_id: str, owner: str, description: str, deadline: str, person_id: str = ""
    ) -> plan_pb2.AddPlanActionResponse:
        response: plan_pb2.AddPlanActionResponse = await self._stub.AddPlanAction(
            plan_pb2.AddPlanActionRequest(
                case_id=case_id, owner_partner=owner, description=description,
                deadline=deadline, person_id=person_id,
            ),
            metadata=self._client.metadata(), timeout=_TIMEOUT_S,
        )
        return response

    async def update_action(
        self, case_id: str, action_id: str, status: plan_pb2.PlanActionStatus, note: str
    ) -> plan_pb2.UpdatePlanActionResponse:
        response: plan_pb2.UpdatePlanActionResponse = await self._stub.UpdatePlanAction(
            plan_pb2.UpdatePlanActionRequest(
                case_id=case_id, action_id=action_id, status=status, note=note
            ),
            metadata=self._client.metadata(), timeout=_TIMEOUT_S,
        )
        return response

    async def list_actions(self, case_id: str) -> plan_pb2.ListPlanActionsResponse:
        response: plan_pb2.ListPlanActionsResponse = await self._stub.ListPlanActions(
            plan_pb2.ListPlanActionsRequest(case_id=case_id),
            metadata=self._client.metadata(), timeout=_TIMEOUT_S,
        )
        return response

    async def close_case(
        self,
        case_id: str,
        category: plan_pb2.CaseClosureCategory,
        summary: str,
        from_phase: str,
    ) -> plan_pb2.CloseCaseResponse:
        response: plan_pb2.CloseCaseResponse = await self._stub.CloseCase(
            plan_pb2.CloseCaseRequest(
                case_id=case_id, category=category, closing_summary=summary,
                from_phase=from_phase,
            ),
            metadata=self._client.metadata(), timeout=_TIMEOUT_S,
        )
        return response
