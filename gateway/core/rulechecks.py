"""Checks that compare rules with each other, cell by cell, over the policy's analysis.

* A rule that applies in no cell, or reaches no field, can never decide anything.
* A *contradiction*: two rules match the same field in the same cell, are equally specific,
  are both overrides or both not, and give different outcomes. Which one decides then
  rests on restrictiveness alone, which is rarely what the writer meant. Reported once per
  pair, at the later rule.
* A *shadowed* rule applies somewhere but decides no field anywhere: other rules always win.
  A rule already reported in a contradiction is not reported again as shadowed.
* A field no rule mentions is always withheld: a warning, since that may be meant.

These checks trust the references, so they run only on a policy without other errors.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.core.analysis import CellKey, PolicyAnalysis, outcome
from gateway.core.errors import PolicyIssue, Severity
from gateway.core.model import Effect, Location, Rule

# How many deciding rules a shadowed-rule message names before it counts the rest.
_MAX_NAMED = 3


def check_rules(analysis: PolicyAnalysis) -> list[PolicyIssue]:
    """Rules that never apply, contradictions and shadowed rules, in policy order."""
    issues = list(_inapplicable(analysis))
    contradicting, found = _contradictions(analysis)
    issues.extend(found)
    issues.extend(_shadowed(analysis, contradicting))
    return issues


def unmentioned_fields(analysis: PolicyAnalysis) -> list[PolicyIssue]:
    """A warning for every catalogue field no rule names, directly or by its category."""
    mentioned = {position for targets in analysis.targets for position in targets}
    warnings = []
    for position, spec in enumerate(analysis.policy.fields):
        if position not in mentioned:
            where = spec.at("id")
            warnings.append(PolicyIssue(
                where.file, where.line, where.column,
                f"no rule mentions field {spec.id!r}, so it is always withheld",
                f"add a rule that names {spec.id!r} (or its category {spec.category!r}), "
                "even one that withholds it, to record the decision; or remove the field "
                "from the catalogue", Severity.WARNING))
    return warnings


def _issue(where: Location, message: str, hint: str) -> PolicyIssue:
    return PolicyIssue(where.file, where.line, where.column, message, hint)


def _cell(analysis: PolicyAnalysis, key: CellKey) -> str:
    """The cell in words; the approach only when there is more than one, the person role
    only when the cell is about a person."""
    partner_type, role, purpose, phase, approach, person = key
    said = (f"partner type {partner_type!r}, role {role!r}, purpose {purpose!r}, "
            f"phase {phase!r}")
    if len(analysis.approaches) > 1:
        said += f", approach {approach!r}"
    if person:
        said += f", person role {person!r}"
    return said


def _shown(rule: Rule) -> str:
    effect, transform, params = outcome(rule)
    if effect is not Effect.MASK:
        return str(effect)
    shown = f"mask:{transform}"
    if params:
        shown += " (" + ", ".join(f"{k}={v}" for k, v in params) + ")"
    return shown


def _place(rule: Rule) -> str:
    return f"{rule.loc.file}:{rule.loc.line}"


def _inapplicable(analysis: PolicyAnalysis) -> Iterable[PolicyIssue]:
    applied = {index for group in analysis.groups for index in group.rules}
    for index, rule in enumerate(analysis.rules):
        if index not in applied:
            yield _issue(rule.loc, f"rule {rule.id!r} applies in no (partner type, role, "
                         "purpose, phase): its partner types, roles, phases and approaches "
                         "never meet in one of its purposes",
                         "check who.partner_types, who.roles, phases and approaches against "
                         "the partner_types and phases of the rule's purposes, the roles the "
                         "partners hold and the tables and purposes of the approaches; widen "
                         "the rule or remove it")
        elif not analysis.targets[index]:
            yield _issue(rule.loc, f"rule {rule.id!r} reaches no field: its categories "
                         "hold no fields",
                         "name fields, or categories that have fields in the catalogue")


def _contradictions(analysis: PolicyAnalysis) -> tuple[set[int], list[PolicyIssue]]:
    rules = analysis.rules
    reported: set[tuple[int, int]] = set()
    issues: list[PolicyIssue] = []
    for group in analysis.groups:
        for position, matching in enumerate(group.matching):
            for later_at, later in enumerate(matching):
                for earlier in matching[:later_at]:
                    if (earlier, later) in reported:
                        continue
                    a, b = rules[earlier], rules[later]
                    if (a.override != b.override or outcome(a) == outcome(b)
                            or analysis.specificity(earlier, position)
                            != analysis.specificity(later, position)):
                        continue
                    reported.add((earlier, later))
                    field = analysis.policy.fields[position].id
                    issues.append(_issue(
                        b.loc, f"rule {b.id!r} contradicts rule {a.id!r} ({_place(a)}) on "
                        f"field {field!r} for {_cell(analysis, group.first_cell)}: both are "
                        f"equally specific, {a.id!r} gives {_shown(a)} and this rule gives "
                        f"{_shown(b)}",
                        "make the two agree, or narrow one of them (who.partner_types, "
                        "who.roles, phases, approaches, persons, or naming the field instead "
                        "of its category) so "
                        "that it is the more specific; if one is a deliberate exception, mark "
                        "it `override: true` with an override_reason"))
    contradicting = {index for pair in reported for index in pair}
    return contradicting, issues


def _shadowed(analysis: PolicyAnalysis, contradicting: set[int]) -> Iterable[PolicyIssue]:
    rules = analysis.rules
    deciding: set[int] = set()
    # Per rule, the rules that decide in its place, in policy order of first sight.
    instead: dict[int, dict[int, None]] = {}
    for group in analysis.groups:
        for position, matching in enumerate(group.matching):
            won = group.winners[position]
            if won is None:
                continue
            deciding.add(won)
            for index in matching:
                if index != won:
                    instead.setdefault(index, {})[won] = None
    for index, rule in enumerate(rules):
        if index in deciding or index in contradicting or index not in instead:
            continue
        winners = sorted(instead[index])
        names = [f"{rules[w].id!r} ({_place(rules[w])})" for w in winners[:_MAX_NAMED]]
        if len(winners) > _MAX_NAMED:
            names.append(f"{len(winners) - _MAX_NAMED} more")
        named = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        yield _issue(rule.loc, f"rule {rule.id!r} never decides a field: wherever it applies, "
                     f"{'rule' if len(winners) == 1 else 'rules'} {named} "
                     f"{'decides' if len(winners) == 1 else 'decide'} instead",
                     "remove the rule if the rules that decide already say what is meant; "
                     "if it is meant as an exception to them, mark it `override: true` with "
                     "an override_reason")
