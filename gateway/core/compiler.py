"""Compile a validated policy into lookup tables, and decide requests against them.

For every (partner type, role, purpose, phase) the policy allows, the compiler resolves each
catalogue field once, at load. ``decide`` is then a few dictionary lookups and a selection
of the requested fields; no rule is evaluated per request.

Conflict resolution per field, over the rules that match:
  1. If any matching rule has ``override: true``, only the override rules compete.
  2. The most restrictive effect wins: withhold > mask > disclose; between masks the
     transform with the higher rank wins (see ``gateway.core.transforms``).
  3. Among equally restrictive rules the first in policy order (file name, then position
     in the file) is named as the deciding rule.
A field no rule matches is withheld (deny by default).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from types import MappingProxyType
from typing import cast

from gateway.core.decisions import (
    NO_RULE_REASON,
    AccessRequest,
    Decision,
    FieldDecision,
    Refusal,
    RefusalCode,
)
from gateway.core.errors import (
    PolicyError,
    UnknownField,
    UnknownPartner,
    UnknownPhase,
    UnknownPurpose,
    UnknownRole,
)
from gateway.core.model import Effect, FieldSpec, PartnerSpec, PolicySet, Purpose, Rule
from gateway.core.parser import parse_documents
from gateway.core.transforms import TRANSFORMS
from gateway.core.validate import validate

_Key = tuple[str, str, str, str]
_Row = tuple[FieldDecision, ...]
_Selector = Callable[[_Row], _Row]
# Partners ask for the same few field lists again and again; remembering how to pick them
# keeps decide() a lookup. The bound keeps odd requests from growing the cache without end.
_SELECTOR_CACHE_SIZE = 1024
_EFFECT_RANK = {Effect.DISCLOSE: 0, Effect.MASK: 1, Effect.WITHHOLD: 2}


def _strictness(rule: Rule) -> tuple[int, int]:
    rank = TRANSFORMS[rule.transform].rank if rule.transform is not None else 0
    return _EFFECT_RANK[rule.effect], rank


def _decision(spec: FieldSpec, special: str, rule: Rule | None) -> FieldDecision:
    if rule is None:
        return FieldDecision(spec.id, spec.category, special, spec.source, Effect.WITHHOLD,
                             None, (), None, NO_RULE_REASON)
    reason = rule.reason.strip()
    if rule.override:
        reason = f"{reason} Override: {rule.override_reason.strip()}"
    masked = rule.effect is Effect.MASK
    return FieldDecision(spec.id, spec.category, special, spec.source, rule.effect,
                         rule.transform if masked else None, rule.params if masked else (),
                         rule.id, reason)


def resolve(spec: FieldSpec, special: str, matching: Sequence[Rule]) -> FieldDecision:
    """The decision for one field given the rules (in policy order) that match it."""
    overrides = [rule for rule in matching if rule.override]
    pool = overrides or matching
    # max() keeps the first of equals, which makes policy order the tie-break.
    winner = max(pool, key=_strictness) if pool else None
    return _decision(spec, special, winner)


class CompiledPolicy:
    """A policy ready to decide requests. Its decisions never change after construction."""

    def __init__(self, policy: PolicySet) -> None:
        """Build the tables. ``policy`` must be valid; use ``compile_policy`` to check it."""
        self.version = policy.version
        self.policy = policy
        self.fields: tuple[FieldSpec, ...] = policy.fields
        self.phases: tuple[str, ...] = tuple(p.id for p in policy.phases)
        self._partners = {p.id: p for p in policy.partners}
        self._purposes = {p.id: p for p in policy.purposes}
        # Read-only views by id, in policy order.
        self.partners: Mapping[str, PartnerSpec] = MappingProxyType(self._partners)
        self.purposes: Mapping[str, Purpose] = MappingProxyType(self._purposes)
        self._fields = {f.id: f for f in policy.fields}
        self._positions = {f.id: i for i, f in enumerate(policy.fields)}
        self._phase_ids = frozenset(self.phases)
        self._role_ids = frozenset(r.id for r in policy.roles)
        self._partner_roles = {p.id: frozenset(p.roles) for p in policy.partners}
        specials = {c.id: str(c.special) for c in policy.categories}
        self._rows = self._build(policy, specials)
        self._selectors: dict[tuple[str, ...], _Selector] = {}
        # Refused requests still list the asked fields, all withheld, for the log.
        self._refused = {
            code: tuple(FieldDecision(f.id, f.category, specials[f.category], f.source,
                                      Effect.WITHHOLD, None, (), None,
                                      f"request refused: {code}") for f in policy.fields)
            for code in RefusalCode
        }

    @staticmethod
    def _build(policy: PolicySet,
               specials: Mapping[str, str]) -> dict[_Key, tuple[FieldDecision, ...]]:
        targets = [frozenset(rule.fields) | frozenset(
            f.id for f in policy.fields if f.category in rule.categories)
            for rule in policy.rules]
        indexed = list(enumerate(policy.rules))
        rows: dict[_Key, tuple[FieldDecision, ...]] = {}
        for purpose in policy.purposes:
            for_purpose = [(i, r) for i, r in indexed if purpose.id in r.purposes]
            for partner_type in purpose.partner_types:
                roles = sorted({role for p in policy.partners if p.type == partner_type
                                for role in p.roles})
                for role in roles:
                    for_role = [(i, r) for i, r in for_purpose
                                if (r.who.partner_types is None
                                    or partner_type in r.who.partner_types)
                                and (r.who.roles is None or role in r.who.roles)]
                    for phase in purpose.phases:
                        for_phase = [(i, r) for i, r in for_role
                                     if r.phases is None or phase in r.phases]
                        rows[(partner_type, role, purpose.id, phase)] = tuple(
                            resolve(spec, specials[spec.category],
                                    [r for i, r in for_phase if spec.id in targets[i]])
                            for spec in policy.fields)
        return rows

    def partner(self, partner_id: str) -> PartnerSpec:
        try:
            return self._partners[partner_id]
        except KeyError:
            raise UnknownPartner(partner_id) from None

    def purpose(self, purpose_id: str) -> Purpose:
        try:
            return self._purposes[purpose_id]
        except KeyError:
            raise UnknownPurpose(purpose_id) from None

    def field(self, field_id: str) -> FieldSpec:
        try:
            return self._fields[field_id]
        except KeyError:
            raise UnknownField(field_id) from None

    def decide(self, request: AccessRequest) -> Decision:
        """Decide a request. Raises a RequestError for ids the policy does not know."""
        partner = self.partner(request.partner_id)
        purpose = self.purpose(request.purpose)
        if request.phase not in self._phase_ids:
            raise UnknownPhase(request.phase)
        if request.role not in self._role_ids:
            raise UnknownRole(request.role)
        select = self._selector(request.fields)
        refusal = self._refusal(partner, purpose, request)
        if refusal is None:
            row = self._rows[(partner.type, request.role, purpose.id, request.phase)]
            chosen = row if select is None else select(row)
            for decision in chosen:
                if decision.effect is not Effect.WITHHOLD:
                    break
            else:
                refusal = Refusal(RefusalCode.NOTHING_PERMITTED,
                                  "the policy releases none of the requested fields for this "
                                  "partner type, role, purpose and phase")
        else:
            row = self._refused[refusal.code]
            chosen = row if select is None else select(row)
        return Decision(request, partner.type, purpose, self.version, refusal, chosen)

    def _selector(self, fields: tuple[str, ...]) -> _Selector | None:
        """How to pick the requested fields (each once, in request order) from a row."""
        if not fields:
            return None
        selector = self._selectors.get(fields)
        if selector is not None:
            return selector
        positions = self._positions
        try:
            wanted = [positions[f] for f in dict.fromkeys(fields)]
        except KeyError as exc:
            raise UnknownField(str(exc.args[0])) from None
        if len(wanted) == 1:
            only = wanted[0]

            def selector(row: _Row) -> _Row:
                return (row[only],)
        else:
            getter = itemgetter(*wanted)

            def selector(row: _Row) -> _Row:
                return cast(_Row, getter(row))
        if len(self._selectors) >= _SELECTOR_CACHE_SIZE:
            self._selectors.clear()
        self._selectors[fields] = selector
        return selector

    def _refusal(self, partner: PartnerSpec, purpose: Purpose,
                 request: AccessRequest) -> Refusal | None:
        if request.role not in self._partner_roles[partner.id]:
            return Refusal(RefusalCode.ROLE_NOT_ALLOWED,
                           f"partner {partner.id!r} may not act in role {request.role!r}")
        if partner.type not in purpose.partner_types:
            return Refusal(RefusalCode.PURPOSE_NOT_ALLOWED,
                           f"partners of type {partner.type!r} may not ask for purpose "
                           f"{purpose.id!r}")
        if request.phase not in purpose.phases:
            return Refusal(RefusalCode.PHASE_NOT_ALLOWED,
                           f"purpose {purpose.id!r} does not apply in phase {request.phase!r}")
        if purpose.requires_participation and not request.participant:
            return Refusal(RefusalCode.NOT_PARTICIPANT,
                           f"purpose {purpose.id!r} is open only to partners taking part "
                           "in the case")
        if purpose.requires_justification and not request.justification.strip():
            return Refusal(RefusalCode.JUSTIFICATION_REQUIRED,
                           f"purpose {purpose.id!r} requires a written justification")
        return None


def compile_policy(policy: PolicySet) -> CompiledPolicy:
    """Check a parsed policy and compile it. Raises PolicyError with every problem found."""
    issues = validate(policy)
    if issues:
        raise PolicyError(issues)
    return CompiledPolicy(policy)


def load_policy(documents: Mapping[str, str]) -> CompiledPolicy:
    """Parse, check and compile policy documents (file name -> YAML text).

    Structural and semantic problems are reported together in one PolicyError.
    """
    parsed = parse_documents(documents)
    issues = parsed.issues + validate(parsed.policy, parsed.declared)
    if issues:
        raise PolicyError(issues)
    return CompiledPolicy(parsed.policy)
