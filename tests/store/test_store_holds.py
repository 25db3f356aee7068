"""Confidentiality holds in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from gateway.store.holds import Hold, HoldStore

T0 = datetime(2026, 11, 2, 9, 30, 0, 250000, tzinfo=UTC)


def hold(hold_id: str, subject: str = "ps_a", case_id: str = "", days: int = 30) -> Hold:
    return Hold(
        hold_id=hold_id,
        subject_pseudonym=subject,
        placed_by="police",
        case_id=case_id,
        # The store keeps what the use case sealed (gateway.broker.holds), as given.
        reason_ciphertext=b"\x01sealed reason",
        reason_key_id=f"hold_reason/hold/{hold_id}",
        placed_at=T0,
        until=T0 + timedelta(days=days),
        lifted_at=None,
        record_seq=12,
    )


def test_a_placed_hold_reads_back_whole(engine: Engine) -> None:
    store = HoldStore(engine)
    placed = hold("h_1", case_id="c_9")
    store.place(placed)
    assert store.get("h_1") == placed
    assert store.get("h_missing") is None


def test_active_holds_are_those_in_force_at_the_moment(engine: Engine) -> None:
    store = HoldStore(engine)
    for h in (hold("h_long"), hold("h_short", days=1), hold("h_lifted"), hold("h_b", "ps_b")):
        store.place(h)
    assert store.lift("h_lifted", T0 + timedelta(hours=2))
    assert not store.lift("h_lifted", T0 + timedelta(hours=3)), "lifted once only"
    assert not store.lift("h_missing", T0)

    def active(at: datetime) -> set[str]:
        return {h.hold_id for h in store.active_for("ps_a", at)}

    assert active(T0 - timedelta(seconds=1)) == {"h_long", "h_short", "h_lifted"}
    assert active(T0) == {"h_long", "h_short", "h_lifted"}
    assert active(T0 + timedelta(hours=2)) == {"h_long", "h_short"}
    assert active(T0 + timedelta(days=1)) == {"h_long"}
    assert active(T0 + timedelta(days=30)) == set()
    lifted = store.get("h_lifted")
    assert lifted is not None and lifted.lifted_at == T0 + timedelta(hours=2)


def test_a_lifted_hold_cannot_be_placed(engine: Engine) -> None:
    with pytest.raises(ValueError):
        HoldStore(engine).place(replace(hold("h_x"), lifted_at=T0))


def test_active_holds_of_several_pseudonyms_of_one_person(engine: Engine) -> None:
    store = HoldStore(engine)
    placed = (hold("h_a"), hold("h_b", "ps_b"), hold("h_c", "ps_c"), hold("h_s", "ps_b", days=1))
    for h in placed:
        store.place(h)
    at = T0 + timedelta(days=2)
    assert [h.hold_id for h in store.active_for_any(["ps_a", "ps_b", "ps_b"], at)] == ["h_a", "h_b"]
    assert [h.hold_id for h in store.active_for_any(["ps_b"], T0)] == ["h_b", "h_s"]
    assert store.active_for_any([], at) == []
