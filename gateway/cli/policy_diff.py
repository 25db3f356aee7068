"""`ketenpoort policy diff OLD NEW`: which outcomes a policy change changes.

Every (partner type, role, purpose, phase, field) whose outcome (effect, transform and its
parameters) differs between the two policies is listed, grouped by purpose and recipient,
with the phases folded together where the change is the same. Cells that exist in one policy
only (a partner type newly allowed a purpose, a phase dropped) are listed apart, as are fields
added to or removed from the catalogue, with what they release (added) or released (removed)
in the cells both policies hold. Changes to purposes, partners, fields and legal bases follow
(``gateway.cli.policy_diff_elements``). With ``--log`` the accountability log is replayed
under the new policy as well (``gateway.cli.policy_replay``).

Exit status as diff(1): 0 when nothing changes, 1 when something does, 2 on trouble (a
policy that does not load, a log that cannot be read).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from gateway.cli.policy_diff_elements import ElementChange, element_changes
from gateway.cli.policy_output import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    effect_text,
    load_or_report,
    plural,
)
from gateway.core import CompiledPolicy, Effect, FieldDecision
from gateway.core.model import Params
from gateway.core.transforms import TRANSFORMS

# partner type, role, purpose, phase, approach, person role ("" = case level)
CellKey = tuple[str, str, str, str, str, str]
_EFFECT_RANK = {Effect.DISCLOSE: 0, Effect.MASK: 1, Effect.WITHHOLD: 2}


@dataclass(frozen=True, slots=True)
class Outcome:
    effect: Effect
    transform: str | None
    params: Params

    @classmethod
    def of(cls, decision: FieldDecision) -> Outcome:
        return cls(decision.effect, decision.transform, decision.params)

    def __str__(self) -> str:
        return effect_text(self.effect, self.transform, self.params)

    @property
    def strictness(self) -> tuple[int, int]:
        transform = TRANSFORMS.get(self.transform) if self.transform else None
        rank = transform.rank if transform else 0
        return _EFFECT_RANK[self.effect], rank

    def as_json(self) -> dict[str, Any]:
        return {"effect": str(self.effect), "transform": self.transform,
                "params": dict(self.params)}


Released = tuple[tuple[str, Outcome], ...]  # (field, outcome) of every field released


@dataclass(frozen=True, slots=True)
class Change:
    partner_type: str
    role: str
    purpose: str
    phase: str
    field: str
    old: Outcome
    new: Outcome
    approach: str = ""
    person_role: str = ""

    @property
    def direction(self) -> str:
        """more restrictive, less restrictive, or different (same strictness, other mask)."""
        old, new = self.old.strictness, self.new.strictness
        if new > old:
            return "more restrictive"
        if new < old:
            return "less restrictive"
        return "different"


@dataclass(frozen=True, slots=True)
class FieldRelease:
    """What a field added to (removed from) the catalogue releases (released) in a cell both
    policies hold; a field withheld there is not listed."""

    partner_type: str
    role: str
    purpose: str
    phase: str
    field: str
    outcome: Outcome
    approach: str = ""
    person_role: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"partner_type": self.partner_type, "role": self.role, "purpose": self.purpose,
                "phase": self.phase, "approach": self.approach,
                "person_role": self.person_role, "field": self.field,
                "outcome": self.outcome.as_json()}


@dataclass(frozen=True, slots=True)
class PolicyDiff:
    old_version: str
    new_version: str
    changes: tuple[Change, ...]
    cells_added: tuple[CellKey, ...]
    cells_removed: tuple[CellKey, ...]
    fields_added: tuple[str, ...]
    fields_removed: tuple[str, ...]
    # What an added cell releases under the new policy, a removed one under the old.
    released: Mapping[CellKey, Released]
    added_field_releases: tuple[FieldRelease, ...] = ()
    removed_field_releases: tuple[FieldRelease, ...] = ()
    elements: tuple[ElementChange, ...] = ()
    # The new policy's default approach: changes in it are shown without naming it.
    default_approach: str = ""

    @property
    def empty(self) -> bool:
        return not (self.changes or self.cells_added or self.cells_removed
                    or self.fields_added or self.fields_removed or self.elements)


def _cells(policy: CompiledPolicy) -> dict[CellKey, Mapping[str, FieldDecision]]:
    """Every cell of every approach and person role (case level included)."""
    return {c.key: {d.field: d for d in c.fields}
            for c in policy.cells(approach=None, person_role=None)}


def scope_text(approach: str, person_role: str, default_approach: str) -> str:
    """`` in approach x, person role y``: what a cell adds to (partner type, role)."""
    said = "" if approach in ("", default_approach) else f" in approach {approach}"
    return said + (f", person role {person_role}" if person_role else "")


def diff_policies(old: CompiledPolicy, new: CompiledPolicy) -> PolicyDiff:
    """Every outcome that differs, in the new policy's order (then the old one's)."""
    old_cells, new_cells = _cells(old), _cells(new)
    old_fields = [f.id for f in old.fields]
    new_fields = [f.id for f in new.fields]
    shared_fields = [f for f in new_fields if f in set(old_fields)]
    changes: list[Change] = []
    released: dict[CellKey, Released] = {}
    for cells, other in ((new_cells, old_cells), (old_cells, new_cells)):
        for key, row in cells.items():
            if key not in other:
                released[key] = tuple((f, Outcome.of(d)) for f, d in row.items()
                                      if d.effect is not Effect.WITHHOLD)
    for key, new_row in new_cells.items():
        old_row = old_cells.get(key)
        if old_row is None:
            continue
        for field in shared_fields:
            before, after = Outcome.of(old_row[field]), Outcome.of(new_row[field])
            if before != after:
                changes.append(Change(*key[:4], field, before, after, approach=key[4],
                                      person_role=key[5]))
    fields_added = tuple(f for f in new_fields if f not in set(old_fields))
    fields_removed = tuple(f for f in old_fields if f not in set(new_fields))
    default = new.default_approach
    return PolicyDiff(
        old.version, new.version, _folded(changes, _change_key, default),
        _folded([k for k in new_cells if k not in old_cells], lambda k: (k, released[k]),
                default),
        _folded([k for k in old_cells if k not in new_cells], lambda k: (k, released[k]),
                default),
        fields_added, fields_removed, released,
        _folded(list(_field_releases(new_cells, old_cells, fields_added)), _release_key,
                default),
        _folded(list(_field_releases(old_cells, new_cells, fields_removed)), _release_key,
                default),
        element_changes(old, new), default)


_T = TypeVar("_T")
# What identifies an item: its cell, and what must be equal for the base cell's item to
# stand for it.
_Keyed = Callable[[_T], tuple[CellKey, object]]


def _base(key: CellKey, default_approach: str) -> CellKey | None:
    """The cell an item in ``key`` is compared with: the case level of its approach for a
    person role, the default approach's case level for another approach's; None for that."""
    approach, person = key[4], key[5]
    if person:
        return (*key[:4], approach, "")
    if approach != default_approach:
        return (*key[:4], default_approach, "")
    return None


def _folded(items: list[_T], keyed: _Keyed[_T], default_approach: str) -> tuple[_T, ...]:
    """The items, without those of person roles and other approaches that say the same as
    the item of their base cell: a change of a general rule is listed once, not once per
    approach and person role."""
    present = {keyed(item) for item in items}
    kept = []
    for item in items:
        key, same = keyed(item)
        base = _base(key, default_approach)
        if base is not None and (base, same) in present:
            continue
        kept.append(item)
    return tuple(kept)


def _change_key(c: Change) -> tuple[CellKey, object]:
    return ((c.partner_type, c.role, c.purpose, c.phase, c.approach, c.person_role),
            (c.field, c.old, c.new))


def _release_key(r: FieldRelease) -> tuple[CellKey, object]:
    return ((r.partner_type, r.role, r.purpose, r.phase, r.approach, r.person_role),
            (r.field, r.outcome))


def _field_releases(cells: Mapping[CellKey, Mapping[str, FieldDecision]],
                    other: Mapping[CellKey, Mapping[str, FieldDecision]],
                    fields: tuple[str, ...]) -> Iterator[FieldRelease]:
    """Per field, what ``cells`` release of it in the cells ``other`` holds too."""
    for field in fields:
        for key, row in cells.items():
            if key in other and row[field].effect is not Effect.WITHHOLD:
                yield FieldRelease(*key[:4], field, Outcome.of(row[field]), approach=key[4],
                                   person_role=key[5])


def render_text(diff: PolicyDiff, old_name: str = "", new_name: str = "") -> Iterator[str]:
    yield f"old policy {old_name + ' ' if old_name else ''}({diff.old_version})"
    yield f"new policy {new_name + ' ' if new_name else ''}({diff.new_version})"
    if diff.empty:
        yield "no outcome changes"
        return
    # purpose -> (partner type, role, scope) -> (field, old, new) -> phases
    grouped: dict[str, dict[tuple[str, str, str],
                            dict[tuple[str, Outcome, Outcome], list[str]]]]
    grouped = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for c in diff.changes:
        scope = scope_text(c.approach, c.person_role, diff.default_approach)
        grouped[c.purpose][(c.partner_type, c.role, scope)][(c.field, c.old, c.new)].append(
            c.phase)
    width = max((len(c.field) for c in diff.changes), default=0)
    for purpose, recipients in grouped.items():
        yield ""
        yield f"purpose {purpose}"
        for (partner_type, role, scope), changes in recipients.items():
            yield f"  {partner_type} as {role}{scope}"
            for (field, old, new), phases in changes.items():
                direction = Change(partner_type, role, purpose, "", field, old, new).direction
                yield (f"    {field:<{width}}  {old} -> {new}  ({direction}; "
                       f"phase{'s' if len(phases) > 1 else ''} {', '.join(phases)})")
    yield from _cell_lines("cells only in the new policy (requests now possible)",
                           diff.cells_added, diff.released, diff.default_approach)
    yield from _cell_lines("cells only in the old policy (requests no longer possible)",
                           diff.cells_removed, diff.released, diff.default_approach)
    yield from _field_lines("fields added to the catalogue", "now released",
                            diff.fields_added, diff.added_field_releases,
                            diff.default_approach)
    yield from _field_lines("fields removed from the catalogue", "no longer released",
                            diff.fields_removed, diff.removed_field_releases,
                            diff.default_approach)
    if diff.elements:
        yield ""
        yield "purposes, partners, fields and legal bases changed:"
        for element in diff.elements:
            yield f"  {element}"
    yield ""
    yield _summary(diff)


def _summary(diff: PolicyDiff) -> str:
    cells = {(c.partner_type, c.role, c.purpose, c.phase, c.approach, c.person_role)
             for c in diff.changes}
    line = (f"{plural(len(diff.changes), 'changed outcome')} in {plural(len(cells), 'cell')}; "
            f"{len(diff.cells_added)} cells added, {len(diff.cells_removed)} removed")
    if diff.fields_added or diff.fields_removed:
        releases = len(diff.added_field_releases) + len(diff.removed_field_releases)
        line += (f"; {len(diff.fields_added)} fields added, {len(diff.fields_removed)} removed "
                 f"({plural(releases, 'outcome')} in kept cells)")
    if diff.elements:
        line += f"; {plural(len(diff.elements), 'other change')}"
    return line


def _field_lines(title: str, released: str, fields: tuple[str, ...],
                 releases: tuple[FieldRelease, ...], default_approach: str) -> Iterator[str]:
    """Per field, the cells both policies hold where it is (was) released, phases folded."""
    if not fields:
        return
    yield ""
    yield f"{title}:"
    for field in fields:
        phases: dict[tuple[str, str, str, Outcome], list[str]] = defaultdict(list)
        for r in releases:
            if r.field == field:
                role = r.role + scope_text(r.approach, r.person_role, default_approach)
                phases[(r.purpose, r.partner_type, role, r.outcome)].append(r.phase)
        if not phases:
            yield f"  {field}: withheld in every cell both policies hold"
            continue
        yield f"  {field}, {released} in cells both policies hold:"
        for (purpose, partner_type, role, outcome), phase_list in phases.items():
            yield (f"    purpose {purpose}: {partner_type} as {role}, "
                   f"phase{'s' if len(phase_list) > 1 else ''} {', '.join(phase_list)}: "
                   f"{outcome}")


def _cell_lines(title: str, keys: tuple[CellKey, ...],
                released: Mapping[CellKey, Released], default_approach: str) -> Iterator[str]:
    if not keys:
        return
    yield ""
    yield f"{title}:"
    # Fold phases of one role that release the same, then roles with the same phases.
    by_role: dict[tuple[str, str, str, Released], list[str]] = defaultdict(list)
    for key in keys:
        role = key[1] + scope_text(key[4], key[5], default_approach)
        by_role[(key[2], key[0], role, released.get(key, ()))].append(key[3])
    by_type: dict[tuple[str, str, tuple[str, ...], Released], list[str]] = defaultdict(list)
    for (purpose, partner_type, role, fields), phase_list in by_role.items():
        by_type[(purpose, partner_type, tuple(phase_list), fields)].append(role)
    for (purpose, partner_type, phases, fields), roles in by_type.items():
        shown_phases = f"phase{'s' if len(phases) > 1 else ''} {', '.join(phases)}"
        yield f"  purpose {purpose}: {partner_type} as {', '.join(roles)}, {shown_phases}"
        shown = ", ".join(f"{field} {outcome}" for field, outcome in fields)
        yield f"    releases: {shown or 'nothing'}"


def diff_json(diff: PolicyDiff) -> dict[str, Any]:
    def cell(key: CellKey) -> dict[str, str]:
        return dict(zip(("partner_type", "role", "purpose", "phase", "approach",
                         "person_role"), key, strict=True))

    def released(key: CellKey) -> dict[str, Any]:
        fields = {f: o.as_json() for f, o in diff.released.get(key, ())}
        return {**cell(key), "released": fields}

    return {
        "old_version": diff.old_version,
        "new_version": diff.new_version,
        "changes": [{**cell((c.partner_type, c.role, c.purpose, c.phase, c.approach,
                             c.person_role)), "field": c.field,
                     "old": c.old.as_json(), "new": c.new.as_json(),
                     "direction": c.direction} for c in diff.changes],
        "cells_added": [released(k) for k in diff.cells_added],
        "cells_removed": [released(k) for k in diff.cells_removed],
        "fields_added": list(diff.fields_added),
        "fields_removed": list(diff.fields_removed),
        "fields_added_released": [r.as_json() for r in diff.added_field_releases],
        "fields_removed_released": [r.as_json() for r in diff.removed_field_releases],
        "element_changes": [e.as_json() for e in diff.elements],
    }


def run_diff(old_dir: Path, new_dir: Path, log: str | None, fmt: str) -> int:
    # A policy that does not load is trouble (2), never "changes" (1).
    old = load_or_report(old_dir, "diff")
    if isinstance(old, int):
        return EXIT_USAGE
    new = load_or_report(new_dir, "diff")
    if isinstance(new, int):
        return EXIT_USAGE
    diff = diff_policies(old, new)
    replay = None
    if log is not None:
        from gateway.cli.policy_replay import LogUnreadable, replay_log

        try:
            replay = replay_log(log, new)
        except LogUnreadable as exc:
            print(f"ketenpoort policy diff: {exc}", file=sys.stderr)
            return EXIT_USAGE
    if fmt == "json":
        document = diff_json(diff)
        if replay is not None:
            document["log"] = replay.as_json()
        print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        for line in render_text(diff, str(old_dir), str(new_dir)):
            print(line)
        if replay is not None:
            print()
            for line in replay.render():
                print(line)
    changed = not diff.empty or (replay is not None and replay.changed_records > 0)
    return EXIT_FAILED if changed else EXIT_OK
