"""Explanations: why a field gets its outcome in a (partner type, role, purpose, phase,
approach, person role).

An explanation names the deciding rule and every other rule that matched, each with the
reason it lost, so a privacy officer can see what a change to one rule would do. It is read
from the analysis made at load; explaining costs no evaluation of rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.core.analysis import CellKey, PolicyAnalysis, strictness
from gateway.core.decisions import FieldDecision, Refusal, RefusalCode
from gateway.core.model import Effect, Location, Params, Rule

LOST_TO_OVERRIDE = "not an override; override rules set it aside"
LESS_RESTRICTIVE = "less restrictive than the winner"
EQUALLY_RESTRICTIVE = "equally restrictive; the winner comes first"
OUTSIDE_APPROACH = "the field does not apply under the case's approach"


@dataclass(frozen=True, slots=True)
class RuleRef:
    """A rule as an explanation shows it, with the place it was written."""

    id: str
    loc: Location
    effect: Effect
    transform: str | None
    params: Params
    override: bool
    reason: str

    @classmethod
    def of(cls, rule: Rule) -> RuleRef:
        return cls(rule.id, rule.loc, rule.effect, rule.transform, rule.params, rule.override,
                   rule.reason.strip())


@dataclass(frozen=True, slots=True)
class LostRule:
    rule: RuleRef
    why: str


@dataclass(frozen=True, slots=True)
class FieldExplanation:
    """The outcome of one field and the rules behind it; ``winner`` None means no rule matched
    (deny by default), or that the field does not apply under the approach
    (``outside_approach``; the rules that would match are then listed as losers)."""

    field: str
    category: str
    special: str
    effect: Effect
    transform: str | None
    params: Params
    winner: RuleRef | None
    losers: tuple[LostRule, ...]
    outside_approach: bool = False


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why each field gets its outcome in one cell. ``refusal`` is set, and ``fields`` empty,
    when no request can be made in that cell at all."""

    partner_type: str
    role: str
    purpose: str
    phase: str
    refusal: Refusal | None
    fields: tuple[FieldExplanation, ...]
    approach: str = ""
    person_role: str = ""


@dataclass(frozen=True, slots=True)
class Cell:
    """One (partner type, role, purpose, phase, approach, person role) of the compiled
    policy, with every field's decision in catalogue order. ``person_role`` "" is the case
    level."""

    partner_type: str
    role: str
    purpose: str
    phase: str
    fields: tuple[FieldDecision, ...]
    approach: str = ""
    person_role: str = ""

    @property
    def key(self) -> CellKey:
        return (self.partner_type, self.role, self.purpose, self.phase, self.approach,
                self.person_role)


def why_lost(loser: Rule, winner: Rule) -> str:
    if winner.override and not loser.override:
        return LOST_TO_OVERRIDE
    if strictness(loser) < strictness(winner):
        return LESS_RESTRICTIVE
    return EQUALLY_RESTRICTIVE


def missing_cell(analysis: PolicyAnalysis, partner_type: str, role: str, purpose: str,
                 phase: str, approach: str, person_role: str = "") -> Refusal | None:
    """Why no request can be made in the cell, or None when it exists.

    The reasons are checked in the order ``decide`` checks them; all ids must be known.
    """
    if role not in analysis.roles_of.get(partner_type, ()):
        return Refusal(RefusalCode.ROLE_NOT_ALLOWED,
                       f"no partner of type {partner_type!r} acts in role {role!r}")
    spec_approach = analysis.approach_ids[approach]
    if partner_type not in (spec_approach.partner_types or ()):
        return Refusal(RefusalCode.NOT_ON_APPROACH_TABLE,
                       f"partners of type {partner_type!r} are not on the standing table of "
                       f"approach {approach!r}")
    if purpose not in (spec_approach.purposes or ()):
        return Refusal(RefusalCode.PURPOSE_NOT_IN_APPROACH,
                       f"approach {approach!r} does not use purpose {purpose!r}")
    spec = next(p for p in analysis.policy.purposes if p.id == purpose)
    if partner_type not in spec.partner_types:
        return Refusal(RefusalCode.PURPOSE_NOT_ALLOWED,
                       f"partners of type {partner_type!r} may not ask for purpose {purpose!r}")
    if phase not in spec.phases:
        return Refusal(RefusalCode.PHASE_NOT_ALLOWED,
                       f"purpose {purpose!r} does not apply in phase {phase!r}")
    return None


def explain_fields(analysis: PolicyAnalysis, key: CellKey,
                   row: tuple[FieldDecision, ...],
                   positions: tuple[int, ...]) -> tuple[FieldExplanation, ...]:
    """Explanations of the fields at ``positions`` of an existing cell, whose row is given."""
    group = analysis.group(key)
    assert group is not None, "explain_fields needs an existing cell"
    rules = analysis.rules
    explained: list[FieldExplanation] = []
    for position in positions:
        decided = row[position]
        won = group.winners[position]
        winner = None if won is None else rules[won]
        outside = position in group.excluded
        if outside:
            losers = tuple(LostRule(RuleRef.of(rules[i]), OUTSIDE_APPROACH)
                           for i in group.matching[position])
        else:
            losers = () if winner is None else tuple(
                LostRule(RuleRef.of(rules[i]), why_lost(rules[i], winner))
                for i in group.matching[position] if i != won)
        explained.append(FieldExplanation(
            decided.field, decided.category, decided.special, decided.effect,
            decided.transform, decided.params, None if winner is None else RuleRef.of(winner),
            losers, outside))
    return tuple(explained)
