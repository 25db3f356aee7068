"""The demo's summary: per case, which partner saw which field how, per person where the
persons' outcomes differ."""

from __future__ import annotations

from gateway.cli.demo_views import CaseView, PersonView
from gateway.core import CompiledPolicy

# Fields that are no record content (the triage role is asked in triage only).
_LEFT_OUT = {"triage.role"}


def print_table(case: CaseView, policy: CompiledPolicy) -> None:
    """One row per field some partner received (catalogue order), one column per request.
    A cell holds one symbol when every person's outcome agrees, else one per person in the
    order of the legend; M<abc> is masked with the transform whose name starts abc."""
    persons = list(case.persons.values())
    columns = list(case.table)
    codes = {c: chr(ord("A") + i) for i, c in enumerate(columns)}
    print(f"\n{case.title}: who saw which field how "
          "(D disclosed, M masked, · withheld, ! source down)")
    print("  persons: " + ", ".join(
        f"{i + 1}={p.label} ({p.role})" for i, p in enumerate(persons)
    ))
    print("  columns: " + ", ".join(f"{codes[c]}={c}" for c in columns))
    rows = [
        f.id for f in policy.fields
        if f.id not in _LEFT_OUT
        and any(
            not s.startswith("·") for col in case.table.values() for s in col.get(f.id, {}).values()
        )
    ]
    cells = {(f, c): _cell(case.table[c].get(f, {}), persons) for f in rows for c in columns}
    widths = {c: max([1] + [len(cells[(f, c)]) for f in rows]) for c in columns}
    first = max([len("field")] + [len(f) for f in rows]) + 1
    print("  " + "field".ljust(first) + " ".join(codes[c].ljust(widths[c]) for c in columns))
    for f in rows:
        print("  " + f.ljust(first) + " ".join(cells[(f, c)].ljust(widths[c]) for c in columns))
    used = sorted({
        s[1:].rstrip("!").strip("()")
        for col in case.table.values() for by in col.values() for s in by.values()
        if s.startswith("M(")
    })
    if used:
        print("  transforms: " + ", ".join(f"M{t[:3]}={t}" for t in used))


def _cell(by_person: dict[str, str], persons: list[PersonView]) -> str:
    if not by_person:
        return ""
    if "" in by_person or len(set(by_person.values())) == 1:
        return _short(next(iter(by_person.values())))
    return "".join(
        _short(by_person[p.label])[0] if p.label in by_person else " " for p in persons
    ) + ("!" if any(s.endswith("!") for s in by_person.values()) else "")


def _short(symbol: str) -> str:
    """M(presence)! -> Mpre!"""
    if symbol.startswith("M("):
        name = symbol[2:].split(")")[0]
        return "M" + name[:3] + ("!" if symbol.endswith("!") else "")
    return symbol
