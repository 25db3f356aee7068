"""Which rules match which field in which cell, worked out once when a policy loads.

A *cell* is a (partner type, role, purpose, phase) a request can be made in: the type may
declare the purpose, the phase is one of the purpose's, and some partner of the type holds
the role. Cells in which exactly the same rules apply share one *group*, so the per-field
work is done once per group rather than once per cell.

Conflict resolution per field, over the rules that match it (in policy order):
  1. If any matching rule has ``override: true``, only the override rules compete.
  2. The most restrictive effect wins: withhold > mask > disclose; between masks the
     transform with the higher rank wins (see ``gateway.core.transforms``).
  3. Among equally restrictive rules the first in policy order decides.
A field no rule matches is withheld (deny by default).

The compiler, the rule checks (shadowed rules, contradictions) and the explanations all read
this one analysis.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from gateway.core.model import Effect, Params, PolicySet, Rule
from gateway.core.transforms import TRANSFORMS

CellKey = tuple[str, str, str, str]
_EFFECT_RANK = {Effect.DISCLOSE: 0, Effect.MASK: 1, Effect.WITHHOLD: 2}
Outcome = tuple[Effect, str | None, Params]


def strictness(rule: Rule) -> tuple[int, int, int]:
    """How restrictive a rule is; higher is stricter.

    Between two masks with the same transform, the one that shows less wins: a shorter
    ``truncate`` length is stricter.
    """
    transform = TRANSFORMS.get(rule.transform) if rule.transform is not None else None
    rank = transform.rank if transform is not None else 0
    length = dict(rule.params).get("length") if rule.effect is Effect.MASK else None
    shown = -length if isinstance(length, int) else 0
    return _EFFECT_RANK[rule.effect], rank, shown


def outcome(rule: Rule) -> Outcome:
    """What a rule does to a field: effect, and transform and params when it masks."""
    if rule.effect is Effect.MASK:
        return rule.effect, rule.transform, rule.params
    return rule.effect, None, ()


def narrowed(rule: Rule) -> int:
    """How many of who.partner_types, who.roles and phases the rule narrows."""
    return sum(value is not None for value in (rule.who.partner_types, rule.who.roles,
                                               rule.phases))


@dataclass(frozen=True, slots=True)
class Group:
    """What the cells with the same applicable rules have in common.

    ``matching[f]`` lists, in policy order, the indices of the rules that match the field at
    catalogue position ``f``; ``winners[f]`` is the index of the deciding rule, or None.
    """

    rules: tuple[int, ...]
    first_cell: CellKey
    matching: tuple[tuple[int, ...], ...]
    winners: tuple[int | None, ...]


def _applies(rule: Rule, partner_type: str, role: str, phase: str) -> bool:
    types, roles, phases = rule.who.partner_types, rule.who.roles, rule.phases
    return ((types is None or partner_type in types) and (roles is None or role in roles)
            and (phases is None or phase in phases))


def winner(rules: Sequence[Rule], matching: Sequence[int]) -> int | None:
    """The index of the rule that decides, given the matching rules' indices in policy order."""
    overrides = [i for i in matching if rules[i].override]
    pool = overrides or matching
    best: int | None = None
    best_rank: tuple[int, int, int] | None = None
    for index in pool:
        rank = strictness(rules[index])
        # Strictly greater: the first of equally restrictive rules keeps its place.
        if best_rank is None or rank > best_rank:
            best, best_rank = index, rank
    return best


class PolicyAnalysis:
    """The cell table of a policy: cells in policy order, each with its group."""

    def __init__(self, policy: PolicySet) -> None:
        self.policy = policy
        self.rules = policy.rules
        positions = {f.id: i for i, f in enumerate(policy.fields)}
        by_category: dict[str, list[int]] = {}
        for i, spec in enumerate(policy.fields):
            by_category.setdefault(spec.category, []).append(i)
        # Per rule: the catalogue positions it reaches (in catalogue order), and those it names.
        self.named: list[frozenset[int]] = []
        self.targets: list[tuple[int, ...]] = []
        for rule in policy.rules:
            named = frozenset(positions[f] for f in rule.fields if f in positions)
            reached = set(named).union(*(by_category.get(c, ()) for c in rule.categories))
            self.named.append(named)
            self.targets.append(tuple(sorted(reached)))
        self._narrowed = [narrowed(rule) for rule in policy.rules]
        self.roles_of = self._roles(policy)
        self.groups: list[Group] = []
        self.cells: dict[CellKey, int] = {}
        self._build()

    @staticmethod
    def _roles(policy: PolicySet) -> dict[str, tuple[str, ...]]:
        """Roles held by some partner of each type, in the order of the roles section."""
        held: dict[str, set[str]] = {t.id: set() for t in policy.partner_types}
        for partner in policy.partners:
            held.setdefault(partner.type, set()).update(partner.roles)
        order = [r.id for r in policy.roles]
        return {t: tuple(r for r in order if r in roles) for t, roles in held.items()}

    def cell_keys(self) -> Iterator[CellKey]:
        """Every cell: partner types, roles, purposes and phases each in policy order."""
        phase_order = [p.id for p in self.policy.phases]
        for partner_type in self.policy.partner_types:
            roles = self.roles_of.get(partner_type.id, ())
            purposes = [p for p in self.policy.purposes if partner_type.id in p.partner_types]
            for role in roles:
                for purpose in purposes:
                    for phase in phase_order:
                        if phase in purpose.phases:
                            yield partner_type.id, role, purpose.id, phase

    def _build(self) -> None:
        by_purpose: dict[str, list[int]] = {p.id: [] for p in self.policy.purposes}
        for index, rule in enumerate(self.rules):
            for purpose in rule.purposes:
                if purpose in by_purpose:
                    by_purpose[purpose].append(index)
        known: dict[tuple[int, ...], int] = {}
        for key in self.cell_keys():
            partner_type, role, purpose, phase = key
            applying = tuple(i for i in by_purpose[purpose]
                             if _applies(self.rules[i], partner_type, role, phase))
            group = known.get(applying)
            if group is None:
                group = known[applying] = len(self.groups)
                self.groups.append(self._group(applying, key))
            self.cells[key] = group

    def _group(self, applying: tuple[int, ...], first_cell: CellKey) -> Group:
        per_field: list[list[int]] = [[] for _ in self.policy.fields]
        for index in applying:
            for position in self.targets[index]:
                per_field[position].append(index)
        matching = tuple(tuple(found) for found in per_field)
        return Group(applying, first_cell, matching,
                     tuple(winner(self.rules, found) for found in matching))

    def group(self, key: CellKey) -> Group | None:
        index = self.cells.get(key)
        return None if index is None else self.groups[index]

    def specificity(self, rule_index: int, position: int) -> int:
        """Narrowed dimensions of the rule, plus 1 when it names the field itself."""
        return self._narrowed[rule_index] + (position in self.named[rule_index])
