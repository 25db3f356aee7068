"""Who holds the process director's regie on a case: the one place the plan's use cases ask.

The ZVH's process director (procesregisseur) plans and records the case meetings, keeps the
plan of approach and closes the case; the monitoring escalates overdue actions to it. Until
regie is assigned per case (``gateway.broker.regie.effective_role``), the regie is held by
the caller whose partner is of type ``zvh`` and who acts in role ``process_director``. Swap
these two functions, and nothing else, to the per-case regie holder.
"""

from __future__ import annotations

from gateway.broker.caller import Principal
from gateway.core import CompiledPolicy, UnknownPartner
from gateway.store.cases import CaseRow

ZVH_PARTNER_TYPE = "zvh"
PROCESS_DIRECTOR_ROLE = "process_director"


def holds_procesregie(case: CaseRow, who: Principal, policy: CompiledPolicy) -> bool:
    """Whether ``who`` holds the process director's regie on ``case``."""
    return (
        _partner_type(policy, who.partner_id) == ZVH_PARTNER_TYPE
        and who.role == PROCESS_DIRECTOR_ROLE
    )


def procesregie_partners(case: CaseRow, policy: CompiledPolicy) -> tuple[str, ...]:
    """The partners that hold the process director's regie on ``case``: those told of what
    needs the process director (an overdue action)."""
    return tuple(
        p for p in case.participants if _partner_type(policy, p) == ZVH_PARTNER_TYPE
    )


def _partner_type(policy: CompiledPolicy, partner_id: str) -> str:
    try:
        return policy.partner(partner_id).type
    except UnknownPartner:
        return ""
