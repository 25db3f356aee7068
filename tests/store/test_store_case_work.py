"""The store of the ZVH's work on a case, on SQLite and PostgreSQL: intake decisions and regie
changes are conditional on what the caller read, write their events in the same transaction,
and a declined case falls due for shredding after its own, shorter period."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from gateway.store import CaseRepository, EntryRow
from gateway.store.case_events import CaseEventStore, EventBell
from gateway.store.case_work import CaseWorkStore, Holder, RegieKind, StateConflict
from gateway.store.retention import CaseShredder
from gateway.store.tables import case_events
from tests.store.factories import T0
from tests.store.test_store_retention import CLOSING, closed_case, count, entries_of, record_of


def reason(case_id: str, n: int = 0) -> EntryRow:
    return entries_of(case_id, n + 1)[n]


def test_an_intake_is_decided_once_and_tells_every_participant(
    cases: CaseRepository, engine: Engine
) -> None:
    closed_case(cases, "c1", closed_at=None, phase="registration", entries=0)
    store, events = CaseWorkStore(engine), CaseEventStore(engine)
    before = {p: [e.kind for e in events.read(p, 0)] for p in ("police", "zvh", "ggz")}
    assert before == {"police": [], "zvh": ["invited"], "ggz": ["invited"]}
    row = store.decide_intake(
        "c1", expected=("pending",), intake="accepted", procesregie=Holder("zvh", "d1"),
        close_in_phase=None, entry=reason("c1"), now=T0,
    )
    assert (row.intake, row.procesregie_partner, row.procesregie_user) == ("accepted", "zvh", "d1")
    assert [e.kind for e in events.read("police", 0)] == ["intake_decided"]
    with pytest.raises(StateConflict):
        store.decide_intake(
            "c1", expected=("pending",), intake="declined", procesregie=None,
            close_in_phase=CLOSING, entry=reason("c1", 1), now=T0,
        )
    assert [e.kind for e in events.read("police", 0)] == ["intake_decided"]


def test_a_regie_moves_only_from_the_holder_read_and_returns_to_the_previous_one(
    cases: CaseRepository, engine: Engine
) -> None:
    closed_case(cases, "c1", closed_at=None, phase="registration", entries=0)
    store = CaseWorkStore(engine)
    store.transfer_regie(
        "c1", RegieKind.CASUSREGIE, expected=Holder(), to=Holder("ggz", ""), entries=[], now=T0
    )
    with pytest.raises(StateConflict):  # someone else read the old holder
        store.transfer_regie(
            "c1", RegieKind.CASUSREGIE, expected=Holder(), to=Holder("police"), entries=[],
            now=T0,
        )
    assert store.previous_holder("c1", RegieKind.CASUSREGIE) == Holder()
    row = store.return_regie(
        "c1", RegieKind.CASUSREGIE, expected=Holder("ggz"), previous=Holder(), entries=[],
        now=T0,
    )
    assert row.casusregie_partner == ""


def test_the_bell_rings_after_a_change(cases: CaseRepository, engine: Engine) -> None:
    rung: list[int] = []

    class Counting(EventBell):
        def ring(self) -> None:
            rung.append(1)

    events = CaseEventStore(engine, Counting())
    closed_case(cases, "c1", closed_at=None, phase="registration", entries=0)
    events.publish("c1", ["police"], "action_due", T0)
    events.publish("c1", None, "meeting_planned", T0)
    assert [e.kind for e in events.read("police", 0)] == ["action_due", "meeting_planned"]
    assert [e.kind for e in events.read("ggz", 0, case_id="c1")] == ["invited", "meeting_planned"]
    assert len(rung) == 2


def test_a_declined_case_is_due_after_its_own_shorter_period(
    cases: CaseRepository, engine: Engine
) -> None:
    closed_case(cases, "worked", closed_at=T0)
    closed_case(cases, "declined", closed_at=None, phase="registration")
    CaseWorkStore(engine).decide_intake(
        "declined", expected=("pending",), intake="declined", procesregie=None,
        close_in_phase=CLOSING, entry=reason("declined", 5), now=T0,
    )
    shredder = CaseShredder(engine)
    now = T0 + timedelta(days=91)
    due = shredder.due(
        closed_by=now - timedelta(days=730),
        closing_phase=CLOSING,
        declined_closed_by=now - timedelta(days=90),
    )
    assert [(c.case_id, c.declined) for c in due] == [("declined", True)]
    assert shredder.shred(due[0], now, record_of) is not None
    # Its events go with it: they say which partners took part.
    assert count(engine, case_events, "declined") == 0
    assert count(engine, case_events, "worked") > 0
