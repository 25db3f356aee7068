"""The same policy in Cedar, decided through its Python binding (cedarpy), for comparison.

Mapping (one Cedar authorization per requested field):

- principal ``Partner::"<partner id>"`` with attributes ``partner_type`` and ``roles``;
- action ``Action::"<purpose id>"``, one per purpose;
- resource ``Field::"<field id>"`` with attribute ``category`` and parent
  ``Category::"<category id>"``, so that ``resource in [Field::"a", Category::"b"]`` reaches
  a rule's fields and categories alike;
- context ``{role, phase, participant, justified}``; ``justified`` is whether the written
  justification has anything but blanks (Cedar cannot trim a string).

Every rule becomes one Cedar policy per purpose it names (``action == Action::"p"`` in the
head lets Cedar set aside the policies of other purposes cheaply), annotated with ``@id``
(the rule id), ``@effect`` and, for masks, ``@transform``. ``disclose`` and ``mask`` become
``permit``; ``withhold`` becomes ``forbid``. Cedar's own resolution (deny by default, any
forbid beats every permit) is our "most restrictive wins" for release versus withhold.
Overrides have no Cedar counterpart: every rule that is not an override carries ``unless {
<an override rule that overlaps it matches> }``, so that when an override applies only the
override rules take part, as in ``gateway.core.compiler``. The refusals of a whole request
(role not held, purpose not open to the partner type or not in the phase, participation,
justification) are ``forbid`` policies annotated ``@id("refusal:<code>")``.

Cedar answers allow or deny. Which transform a released field gets is read from the permit
policies Cedar reports as satisfied: the most restrictive of them, ties to policy order, the
same choice the compiler makes.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import cedarpy

from gateway.core import AccessRequest, Effect, PolicySet, Purpose, Rule
from gateway.core.transforms import TRANSFORMS

_EFFECT_RANK = {Effect.DISCLOSE: 0, Effect.MASK: 1, Effect.WITHHOLD: 2}
PERMIT_ALL = "permit (principal, action, resource);\n"
# Principal, action and resource as {"type", "id"}: the binding builds those about twice as
# fast as uids written as Cedar text. The context is JSON text, shared by a record's requests.
CedarRequest = dict[str, object]


@dataclass(frozen=True, slots=True)
class CedarOutcome:
    """What Cedar decided for one field: released or not, and how (from the winning permit)."""

    field: str
    released: bool
    transform: str | None
    params: tuple[tuple[str, str | int], ...]
    rule_id: str | None
    errors: tuple[str, ...]


@dataclass(frozen=True)
class CedarPolicy:
    """A policy translated to Cedar, parsed once into cedarpy handles."""

    text: str
    entities_json: str
    policies: cedarpy.PolicySet
    entities: cedarpy.Entities
    rules: Mapping[str, tuple[int, Rule]]

    def requests(self, request: AccessRequest, fields: Sequence[str]) -> list[CedarRequest]:
        """One Cedar request per field, sharing one serialised context."""
        context = json.dumps({
            "role": request.role,
            "phase": request.phase,
            "participant": request.participant,
            "justified": bool(request.justification.strip()),
        })
        principal = {"type": "Partner", "id": request.partner_id}
        action = {"type": "Action", "id": request.purpose}
        return [{"principal": principal, "action": action,
                 "resource": {"type": "Field", "id": f}, "context": context} for f in fields]

    def authorize(self, requests: list[CedarRequest]) -> list[cedarpy.AuthzResult]:
        """One batch call: the whole cost of asking Cedar about a record."""
        return cedarpy.is_authorized_batch(requests, self.policies, self.entities)

    def decide(self, request: AccessRequest, fields: Sequence[str]) -> list[CedarOutcome]:
        results = self.authorize(self.requests(request, fields))
        return [self._outcome(field, result) for field, result in zip(fields, results,
                                                                       strict=True)]

    def _outcome(self, field: str, result: cedarpy.AuthzResult) -> CedarOutcome:
        errors = tuple(str(e) for e in result.diagnostics.errors)
        if not result.allowed:
            return CedarOutcome(field, False, None, (), None, errors)
        by_reason = result.diagnostics.id_annotations_by_reason
        satisfied = [self.rules[by_reason[reason]] for reason in result.diagnostics.reasons]
        # The most restrictive permit wins; among equals the first in policy order.
        _, winner = max(satisfied, key=lambda item: (_strictness(item[1]), -item[0]))
        masked = winner.effect is Effect.MASK
        return CedarOutcome(field, True, winner.transform if masked else None,
                            winner.params if masked else (), winner.id, errors)


def permit_all(cedar: CedarPolicy) -> CedarPolicy:
    """The same entities with one policy that permits everything: what any Cedar answer costs
    through the binding before a single rule of ours is evaluated."""
    return replace(cedar, text=PERMIT_ALL, policies=cedarpy.PolicySet.from_str(PERMIT_ALL))


def engine_metrics(cedar: CedarPolicy,
                   batches: Iterable[list[CedarRequest]]) -> dict[str, float]:
    """Cedar's own account of its time per request (µs, median): building the request from
    the binding's input, and authorizing it."""
    build: list[int] = []
    authz: list[int] = []
    for batch in batches:
        for result in cedar.authorize(batch):
            build.append(result.metrics["build_request_duration_micros"])
            authz.append(result.metrics["authz_duration_micros"])
    return {"build_request_us": statistics.median(build),
            "authorize_us": statistics.median(authz)}


