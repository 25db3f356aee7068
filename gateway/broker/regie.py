"""Regie on a case: who steers it, who leads on its content, and what a role claim counts for.

A ZVH assigns two regies per case (DESIGN §1): the procesregie (the ZVH's process director
steers the process) and the casusregie (a professional, usually of the municipality's social
domain team, leads on content). A token's role claim is what the partner says its user is in
general; on a given case it counts only where the case agrees:

- ``process_director`` counts for the holder of the case's procesregie (its partner, and its
  user when the regie names one); before the procesregie is assigned (intake pending, or
  advice only) for any process director of a ZVH partner, so the ZVH can assess the case;
- ``case_director`` counts for the holder of the case's casusregie;
- any other holder of such a claim acts as ``chain_partner``.

Only the procesregisseur (the holder, with the claim) invites partners, changes the phase and
the approach, and hands the procesregie on. Everything here reads the case row of the call in
progress: nothing is cached, so a transfer takes effect at the next call, on every replica.

This module is pure: it takes the case and the caller and decides; the use cases that store
and log live in ``gateway.broker.case_work``.
"""

from __future__ import annotations

from enum import StrEnum

from gateway.broker.caller import Principal
from gateway.broker.errors import InvalidRequest, NoZvhPartner
from gateway.core import CompiledPolicy
from gateway.store.cases import CaseRow

PROCESS_DIRECTOR = "process_director"
CASE_DIRECTOR = "case_director"
CHAIN_PARTNER = "chain_partner"
ZVH_PARTNER_TYPE = "zvh"
MUNICIPALITY_PARTNER_TYPE = "municipality"
# Until the policy names its approaches (policy section ``approaches:``), these are the ids.


class Intake(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    ADVICE_ONLY = "advice_only"


# Intake states in which the ZVH may (still) decide the intake.
OPEN_INTAKE = frozenset({Intake.PENDING.value, Intake.ADVICE_ONLY.value})


def holds(partner_id: str, user: str, who: Principal) -> bool:
    """Whether ``who`` is the holder ``partner_id`` (and ``user``, when one is named)."""
    return bool(partner_id) and partner_id == who.partner_id and user in ("", who.user_ref)


def holds_procesregie(case: CaseRow, who: Principal) -> bool:
    return holds(case.procesregie_partner, case.procesregie_user, who)


def holds_casusregie(case: CaseRow, who: Principal) -> bool:
    return holds(case.casusregie_partner, case.casusregie_user, who)


def is_procesregisseur(case: CaseRow, who: Principal) -> bool:
    """The caller acts as the case's procesregisseur: the claim and the regie."""
    return who.role == PROCESS_DIRECTOR and holds_procesregie(case, who)


def is_casusregisseur(case: CaseRow, who: Principal) -> bool:
    return who.role == CASE_DIRECTOR and holds_casusregie(case, who)


def is_zvh_director(who: Principal) -> bool:
    """A process director of a ZVH partner: may decide the intake of a case not yet taken."""
    return who.role == PROCESS_DIRECTOR and who.partner_type == ZVH_PARTNER_TYPE


def assigned_to(case: CaseRow, who: Principal) -> bool:
    """The caller holds either regie of the case (whatever role it claims)."""
    return holds_procesregie(case, who) or holds_casusregie(case, who)


def takes_part(case: CaseRow, who: Principal) -> bool:
    """Whether the caller takes part in the case: invited, registering, or the ZVH, which
    takes part in every case (also in one registered before the ZVH was added to each case
    at registration, so that its process director can take it on at intake)."""
    return who.partner_id in case.participants or who.partner_type == ZVH_PARTNER_TYPE


def effective_role(case: CaseRow, who: Principal) -> str:
    """The role the call acts in on this case (see the module docstring)."""
    if who.role == PROCESS_DIRECTOR:
        if holds_procesregie(case, who):
            return PROCESS_DIRECTOR
        unassigned = not case.procesregie_partner and case.intake in OPEN_INTAKE
        if unassigned and who.partner_type == ZVH_PARTNER_TYPE:
            return PROCESS_DIRECTOR
        return CHAIN_PARTNER
    if who.role == CASE_DIRECTOR:
        return CASE_DIRECTOR if holds_casusregie(case, who) else CHAIN_PARTNER
    return who.role


def zvh_partners(policy: CompiledPolicy) -> tuple[str, ...]:
    """The partners of type zvh the policy names (sorted); refused when there is none."""
    found = tuple(sorted(p.id for p in policy.partners.values() if p.type == ZVH_PARTNER_TYPE))
    if not found:
        raise NoZvhPartner(
            "the policy names no partner of type zvh; the ZVH takes part in every case, so "
            "no case can be registered"
        )
    return found


def check_approach(policy: CompiledPolicy, approach: str) -> str:
    known = policy.approaches
    if approach not in known:
        raise InvalidRequest(f"unknown approach; known: {', '.join(sorted(known))}")
    return approach


def registration_approach(policy: CompiledPolicy, approach: str, case_type: str) -> str:
    """The approach of a new case: ``approach``, else the deprecated ``case_type`` (which must
    then be an approach id), else the policy's default."""
    if approach:
        check_approach(policy, approach)
        if case_type and case_type != approach:
            raise InvalidRequest("case_type (deprecated) differs from approach; send approach only")
        return approach
    if case_type:
        if case_type not in policy.approaches:
            raise InvalidRequest(
                "case_type (deprecated) must be an approach id; "
                f"known: {', '.join(sorted(policy.approaches))}"
            )
        return case_type
    return policy.default_approach


def initial_casusregie(policy: CompiledPolicy, registrant: Principal, named: str) -> str:
    """Who takes the casusregie at registration: the partner named, else the registering
    partner when it is a municipality, else nobody (the procesregisseur assigns it)."""
    if named:
        if named not in policy.partners:
            raise InvalidRequest("unknown casusregie_partner")
        return named
    if registrant.partner_type == MUNICIPALITY_PARTNER_TYPE:
        return registrant.partner_id
    return ""
