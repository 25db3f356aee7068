"""Approaches (aanpakken) and person roles, resolved once for the compiler and the checks.

A policy without an ``approaches`` section has one approach, ``general``, open to every
partner type and purpose with every field; one without ``person_roles`` has the six roles
every ZVH uses (``DEFAULT_PERSON_ROLES``). An approach that leaves out ``partner_types`` or
``purposes`` uses every one; one that names neither ``fields`` nor ``categories`` applies
every field. The ZVH's own partner type is on every approach's table: the process director
and the privacy officer work every case.
"""

from __future__ import annotations

from dataclasses import replace

from gateway.core.model import (
    DEFAULT_PERSON_ROLES,
    GENERAL_APPROACH,
    ZVH_PARTNER_TYPE,
    ApproachSpec,
    PolicySet,
)

_GENERAL_DESCRIPTION = "Every case not worked in a specific approach."


def person_role_ids(policy: PolicySet) -> tuple[str, ...]:
    """The person roles of the policy, in policy order."""
    if policy.person_roles is None:
        return DEFAULT_PERSON_ROLES
    return tuple(dict.fromkeys(r.id for r in policy.person_roles))


def resolve_approaches(policy: PolicySet) -> tuple[ApproachSpec, ...]:
    """Every approach with its ids listed in full and its fields resolved, in policy order.

    Ids the policy does not know are dropped (the validator reports them).
    """
    declared = policy.approaches
    if declared is None:
        declared = (ApproachSpec(GENERAL_APPROACH, _GENERAL_DESCRIPTION, default=True),)
    return tuple(_resolved(policy, approach) for approach in declared)


def default_approach(approaches: tuple[ApproachSpec, ...]) -> str:
    """The id of the (first) default approach; the first approach when none is marked."""
    for approach in approaches:
        if approach.default:
            return approach.id
    return approaches[0].id if approaches else GENERAL_APPROACH


def _resolved(policy: PolicySet, approach: ApproachSpec) -> ApproachSpec:
    types = [t.id for t in policy.partner_types]
    wanted_types = set(types if approach.partner_types is None else approach.partner_types)
    wanted_types.add(ZVH_PARTNER_TYPE)
    purposes = [p.id for p in policy.purposes]
    wanted_purposes = set(purposes if approach.purposes is None else approach.purposes)
    if approach.fields or approach.categories:
        named, categories = set(approach.fields), set(approach.categories)
        fields = tuple(f.id for f in policy.fields
                       if f.id in named or f.category in categories)
    else:
        fields = tuple(f.id for f in policy.fields)
    return replace(approach,
                   partner_types=tuple(t for t in types if t in wanted_types),
                   purposes=tuple(p for p in purposes if p in wanted_purposes),
                   fields=fields)
