"""`ketenpoort policy matrix`: what each partner type gets, per field, for one purpose and phase.

Rows are the fields of the catalogue grouped by category, columns the partner types that may
use the purpose. A cell holds the outcome (``D`` disclose, ``M:<transform>`` mask, ``W``
withhold, ``—`` not applicable). A partner type whose roles get different outcomes shows
each role's outcome in the cell; ``--role`` narrows the matrix to one role.

``--approach`` shows the matrix of one approach (default: the policy's default approach):
only the partner types on its table get a column, fields outside it are withheld, and its
extra grounds are listed. ``--person-role`` shows the outcomes for the fields about a person
in that role in the case (default: a case-level request, where rules with ``persons:`` do
not apply).

The matrix is built as plain data here and written as Markdown here or as HTML by
``gateway.cli.policy_matrix_html``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gateway.cli.policy_output import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    SPECIAL_SHORT,
    load_or_report,
    one_line,
    params_text,
    permits_text,
    report_unknown,
    unknown_id,
)
from gateway.core import CompiledPolicy, Effect, FieldDecision, Purpose, Special
from gateway.core.model import Params

NOT_APPLICABLE = "—"
_LOOSE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_SHORT = {Effect.DISCLOSE: "D", Effect.MASK: "M", Effect.WITHHOLD: "W"}


@dataclass(frozen=True, slots=True)
class Outcome:
    """One outcome in a cell; ``role`` is None when it holds for every role of the type."""

    role: str | None
    effect: Effect | None  # None: the partner type cannot ask here
    transform: str | None = None
    params: Params = ()

    @property
    def label(self) -> str:
        if self.effect is None:
            return NOT_APPLICABLE
        if self.effect is Effect.MASK:
            return f"M:{self.transform}{params_text(self.params).replace(' ', '')}"
        return _SHORT[self.effect]

    @property
    def kind(self) -> str:
        """disclose, mask, withhold or not_applicable: the cell's style in the HTML."""
        return "not_applicable" if self.effect is None else str(self.effect)


@dataclass(frozen=True, slots=True)
class Row:
    field: str
    description: str
    special: Special | None  # set only when the field's regime differs from its category's
    cells: tuple[tuple[Outcome, ...], ...]  # per column


@dataclass(frozen=True, slots=True)
class Group:
    category: str
    description: str
    special: Special
    rows: tuple[Row, ...]


@dataclass(frozen=True, slots=True)
class Column:
    partner_type: str
    roles: tuple[str, ...]  # the roles shown: all roles of the type, or the asked one
    extra_grounds: tuple[str, ...]  # grounds for this type on top of the purpose's own


@dataclass(frozen=True, slots=True)
class Matrix:
    purpose: Purpose
    phase: str
    role: str | None
    version: str
    grounds: tuple[tuple[str, str], ...]  # (id, title) of every ground named
    columns: tuple[Column, ...]
    closed_to: tuple[str, ...]  # partner types that may not use the purpose
    groups: tuple[Group, ...]
    approach: str = ""
    person_role: str = ""
    off_table: tuple[str, ...] = ()  # partner types of the purpose not on the approach's table

    @property
    def title(self) -> str:
        title = f"Disclosure matrix: purpose {self.purpose.id}, phase {self.phase}"
        if self.approach:
            title += f", approach {self.approach}"
        if self.person_role:
            title += f", person role {self.person_role}"
        return title


@dataclass(frozen=True, slots=True)
class _Scope:
    purpose: str
    phase: str
    approach: str
    person_role: str


def build_matrix(policy: CompiledPolicy, purpose_id: str, phase: str,
                 role: str | None = None, *, approach: str = "",
                 person_role: str = "") -> Matrix:
    """The matrix for a purpose and phase in an approach ("" the default one), for a person
    role ("" case level); ids must be known to the policy."""
    purpose = policy.purpose(purpose_id)
    spec = policy.approach(approach)
    table = spec.partner_types or ()
    columns = tuple(_column(policy, purpose, t, role, approach)
                    for t in purpose.partner_types if t in table)
    named = dict.fromkeys([
        g for c in columns for g in (*purpose.grounds(c.partner_type), *c.extra_grounds)])
    titles = {basis.id: one_line(basis.title) + permits_text(basis.permits)
              for basis in policy.policy.legal_bases}
    closed = tuple(t.id for t in policy.policy.partner_types
                   if t.id not in purpose.partner_types)
    off_table = tuple(t for t in purpose.partner_types if t not in table)
    scope = _Scope(purpose.id, phase, spec.id, person_role)
    shown_approach = approach and spec.id
    return Matrix(purpose, phase, role, policy.version,
                  tuple((g, titles.get(g, "")) for g in named), columns, closed,
                  tuple(_groups(policy, scope, columns)), shown_approach, person_role,
                  off_table)


def _column(policy: CompiledPolicy, purpose: Purpose, partner_type: str,
            role: str | None, approach: str) -> Column:
    roles = policy.roles_of(partner_type)
    shown = roles if role is None else tuple(r for r in roles if r == role)
    spec = policy.approach(approach)
    grounds = dict.fromkeys([*purpose.grounds(partner_type),
                             *spec.grounds(purpose.id, partner_type)])
    extra = tuple(g for g in grounds if g not in purpose.legal_bases)
    return Column(partner_type, shown, extra)


def _groups(policy: CompiledPolicy, scope: _Scope,
            columns: tuple[Column, ...]) -> Iterator[Group]:
    specials = policy.policy.specials()
    for category in policy.policy.categories:
        rows = tuple(
            Row(spec.id, one_line(spec.description),
                specials[spec.id] if specials[spec.id] != category.special else None,
                tuple(_cell(policy, column, scope, spec.id) for column in columns))
            for spec in policy.fields if spec.category == category.id)
        if rows:
            yield Group(category.id, one_line(category.description), category.special, rows)


def _cell(policy: CompiledPolicy, column: Column, scope: _Scope,
          field: str) -> tuple[Outcome, ...]:
    per_role = [(role, policy.outcome(column.partner_type, role, scope.purpose, scope.phase,
                                      field, approach=scope.approach,
                                      person_role=scope.person_role))
                for role in column.roles]
    outcomes = [_outcome(role, decision) for role, decision in per_role]
    if not outcomes:
        return (Outcome(None, None),)
    if len({(o.effect, o.transform, o.params) for o in outcomes}) == 1:
        first = outcomes[0]
        return (Outcome(None, first.effect, first.transform, first.params),)
    return tuple(outcomes)


def _outcome(role: str, decision: FieldDecision | None) -> Outcome:
    if decision is None:
        return Outcome(role, None)
    return Outcome(role, decision.effect, decision.transform, decision.params)


def cell_text(cell: tuple[Outcome, ...]) -> str:
    """``D``, or per role ``chain_partner D · case_director M:initials``."""
    return " · ".join(o.label if o.role is None else f"{o.role} {o.label}" for o in cell)


LEGEND = (
    ("disclose", "D", "disclosed: the value as the source holds it"),
    ("mask", "M:transform", "masked: only the transform of the value (e.g. initials)"),
    ("withhold", "W", "withheld: nothing, the source is not even asked"),
    ("not_applicable", NOT_APPLICABLE, "not applicable: the partner type cannot ask here"),
)


def render_markdown(matrix: Matrix) -> str:
    """One table, a bold row per category; every text escaped for Markdown tables."""
    role = f", role {matrix.role}" if matrix.role else ""
    lines = [f"# {_md(matrix.title)}{_md(role)}", "",
             f"Policy version `{matrix.version}`.", "", "Legal bases:", ""]
    lines += [f"- **{_md(g)}** {_md(title)}" for g, title in matrix.grounds]
    extra = [c for c in matrix.columns if c.extra_grounds]
    if extra:
        lines += ["", "Grounds for one recipient on top of the purpose's own:", ""]
        lines += [f"- {_md(c.partner_type)}: {_md(', '.join(c.extra_grounds))}" for c in extra]
    if matrix.closed_to:
        lines += ["", f"Not open to: {_md(', '.join(matrix.closed_to))}."]
    if matrix.off_table:
        lines += ["", f"Not on the table of approach {_md(matrix.approach)}: "
                  f"{_md(', '.join(matrix.off_table))}."]
    lines += ["", "Legend: " + "; ".join(f"`{s}` {_md(text)}" for _, s, text in LEGEND), ""]
    header = ["Field", *(_md(c.partner_type) for c in matrix.columns)]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for group in matrix.groups:
        special = f" ({SPECIAL_SHORT[group.special]})" if group.special != Special.NONE else ""
        lines.append(f"| **{_md(group.category)}**{special} |" + " |" * len(matrix.columns))
        for row in group.rows:
            mark = f" ({SPECIAL_SHORT[row.special]})" if row.special is not None else ""
            cells = [_md(cell_text(cell)) for cell in row.cells]
            lines.append(f"| {_md(row.field)}{mark} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    """Text safe inside a Markdown table cell: no pipes, markup or line breaks.

    An underscore inside a word (``chain_partner``) is no markup and is left as written.
    """
    for char in "\\|*`[]<>":
        text = text.replace(char, "\\" + char)
    return " ".join(_LOOSE_UNDERSCORE.sub(r"\\_", text).split())


def run_matrix(directory: Path, purpose: str, phase: str, role: str | None, fmt: str,
               output: Path | None, approach: str = "", person_role: str = "") -> int:
    loaded = load_or_report(directory, "matrix")
    if isinstance(loaded, int):
        return loaded
    problems = [unknown_id("purpose", purpose, list(loaded.purposes)),
                unknown_id("phase", phase, loaded.phases)]
    if role is not None:
        problems.append(unknown_id("role", role, [r.id for r in loaded.policy.roles]))
    if approach:
        problems.append(unknown_id("approach", approach, list(loaded.approaches)))
    if person_role:
        problems.append(unknown_id("person role", person_role, loaded.person_roles))
    if report_unknown("matrix", problems):
        return EXIT_USAGE
    spec = loaded.approach(approach)
    if purpose not in (spec.purposes or ()):
        print(f"ketenpoort policy matrix: approach {spec.id!r} does not use purpose "
              f"{purpose!r}; its purposes are {', '.join(spec.purposes or ())}",
              file=sys.stderr)
        return EXIT_FAILED
    phases = loaded.purpose(purpose).phases
    if phase not in phases:
        print(f"ketenpoort policy matrix: purpose {purpose!r} does not apply in phase "
              f"{phase!r}; its phases are {', '.join(phases)}", file=sys.stderr)
        return EXIT_FAILED
    if role is not None:
        roles = dict.fromkeys(r for t in loaded.purpose(purpose).partner_types
                              for r in loaded.roles_of(t))
        if role not in roles:
            print(f"ketenpoort policy matrix: no partner type of purpose {purpose!r} acts in "
                  f"role {role!r}; its roles are {', '.join(roles)}", file=sys.stderr)
            return EXIT_USAGE
    matrix = build_matrix(loaded, purpose, phase, role, approach=approach,
                          person_role=person_role)
    if fmt == "html":
        from gateway.cli.policy_matrix_html import render_html

        text = render_html(matrix, LEGEND)
    else:
        text = render_markdown(matrix)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        print(f"matrix written to {output}")
    return EXIT_OK
