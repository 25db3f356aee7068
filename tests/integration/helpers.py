"""Small steps shared by the integration tests."""

from __future__ import annotations

from adapters.client import PartnerClient
from gateway.api.v1 import cases_pb2, exchange_pb2
from gateway.cli.demo_data import GOAL, REASON, SUBJECT

INTAKE_REASON = "fits the ZVH's criteria"


async def register(
    police: PartnerClient, invitees: tuple[str, ...] = ("zvh",), approach: str = "general"
) -> str:
    """Register the demo subject's case under ``approach`` (the general one, whose table holds
    every partner type); the registering partner takes the casusregie, so a ``case_director``
    role claim of its counts on the case."""
    response: exchange_pb2.RegisterCaseResponse = await police.register_case(
        SUBJECT,
        "",
        approach=approach,
        reason=REASON,
        goal=GOAL,
        invitees=list(invitees),
        casusregie_partner=police.credentials.partner_id,
    )
    return response.case_id


async def accept(director: PartnerClient, case_id: str) -> None:
    """The ZVH's process director accepts the case at intake and so takes its procesregie:
    from then on it invites partners and changes the phase."""
    await director.cases.decide_intake(case_id, cases_pb2.ACCEPT, INTAKE_REASON)


async def to_case_meeting(director: PartnerClient, case_id: str) -> None:
    """Accept a newly registered case at intake and move it to the case meeting."""
    await accept(director, case_id)
    await director.change_phase(case_id, "registration", "triage")
    await director.change_phase(case_id, "triage", "case_meeting")
