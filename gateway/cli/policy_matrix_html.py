"""The disclosure matrix as one self-contained HTML page.

No scripts and no external assets: the page can be mailed, archived with a decision, or
printed. Colour is never the only signal: every outcome also has a symbol (● disclose,
◐ mask, ○ withhold, — not applicable) and a border pattern, so a greyscale print reads the
same. Printing is landscape with the header row repeated on every page. Every text from the
policy is escaped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from html import escape

from gateway.cli.policy_matrix import (
    Column,
    Matrix,
    Outcome,
    Row,
)
from gateway.cli.policy_output import SPECIAL_SHORT
from gateway.core import Special

SYMBOLS = {"disclose": "●", "mask": "◐", "withhold": "○", "not_applicable": "—"}

_CSS = """
:root { font-family: system-ui, -apple-system, "Segoe UI", Arial, sans-serif; font-size: 13px;
  color: #111; }
body { margin: 1.5rem; }
h1 { font-size: 1.4rem; margin: 0 0 .3rem; }
p.meta, p.closed { margin: .2rem 0; color: #333; }
code { font-size: .9em; }
ul.grounds { margin: .3rem 0 .8rem; padding-left: 1.2rem; }
table { border-collapse: collapse; }
table.legend { margin: .5rem 0 1rem; }
table.legend td { padding: .2rem .5rem; border: 1px solid #999; }
table.matrix th, table.matrix td { border: 1px solid #999; padding: .25rem .4rem;
  vertical-align: top; text-align: left; }
table.matrix thead th { background: #e8e8e8; position: sticky; top: 0; }
table.matrix thead th small { display: block; font-weight: normal; color: #444; }
tr.category th { background: #f3f3f3; font-size: 1.05em; padding-top: .45rem; }
tr.category th small { font-weight: normal; color: #444; }
th.field { font-weight: normal; white-space: nowrap; }
.special { display: inline-block; margin-left: .3rem; padding: 0 .3rem; border: 1px solid #333;
  border-radius: 3px; font-size: .85em; font-weight: bold; }
.o { display: block; white-space: nowrap; }
.o .s { display: inline-block; width: 1.1em; }
.o .r { color: #333; font-size: .9em; }
td.disclose, span.disclose { background: #d7f0d2; border-left: 4px solid #2e7d32; }
td.mask, span.mask { background: #fff1c2; border-left: 4px dashed #9a6b00; }
td.withhold, span.withhold { background: #f8d6d3; border-left: 4px dotted #b3261e; }
td.not_applicable, span.not_applicable { background: #fff; color: #555;
  border-left: 4px double #888; }
td.mixed { background: #fff; }
td.mixed span.o { padding-left: .25rem; margin: 1px 0; }
* { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
@page { size: A4 landscape; margin: 1cm; }
@media print {
  body { margin: 0; font-size: 10px; }
  table.matrix thead { display: table-header-group; }
  table.matrix thead th { position: static; }
  tr { page-break-inside: avoid; break-inside: avoid; }
}
"""


def render_html(matrix: Matrix, legend: Sequence[tuple[str, str, str]]) -> str:
    """The page; ``legend`` lists (kind, short label, meaning) in display order."""
    return "\n".join([*_head(matrix), *_intro(matrix), *_legend(legend),
                      *_table(matrix), "</body>", "</html>", ""])


def _head(matrix: Matrix) -> Iterator[str]:
    yield "<!DOCTYPE html>"
    yield '<html lang="en">'
    yield "<head>"
    yield '<meta charset="utf-8">'
    yield f"<title>{escape(matrix.title)}</title>"
    yield f"<style>{_CSS}</style>"
    yield "</head>"
    yield "<body>"


def _intro(matrix: Matrix) -> Iterator[str]:
    role = f", role {matrix.role}" if matrix.role else ", all roles"
    yield f"<h1>{escape(matrix.title)}{escape(role)}</h1>"
    yield f'<p class="meta">{escape(" ".join(matrix.purpose.description.split()))}</p>'
    yield (f'<p class="meta">Policy version <code>{escape(matrix.version)}</code>; '
           f"processing activity <code>{escape(matrix.purpose.processing_activity)}</code></p>")
    yield '<p class="meta">Legal bases:</p>'
    yield '<ul class="grounds">'
    for ground, title in matrix.grounds:
        yield f"<li><strong>{escape(ground)}</strong> {escape(title)}</li>"
    yield "</ul>"
    if matrix.closed_to:
        yield (f'<p class="closed">Not open to: {escape(", ".join(matrix.closed_to))}.</p>')
    if matrix.off_table:
        yield (f'<p class="closed">Not on the table of approach {escape(matrix.approach)}: '
               f'{escape(", ".join(matrix.off_table))}.</p>')


def _legend(legend: Sequence[tuple[str, str, str]]) -> Iterator[str]:
    yield '<table class="legend" aria-label="legend"><tr>'
    for kind, label, meaning in legend:
        shown = "" if label == SYMBOLS[kind] else f" <strong>{escape(label)}</strong>"
        yield (f'<td class="{kind}"><span class="s">{SYMBOLS[kind]}</span>{shown} '
               f"{escape(meaning)}</td>")
    yield "</tr></table>"

def _table(matrix: Matrix) -> Iterator[str]:
    yield '<table class="matrix">'
    yield "<thead><tr><th>Field</th>"
    for column in matrix.columns:
        yield _column_head(column)
    yield "</tr></thead>"
    yield "<tbody>"
    width = len(matrix.columns) + 1
    for group in matrix.groups:
        mark = "" if group.special == Special.NONE else _special(group.special)
        yield (f'<tr class="category"><th colspan="{width}" scope="colgroup">'
               f"{escape(group.category)}{mark} "
               f"<small>{escape(group.description)}</small></th></tr>")
        for row in group.rows:
            yield _row(row)
    yield "</tbody>"
    yield "</table>"


def _column_head(column: Column) -> str:
    roles = ", ".join(column.roles) or "no partner in this role"
    extra = (f"<small>+ {escape(', '.join(column.extra_grounds))}</small>"
             if column.extra_grounds else "")
    return (f'<th scope="col">{escape(column.partner_type)}'
            f"<small>{escape(roles)}</small>{extra}</th>")


def _special(special: Special) -> str:
    return f'<span class="special">{escape(SPECIAL_SHORT[special])}</span>'


def _row(row: Row) -> str:
    # A field is marked only where its regime differs from its category's.
    mark = "" if row.special is None else _special(row.special)
    cells = "".join(_cell(cell) for cell in row.cells)
    return (f'<tr><th class="field" scope="row" title="{escape(row.description)}">'
            f"{escape(row.field)}{mark}</th>{cells}</tr>")


def _cell(cell: tuple[Outcome, ...]) -> str:
    if len(cell) == 1 and cell[0].role is None:
        only = cell[0]
        return f'<td class="{only.kind}"><span class="o">{_outcome(only)}</span></td>'
    # The roles of one partner type are treated differently: one marked line per role.
    return '<td class="mixed">' + "".join(
        f'<span class="o {o.kind}">{_outcome(o)}</span>' for o in cell) + "</td>"


def _outcome(outcome: Outcome) -> str:
    role = f'<span class="r">{escape(outcome.role)}</span> ' if outcome.role else ""
    symbol = f'<span class="s">{SYMBOLS[outcome.kind]}</span>'
    if outcome.effect is None:  # the symbol is the label: a dash, not a dash twice
        return f"{symbol} {role}".rstrip()
    return f"{symbol} {role}{escape(outcome.label)}"
