"""The subject access report as one printable HTML page.

Self-contained: inline CSS (with print rules), no scripts, no images, no links to load, and a
Content-Security-Policy that forbids fetching anything, so the page shows the same offline,
printed or archived. Every text that comes from the log or the policy is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, tzinfo
from html import escape
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.reports.subject_access import ReportedField, ReportEntry, SubjectAccessReport
from gateway.reports.subject_access_text import (
    AVAILABILITY_WORDS,
    KIND_WORDS,
    LABELS,
    TRANSFORM_WORDS,
    VERIFY_STEPS,
    WITHHELD_STATEMENT,
    check_language,
)

MEDIA_TYPE = "text/html; charset=utf-8"
_MONTHS = {
    "nl": (
        "januari",
        "februari",
        "maart",
        "april",
        "mei",
        "juni",
        "juli",
        "augustus",
        "september",
        "oktober",
        "november",
        "december",
    ),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
}

_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
  font-size: 16px; line-height: 1.5; color: #1a1a1a; background: #fff; margin: 0; }
main { max-width: 52rem; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.7rem; margin: 0 0 .25rem; }
h2 { font-size: 1.25rem; margin: 1.75rem 0 .5rem; }
h3 { font-size: 1.05rem; margin: 0 0 .5rem; }
.sub { color: #444; margin: 0 0 1rem; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: 0; }
dl.meta dt { font-weight: 600; }
dl.meta dd { margin: 0; }
.note { border-left: 5px solid #b35900; background: #fff4e5; padding: .75rem 1rem; }
.entry { border: 1px solid #bbb; border-radius: 6px; padding: 1rem; margin: 1rem 0; }
.entry.break-glass { border-color: #b30000; }
.flag { color: #b30000; font-weight: 600; }
table { border-collapse: collapse; width: 100%; margin-top: .5rem; font-size: .95rem; }
th, td { border: 1px solid #ccc; padding: .3rem .45rem; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
code, pre, .hash { font-family: ui-monospace, "DejaVu Sans Mono", Consolas, monospace;
  font-size: .8rem; overflow-wrap: anywhere; word-break: break-all; }
pre { white-space: pre-wrap; background: #f7f7f7; padding: .5rem; border: 1px solid #ddd; }
.muted { color: #555; font-size: .9rem; }
footer { margin-top: 2rem; border-top: 1px solid #ccc; padding-top: .75rem; }
@media print {
  body { font-size: 10.5pt; }
  main { max-width: none; padding: 0; }
  .entry, .note, table, pre { break-inside: avoid; page-break-inside: avoid; }
  h2 { break-after: avoid; page-break-after: avoid; }
  .proofs { break-before: page; page-break-before: always; }
  th { background: #eee !important; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
@page { size: A4; margin: 18mm 16mm; }
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _zone() -> tzinfo:
    try:
        return ZoneInfo("Europe/Amsterdam")
    except ZoneInfoNotFoundError:
        return UTC


def _when(moment: datetime, language: str) -> str:
    local = moment.astimezone(_zone())
    month = _MONTHS[language][local.month - 1]
    zone = local.tzname() or "UTC"
    return f"{local.day} {month} {local.year}, {local:%H:%M:%S} ({zone})"


def _span(entry: ReportEntry, language: str) -> str:
    start = _when(entry.started_at, language)
    if entry.ended_at == entry.started_at:
        return start
    return f"{start} – {entry.ended_at.astimezone(_zone()):%H:%M:%S}"


def _row(label: str, value_html: str) -> str:
    return f"<dt>{_e(label)}</dt><dd>{value_html}</dd>"


def _described(ident: str, description: str) -> str:
    if description:
        return f'{_e(description)} <span class="muted">(<code>{_e(ident)}</code>)</span>'
    return f"<code>{_e(ident)}</code>"


def _field_rows(fields: Iterable[ReportedField], language: str) -> str:
    words = LABELS[language]
    rows = []
    for f in fields:
        shared = (
            words["full"]
            if f.transform is None
            else TRANSFORM_WORDS[language].get(f.transform, f.transform)
        )
        result = AVAILABILITY_WORDS[language].get(f.availability, f.availability)
        rows.append(
            "<tr>"
            f"<td>{_described(f.field, f.description)}</td>"
            f"<td>{_described(f.category.id, f.category.description)}</td>"
            f"<td>{_e(shared)}</td>"
            f"<td>{_described(f.source.id, f.source.description)}</td>"
            f"<td>{_e(result)}</td>"
            "</tr>"
        )
    head = "".join(
        f'<th scope="col">{_e(words[k])}</th>'
        for k in ("field", "category", "shared_as", "source", "result")
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _entry(entry: ReportEntry, language: str) -> str:
    words = LABELS[language]
    kind = KIND_WORDS[language].get(entry.kind, entry.kind)
    recipient = (
        f"{_e(entry.recipient.display_name)} "
        f'<span class="muted">(<code>{_e(entry.recipient.partner_id)}</code>)</span>'
    )
    grounds = "<br>".join(
        (
            f'{_e(g.title)} <span class="muted">(<code>{_e(g.id)}</code>)</span>'
            if g.title
            else f"<code>{_e(g.id)}</code>"
        )
        for g in entry.legal_grounds
    )
    rows = [
        _row(words["when"], _e(_span(entry, language))),
        _row(words["recipient"], recipient),
        _row(words["role"], _described(entry.role.id, entry.role.description)),
        _row(words["purpose"], _described(entry.purpose.id, entry.purpose.description)),
        _row(words["legal_basis"], grounds or "—"),
        _row(words["activity"], f"<code>{_e(entry.processing_activity)}</code>"),
        _row(words["case"], f"<code>{_e(entry.case_id)}</code>"),
    ]
    if entry.role_in_case:
        # A role id of the policy: the case file names roles by id only.
        rows.append(_row(words["role_in_case"], f"<code>{_e(entry.role_in_case)}</code>"))
    if entry.break_glass:
        rows.append(
            _row(words["break_glass"], f'<span class="flag">{_e(words["break_glass_yes"])}</span>')
        )
    if entry.status == "incomplete":
        rows.append(_row(words["result"], _e(words["incomplete"])))
    rows.append(_row(words["policy"], f"<code>{_e(entry.policy_version)}</code>"))
    rows.append(_row(words["record"], f'<a href="#p{entry.seq}">{entry.seq}</a>'))
    classes = "entry break-glass" if entry.break_glass else "entry"
    return (
        f'<article class="{classes}" id="r{entry.seq}">'
        f"<h3>{_e(kind)} — {_e(_when(entry.started_at, language))}</h3>"
        f'<dl class="meta">{"".join(rows)}</dl>'
        f'<h3 style="margin-top:.75rem">{_e(words["fields"])}</h3>'
        f"{_field_rows(entry.fields, language)}"
        "</article>"
    )


def _proofs(report: SubjectAccessReport, language: str) -> str:
    words = LABELS[language]
    parts = [f'<section class="proofs"><h2>{_e(words["proofs_heading"])}</h2>']
    for entry in report.entries:
        parts.append(f'<div id="p{entry.seq}"><h3>{_e(words["record"])} {entry.seq}</h3>')
        parts.append(f'<p class="hash">record hash: {_e(entry.record_hash)}</p>')
        proof = entry.proof
        if proof is None:
            parts.append(f'<p class="muted">{_e(words["no_proof"])}</p></div>')
            continue
        path = "".join(f'<li class="hash">{_e(node)}</li>' for node in proof.path)
        parts.append(
            '<dl class="meta">'
            f'<dt>leaf index</dt><dd class="hash">{proof.leaf_index}</dd>'
            f'<dt>tree size</dt><dd class="hash">{proof.tree_size}</dd>'
            f'<dt>leaf hash</dt><dd class="hash">{_e(proof.leaf_hash)}</dd>'
            f"<dt>path</dt><dd><ol>{path}</ol></dd>"
            "</dl></div>"
        )
    parts.append(f"<h3>{_e(words['checkpoints'])}</h3>")
    for checkpoint in report.checkpoints:
        parts.append(
            f'<p class="hash">tree size {checkpoint.tree_size}, root '
            f"{_e(checkpoint.root_hash)}, key {_e(checkpoint.key_id)}</p>"
            f"<pre>{_e(checkpoint.note)}</pre>"
        )
    if report.log_key is not None:
        parts.append(
            f"<h3>{_e(words['log_key'])}</h3>"
            f'<p class="hash">{_e(report.log_key.key_id)}</p>'
            f"<pre>{_e(report.log_key.pem)}</pre>"
        )
    parts.append("</section>")
    return "".join(parts)


def render_html(report: SubjectAccessReport, language: str) -> str:
    """The page in ``language`` ("nl" or "en")."""
    check_language(language)
    words = LABELS[language]
    header = (
        f'<header><h1>{_e(words["title"])}</h1><p class="sub">{_e(words["subtitle"])}</p>'
        '<dl class="meta">'
        f"{_row(words['generated'], _e(_when(report.generated_at, language)))}"
        f"{_row(words['count'], str(len(report.entries)))}"
        "</dl></header>"
    )
    note = words["policy_note"].format(version=report.policy_version)
    body = [
        header,
        f'<section><p>{_e(words["intro"])}</p><p class="muted">{_e(note)}</p></section>',
    ]
    if report.withheld_under_exception:
        body.append(
            f'<section class="note" role="note"><h2>{_e(words["withheld_heading"])}</h2>'
            f"<p>{_e(WITHHELD_STATEMENT[language])}</p></section>"
        )
    if report.entries:
        body.append(
            "<section>" + "".join(_entry(e, language) for e in report.entries) + "</section>"
        )
    else:
        body.append(f"<section><p>{_e(words['none'])}</p></section>")
    steps = "".join(f"<li>{_e(step)}</li>" for step in VERIFY_STEPS[language])
    body.append(
        f"<section><h2>{_e(words['rights_heading'])}</h2><p>{_e(words['rights'])}</p></section>"
        f"<section><h2>{_e(words['verify_heading'])}</h2><p>{_e(words['verify'])}</p>"
        f"<ol>{steps}</ol></section>"
    )
    if report.entries:
        body.append(_proofs(report, language))
    pseudonyms = ", ".join(report.subject_pseudonyms or (report.subject_pseudonym,))
    footer = (
        words["footer"].format(seq=report.record_seq, pseudonym=pseudonyms)
        if report.record_seq is not None
        else words["footer_unrecorded"].format(pseudonym=pseudonyms)
    )
    body.append(f'<footer><p class="muted">{_e(footer)}</p></footer>')
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        '<meta name="referrer" content="no-referrer">'
        f"<title>{_e(words['title'])}</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )
