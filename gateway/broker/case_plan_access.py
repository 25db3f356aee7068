"""Who holds the process director's regie on a case: the one place the plan's use cases ask.

The ZVH's process director (procesregisseur) plans and records the case meetings, keeps the
plan of approach and closes the case; the monitoring escalates overdue actions to it. The
regie is assigned per case (``gateway.broker.regie``): a ``process_director`` claim counts only
for the holder of the case's procesregie, taken when a ZVH process director accepts the case
at intake.
"""

from __future__ import annotations

from gateway.broker.caller import Principal
from gateway.broker.regie import is_procesregisseur
from gateway.core import CompiledPolicy, UnknownPartner
from gateway.store.cases import CaseRow

ZVH_PARTNER_TYPE = "zvh"


def holds_procesregie(case: CaseRow, who: Principal, policy: CompiledPolicy) -> bool:
    """Whether ``who`` acts as the case's procesregisseur (the claim and the regie)."""
    del policy  # the regie is the case's, whatever the policy grants the partner
    return is_procesregisseur(case, who)


def procesregie_partners(case: CaseRow, policy: CompiledPolicy) -> tuple[str, ...]:
    """The partners told of what needs the process director (an overdue action): the holder
    of the procesregie, or, while nobody holds it, every ZVH partner taking part."""
    if case.procesregie_partner:
        return (case.procesregie_partner,)
    return tuple(
        p for p in case.participants if _partner_type(policy, p) == ZVH_PARTNER_TYPE
    )


def _partner_type(policy: CompiledPolicy, partner_id: str) -> str:
    try:
        return policy.partner(partner_id).type
    except UnknownPartner:
        return ""
