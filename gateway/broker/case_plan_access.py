"""Whom the plan's monitoring tells of what needs the process director (an overdue action).

The regie is assigned per case (``gateway.broker.regie``): the procesregie is taken when a ZVH
process director accepts the case at intake.
"""

from __future__ import annotations

from gateway.core import CompiledPolicy, UnknownPartner
from gateway.core.model import ZVH_PARTNER_TYPE
from gateway.store.cases import CaseRow


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
