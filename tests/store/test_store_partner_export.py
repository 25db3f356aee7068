"""The export queries on SQLite and PostgreSQL: the source view's body test is exact."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from gateway.broker.log_events import FieldEntry, FieldOutcome, RecordKind
from gateway.store import AuditLog, encode_event
from gateway.store.partner_export import (
    ExportScope,
    ExportView,
    PartnerExportStore,
    released_field_marker,
)
from tests.store.conftest import EventFactory


def _field(source: str, outcome: str, transform: str | None = None) -> FieldEntry:
    return FieldEntry("care.treatment", "health", outcome, transform, source, "available")


@pytest.mark.parametrize(
    ("field", "source", "found"),
    [
        (_field("veilig_thuis", "disclosed"), "veilig_thuis", True),
        (_field("veilig_thuis", "masked", "presence"), "veilig_thuis", True),
        (_field("veilig_thuis", "withheld"), "veilig_thuis", False),
        # A longer type that starts with the caller's, and a LIKE wildcard's look-alike.
        (_field("police_archive", "disclosed"), "police", False),
        (_field("veiligXthuis", "disclosed"), "veilig_thuis", False),
        (_field('odd"type', "disclosed"), 'odd"type', True),
    ],
)
def test_the_marker_is_in_a_body_exactly_when_the_field_is_released(
    make_event: EventFactory, field: FieldEntry, source: str, found: bool
) -> None:
    body = encode_event(make_event(fields=(field,)))
    markers = [
        released_field_marker(source, o) for o in (FieldOutcome.DISCLOSED, FieldOutcome.MASKED)
    ]
    assert any(m in body for m in markers) is found


async def test_the_database_finds_the_same_records(
    engine: Engine, audit: AuditLog, make_event: EventFactory
) -> None:
    events = [
        make_event(1, fields=(_field("veilig_thuis", "disclosed"),)),
        make_event(2, fields=(_field("veiligXthuis", "disclosed"),)),
        make_event(3, fields=(_field("veilig_thuis", "withheld"),)),
        make_event(4, fields=(_field("veilig_thuis", "masked", "presence"),)),
        make_event(
            5,
            kind=RecordKind.REFUSAL,
            status="refused",
            fields=(_field("veilig_thuis", "disclosed"),),
        ),
        make_event(
            6, kind=RecordKind.TRIAGE, fields=(_field("veilig_thuis", "masked", "presence"),)
        ),
    ]
    seqs = [(await audit.append(e)).seq for e in events]
    store = PartnerExportStore(engine)
    head = store.head_seq()
    assert head == seqs[-1]
    scope = ExportScope(ExportView.SOURCE, "veilig_thuis", None, None, head)
    wanted = [seqs[0], seqs[3], seqs[5]]
    assert store.count(scope, 0) == 3
    assert [r.seq for r in store.page(scope, 0, 2)] == wanted[:2]
    assert [r.seq for r in store.page(scope, wanted[1], 2)] == wanted[2:]
    # The seq range bounds an export: later records are not part of it.
    await audit.append(make_event(7, fields=(_field("veilig_thuis", "disclosed"),)))
    assert store.count(scope, 0) == 3

    recipient = ExportScope(ExportView.RECIPIENT, "politie-oost", None, None, head)
    assert [r.seq for r in store.page(recipient, 0, 10)] == [
        s for s, e in zip(seqs, events, strict=True) if e.kind is not RecordKind.REFUSAL
    ]
    assert store.count(ExportScope(ExportView.RECIPIENT, "ggz", None, None, head), 0) == 0