def _strictness(rule: Rule) -> tuple[int, int]:
    rank = TRANSFORMS[rule.transform].rank if rule.transform is not None else 0
    return _EFFECT_RANK[rule.effect], rank


def _text(value: str) -> str:
    """A Cedar string literal. Policy ids hold no quotes or control characters, so JSON's
    quoting is Cedar's; other characters are written as they are."""
    return json.dumps(value, ensure_ascii=False)


def _uid(kind: str, ident: str) -> str:
    return f"{kind}::{_text(ident)}"


def _strings(values: Iterable[str]) -> str:
    return "[" + ", ".join(_text(v) for v in values) + "]"


def _targets(policy: PolicySet, rule: Rule) -> frozenset[str]:
    return frozenset(rule.fields) | frozenset(
        f.id for f in policy.fields if f.category in rule.categories)


def _overlap(a: Sequence[str] | None, b: Sequence[str] | None) -> bool:
    return a is None or b is None or bool(set(a) & set(b))


def _conditions(rule: Rule) -> list[str]:
    """The rule's who, phase and field conditions (the action is in the policy head)."""
    conds = []
    if rule.who.partner_types is not None:
        conds.append(f"{_strings(rule.who.partner_types)}.contains(principal.partner_type)")
    if rule.who.roles is not None:
        conds.append(f"{_strings(rule.who.roles)}.contains(context.role)")
    if rule.phases is not None:
        conds.append(f"{_strings(rule.phases)}.contains(context.phase)")
    targets = [_uid("Field", f) for f in rule.fields]
    targets += [_uid("Category", c) for c in rule.categories]
    conds.append(f"resource in [{', '.join(targets)}]")
    return conds


def _rule_policy(rule: Rule, purpose: str, overrides: Sequence[Rule]) -> str:
    kind = "forbid" if rule.effect is Effect.WITHHOLD else "permit"
    lines = [f"@id({_text(rule.id)})", f"@effect({_text(rule.effect)})"]
    if rule.effect is Effect.MASK and rule.transform is not None:
        lines.append(f"@transform({_text(rule.transform)})")
    lines.append(f"{kind} (principal, action == {_uid('Action', purpose)}, resource)")
    lines.append("when { " + " && ".join(_conditions(rule)) + " }")
    if overrides:
        alternatives = ["(" + " && ".join(_conditions(o)) + ")" for o in overrides]
        lines.append("unless { " + " || ".join(alternatives) + " }")
    return "\n".join(lines) + ";"


def _overlapping_overrides(policy: PolicySet, rule: Rule, purpose: str) -> list[Rule]:
    """Override rules that can match a request for ``purpose`` and a field together with
    ``rule``."""
    if rule.override:
        return []
    targets = _targets(policy, rule)
    return [o for o in policy.rules if o.override
            and purpose in o.purposes
            and _overlap(o.who.partner_types, rule.who.partner_types)
            and _overlap(o.who.roles, rule.who.roles)
            and _overlap(o.phases, rule.phases)
            and _targets(policy, o) & targets]


def _refusals(purposes: Sequence[Purpose]) -> list[str]:
    out = ['@id("refusal:role_not_allowed")\nforbid (principal, action, resource)\n'
           "unless { principal.roles.contains(context.role) };"]
    for purpose in purposes:
        head = f"forbid (principal, action == {_uid('Action', purpose.id)}, resource)"
        out.append(f'@id("refusal:purpose_not_allowed")\n{head}\n'
                   f"unless {{ {_strings(purpose.partner_types)}"
                   ".contains(principal.partner_type) };")
        out.append(f'@id("refusal:phase_not_allowed")\n{head}\n'
                   f"unless {{ {_strings(purpose.phases)}.contains(context.phase) }};")
        if purpose.requires_participation:
            out.append(f'@id("refusal:not_participant")\n{head}\n'
                       "unless { context.participant };")
        if purpose.requires_justification:
            out.append(f'@id("refusal:justification_required")\n{head}\n'
                       "unless { context.justified };")
    return out


def _entities(policy: PolicySet) -> list[dict[str, object]]:
    entities: list[dict[str, object]] = []
    for partner in policy.partners:
        entities.append({"uid": {"type": "Partner", "id": partner.id},
                         "attrs": {"partner_type": partner.type, "roles": list(partner.roles)},
                         "parents": []})
    for category in policy.categories:
        entities.append({"uid": {"type": "Category", "id": category.id}, "attrs": {},
                         "parents": []})
    for spec in policy.fields:
        entities.append({"uid": {"type": "Field", "id": spec.id},
                         "attrs": {"category": spec.category},
                         "parents": [{"type": "Category", "id": spec.category}]})
    return entities


def translate(policy: PolicySet) -> CedarPolicy:
    """Translate a valid policy into Cedar policies and entities, parsed once."""
    statements = _refusals(policy.purposes)
    statements += [_rule_policy(rule, purpose, _overlapping_overrides(policy, rule, purpose))
                   for rule in policy.rules for purpose in rule.purposes]
    text = "\n\n".join(statements) + "\n"
    entities_json = json.dumps(_entities(policy))
    return CedarPolicy(
        text=text,
        entities_json=entities_json,
        policies=cedarpy.PolicySet.from_str(text),
        entities=cedarpy.Entities.from_json_str(entities_json),
        rules={rule.id: (index, rule) for index, rule in enumerate(policy.rules)},
    )
