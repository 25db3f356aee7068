"""Small steps shared by the integration tests."""

from __future__ import annotations

from adapters.client import PartnerClient
from gateway.api.v1 import exchange_pb2
from gateway.cli.demo_data import GOAL, REASON, SUBJECT


async def register(police: PartnerClient, invitees: tuple[str, ...] = ("zvh",)) -> str:
    response: exchange_pb2.RegisterCaseResponse = await police.register_case(
        SUBJECT, "code_rood", reason=REASON, goal=GOAL, invitees=list(invitees)
    )
    return response.case_id


async def to_case_meeting(director: PartnerClient, case_id: str) -> None:
    await director.change_phase(case_id, "registration", "triage")
    await director.change_phase(case_id, "triage", "case_meeting")
