"""Which rules match which field in which cell, worked out once when a policy loads.

A *cell* is a (partner type, role, purpose, phase, approach, person role) a request can be
made in: the type is on the approach's standing table and may declare the purpose, the
approach uses the purpose, the phase is one of the purpose's, and some partner of the type
holds the role. The person role is one of the policy's, or "" for a case-level request.
Cells in which exactly the same rules apply, in approaches that apply the same fields,
share one *group*, so the per-field work is done once per group rather than once per cell.

Which rules apply in a cell is found without testing rule by rule: per dimension, every
value has a bitmask (an int) of the rules that admit it, and a cell's rules are the AND of
its values' masks. The per-field work is then shared by every cell with the same mask.

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

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from gateway.core.approaches import default_approach, person_role_ids, resolve_approaches
from gateway.core.model import ApproachSpec, Effect, Params, PolicySet, Rule
from gateway.core.transforms import TRANSFORMS

# partner type, role, purpose, phase, approach, person role ("" = case level)
CellKey = tuple[str, str, str, str, str, str]
# The person role of a case-level request.
CASE_LEVEL = ""
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
    """How many of who.partner_types, who.roles, phases, approaches and persons the rule
    narrows."""
    return sum(value is not None for value in (rule.who.partner_types, rule.who.roles,
                                               rule.phases, rule.approaches, rule.persons))


@dataclass(frozen=True, slots=True)
class Group:
    """What the cells with the same applicable rules have in common.

    ``matching[f]`` lists, in policy order, the indices of the rules that match the field at
    catalogue position ``f``; ``winners[f]`` is the index of the deciding rule, or None.
    ``excluded`` holds the positions of fields that do not apply under the group's approach:
    they are withheld whatever the rules say, and have no winner.
    """

    rules: tuple[int, ...]
    first_cell: CellKey
    matching: tuple[tuple[int, ...], ...]
    winners: tuple[int | None, ...]
    excluded: frozenset[int] = frozenset()


def _masks(values: Iterable[str], selectors: Sequence[tuple[str, ...] | None],
           everyone: int) -> dict[str, int]:
    """Per value, the bitmask of the rules whose selector (None: any) admits it."""
    open_to_all = everyone
    for index, selector in enumerate(selectors):
        if selector is not None:
            open_to_all &= ~(1 << index)
    masks = dict.fromkeys(values, open_to_all)
    for index, selector in enumerate(selectors):
        for value in selector or ():
            if value in masks:
                masks[value] |= 1 << index
    return masks


def _bits(mask: int) -> tuple[int, ...]:
    """The rule indices set in ``mask``, in policy order."""
    found: list[int] = []
    while mask:
        low = mask & -mask
        found.append(low.bit_length() - 1)
        mask ^= low
    return tuple(found)


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
        self.approaches: tuple[ApproachSpec, ...] = resolve_approaches(policy)
        self.approach_ids = {a.id: a for a in self.approaches}
        self.default_approach = default_approach(self.approaches)
        self.person_roles = person_role_ids(policy)
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
        """Every cell: approaches, partner types, roles, purposes, phases and person roles
        (case level first) each in policy order."""
        phase_order = [p.id for p in self.policy.phases]
        persons = (CASE_LEVEL, *self.person_roles)
        for approach in self.approaches:
            table = set(approach.partner_types or ())
            used = set(approach.purposes or ())
            for partner_type in self.policy.partner_types:
                if partner_type.id not in table:
                    continue
                roles = self.roles_of.get(partner_type.id, ())
                purposes = [p for p in self.policy.purposes
                            if partner_type.id in p.partner_types and p.id in used]
                for role in roles:
                    for purpose in purposes:
                        for phase in phase_order:
                            if phase in purpose.phases:
                                for person in persons:
                                    yield (partner_type.id, role, purpose.id, phase,
                                           approach.id, person)

    def _build(self) -> None:
        rules = self.rules
        everyone = (1 << len(rules)) - 1
        by_purpose = _masks((p.id for p in self.policy.purposes),
                            [r.purposes for r in rules], 0)
        by_type = _masks((t.id for t in self.policy.partner_types),
                         [r.who.partner_types for r in rules], everyone)
        by_role = _masks((r.id for r in self.policy.roles), [r.who.roles for r in rules],
                         everyone)
        by_phase = _masks((p.id for p in self.policy.phases), [r.phases for r in rules],
                          everyone)
        by_approach = _masks(self.approach_ids, [r.approaches for r in rules], everyone)
        by_person = _masks((CASE_LEVEL, *self.person_roles), [r.persons for r in rules],
                           everyone)
        # A case-level request is about no one person: rules naming persons never apply.
        by_person[CASE_LEVEL] = everyone & ~sum(
            1 << i for i, r in enumerate(rules) if r.persons is not None)
        per_mask: dict[int, tuple[tuple[tuple[int, ...], ...], tuple[int | None, ...]]] = {}
        known: dict[tuple[int, str], int] = {}
        outside = {a.id: self._outside(a) for a in self.approaches}
        for key in self.cell_keys():
            partner_type, role, purpose, phase, approach, person = key
            mask = (by_purpose[purpose] & by_type[partner_type] & by_role[role]
                    & by_phase[phase] & by_approach[approach] & by_person[person])
            group = known.get((mask, approach))
            if group is None:
                resolved = per_mask.get(mask)
                if resolved is None:
                    resolved = per_mask[mask] = self._resolve(_bits(mask))
                matching, winners = resolved
                excluded = outside[approach]
                if excluded:
                    winners = tuple(None if i in excluded else w for i, w in enumerate(winners))
                group = known[(mask, approach)] = len(self.groups)
                self.groups.append(Group(_bits(mask), key, matching, winners, excluded))
            self.cells[key] = group

    def _outside(self, approach: ApproachSpec) -> frozenset[int]:
        applying = set(approach.fields)
        return frozenset(i for i, f in enumerate(self.policy.fields) if f.id not in applying)

    def _resolve(self, applying: tuple[int, ...]
                 ) -> tuple[tuple[tuple[int, ...], ...], tuple[int | None, ...]]:
        per_field: list[list[int]] = [[] for _ in self.policy.fields]
        for index in applying:
            for position in self.targets[index]:
                per_field[position].append(index)
        matching = tuple(tuple(found) for found in per_field)
        return matching, tuple(winner(self.rules, found) for found in matching)

    def group(self, key: CellKey) -> Group | None:
        index = self.cells.get(key)
        return None if index is None else self.groups[index]

    def specificity(self, rule_index: int, position: int) -> int:
        """Narrowed dimensions of the rule, plus 1 when it names the field itself."""
        return self._narrowed[rule_index] + (position in self.named[rule_index])
