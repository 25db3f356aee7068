"""Special-category (AVG art. 9) and criminal (art. 10) data leave only under a fitting ground.

A rule releases a field when its effect is disclose, or mask with any transform but
``redact`` (even ``presence`` tells that a diagnosis or a conviction exists). For every
partner type the rule can reach under each of its purposes, in each approach the rule
applies in whose table holds the type and which uses the purpose, the grounds of that
(purpose, partner type) plus the approach's extra grounds for it must include one whose
``permits`` names the field's regime.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from gateway.core.approaches import resolve_approaches
from gateway.core.errors import PolicyIssue
from gateway.core.model import ApproachSpec, Effect, FieldSpec, PolicySet, Purpose, Rule, Special
from gateway.core.transforms import TRANSFORMS

# The one mask that shows nothing at all, not even whether a value exists.
_HIDING_TRANSFORM = "redact"
_REGIME_NAMES = {Special.ART9: "special-category (art9)", Special.ART10: "criminal (art10)"}


@dataclass(frozen=True, slots=True)
class _Release:
    """Fields of one regime that one list entry of a rule releases."""

    key: str
    regime: Special
    fields: tuple[str, ...]
    category: str | None


def special_release_issues(policy: PolicySet) -> list[PolicyIssue]:
    """Every release of art9/art10 fields to a recipient without a permitting ground.

    Purposes, fields or grounds the policy does not know are skipped: the reference checks
    report those, and guessing past them would only add noise.
    """
    checker = _Checker(policy)
    return [issue for rule in policy.rules for issue in checker.rule(rule)]


def _outcome(rule: Rule) -> str:
    return f"mask: {rule.transform}" if rule.effect is Effect.MASK else str(rule.effect)


def _releases(rule: Rule) -> bool:
    if rule.effect is Effect.DISCLOSE:
        return True
    # An unknown transform is reported on its own; guessing what it shows would add noise.
    return (rule.effect is Effect.MASK and rule.transform in TRANSFORMS
            and rule.transform != _HIDING_TRANSFORM)


class _Checker:
    def __init__(self, policy: PolicySet) -> None:
        self.fields = {f.id: f for f in policy.fields}
        self.specials = policy.specials()
        self.purposes = {p.id: p for p in policy.purposes}
        self.permits = {g.id: frozenset(g.permits) for g in policy.legal_bases}
        self.permitting = {regime: [g.id for g in policy.legal_bases if regime in g.permits]
                           for regime in _REGIME_NAMES}
        self.approaches = resolve_approaches(policy)
        self.by_category: dict[str, list[FieldSpec]] = {}
        for spec in policy.fields:
            self.by_category.setdefault(spec.category, []).append(spec)

    def rule(self, rule: Rule) -> Iterator[PolicyIssue]:
        if not _releases(rule):
            return
        releases = list(self._special_targets(rule))
        if not releases:
            return
        for purpose_id in rule.purposes:
            purpose = self.purposes.get(purpose_id)
            if purpose is None:
                continue
            for partner_type in purpose.partner_types:
                types = rule.who.partner_types
                if types is not None and partner_type not in types:
                    continue
                for release in releases:
                    issue = self._lacking(rule, release, purpose, partner_type)
                    if issue is not None:
                        yield issue

    def _lacking(self, rule: Rule, release: _Release, purpose: Purpose,
                 partner_type: str) -> PolicyIssue | None:
        """The issue for the first approach in which the release lacks a ground, if any."""
        for approach in self.approaches:
            if ((rule.approaches is not None and approach.id not in rule.approaches)
                    or partner_type not in (approach.partner_types or ())
                    or purpose.id not in (approach.purposes or ())):
                continue
            extra = approach.grounds(purpose.id, partner_type)
            grounds = tuple(dict.fromkeys([*purpose.grounds(partner_type), *extra]))
            if any(g not in self.permits for g in grounds):
                continue
            allowed = frozenset().union(*(self.permits[g] for g in grounds))
            if release.regime not in allowed:
                return self._issue(rule, release, purpose, partner_type, grounds,
                                   approach if extra or rule.approaches else None)
        return None

    def _special_targets(self, rule: Rule) -> Iterator[_Release]:
        for index, field_id in enumerate(rule.fields):
            regime = self.specials.get(field_id, Special.NONE)
            if regime is not Special.NONE:
                yield _Release(f"fields[{index}]", regime, (field_id,), None)
        for index, category in enumerate(rule.categories):
            for regime in _REGIME_NAMES:
                fields = tuple(f.id for f in self.by_category.get(category, ())
                               if self.specials[f.id] is regime)
                if fields:
                    yield _Release(f"categories[{index}]", regime, fields, category)

    def _issue(self, rule: Rule, release: _Release, purpose: Purpose, partner_type: str,
               grounds: tuple[str, ...], approach: ApproachSpec | None) -> PolicyIssue:
        regime = _REGIME_NAMES[release.regime]
        names = ", ".join(repr(f) for f in release.fields)
        what = (f"{regime} field {names}" if release.category is None else
                f"{regime} field{'s' if len(release.fields) > 1 else ''} {names} of category "
                f"{release.category!r}")
        message = (f"rule {rule.id!r} releases {what} ({_outcome(rule)}) to partner type "
                   f"{partner_type!r} under purpose {purpose.id!r}"
                   f"{f' in approach {approach.id!r}' if approach else ''}, but none of its "
                   f"grounds ({', '.join(grounds) or 'none'}) permits {release.regime}")
        fitting = self.permitting[release.regime]
        known = (f"; grounds that permit {release.regime}: {', '.join(fitting)}" if fitting
                 else f"; no ground in legal_bases permits {release.regime} yet")
        hint = (f"withhold it from {partner_type!r} or mask it with redact; or, if the law "
                f"allows it, add a ground with `permits: [{release.regime}]` under "
                f"legal_bases_by_partner_type.{partner_type} of purpose {purpose.id!r}"
                f"{' or to the extra_legal_bases of the approach' if approach else ''}{known}")
        where = rule.at(release.key)
        return PolicyIssue(where.file, where.line, where.column, message, hint)
