"""The case file: registration, participants, entries and phase, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select

from gateway.store import (
    AsyncCaseRepository,
    CaseNotFound,
    CaseRepository,
    CaseRow,
    DuplicateCase,
    EntryRow,
    ParticipantRole,
    PhaseConflict,
    StoreError,
)
from gateway.store.tables import case_entries, case_participants
from gateway.store.tables import cases as cases_table
from tests.store.factories import T0

KEY = b"\x01wrapped-data-key\x00\xff"


def entry(
    entry_id: str, field: str, seconds: int, case_id: str = "c1", by: str = "gemeente"
) -> EntryRow:
    return EntryRow(
        entry_id=entry_id,
        case_id=case_id,
        field=field,
        ciphertext=b"ct:" + entry_id.encode() + b"\x00\xff",
        created_by=by,
        created_at=T0 + timedelta(seconds=seconds),
    )


def register(repo: CaseRepository, case_id: str = "c1", **overrides: object) -> CaseRow:
    values: dict[str, object] = {
        "case_id": case_id,
        "subject_pseudonym": "ps-anna",
        "case_type": "code_rood",
        "phase": "registration",
        "registered_by": "gemeente",
        "wrapped_data_key": KEY,
        "entries": [entry("e1", "reason", 0, case_id), entry("e2", "goal", 0, case_id)],
        "invitees": [("politie", "gemeente"), ("veilig-thuis", "gemeente")],
        "now": T0,
    }
    values.update(overrides)
    return repo.create_case(**values)  # type: ignore[arg-type]


def test_create_and_get_round_trip(cases: CaseRepository) -> None:
    created = register(cases)
    fetched = cases.get_case("c1")
    assert fetched == created
    assert fetched is not None
    assert fetched.subject_pseudonym == "ps-anna"
    assert fetched.case_type == "code_rood"
    assert fetched.phase == "registration"
    assert fetched.registered_by == "gemeente"
    assert fetched.created_at == T0
    assert fetched.created_at.tzinfo is not None
    assert fetched.closed_at is None
    assert fetched.wrapped_data_key == KEY
    assert fetched.participants == ("gemeente", "politie", "veilig-thuis")


def test_unknown_case_is_none(cases: CaseRepository) -> None:
    assert cases.get_case("nope") is None


def test_registration_is_one_transaction(cases: CaseRepository, engine: Engine) -> None:
    # The second entry reuses an entry id: the whole registration must be undone.
    with pytest.raises(StoreError):
        register(cases, entries=[entry("dup", "reason", 0), entry("dup", "goal", 1)])
    assert cases.get_case("c1") is None
    with engine.connect() as conn:
        for table in (cases_table, case_participants, case_entries):
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 0


def test_duplicate_case_id_is_refused(cases: CaseRepository) -> None:
    register(cases)
    with pytest.raises(DuplicateCase):
        register(cases, subject_pseudonym="ps-other", entries=[])
    row = cases.get_case("c1")
    assert row is not None and row.subject_pseudonym == "ps-anna"


def test_registrant_and_repeated_invitees_are_not_doubled(cases: CaseRepository) -> None:
    row = register(
        cases, invitees=[("gemeente", "gemeente"), ("politie", "gemeente"), ("politie", "x")]
    )
    assert row.participants == ("gemeente", "politie")
    roles = {p.partner_id: p for p in cases.participants("c1")}
    assert roles["gemeente"].role_in_case is ParticipantRole.REGISTRANT
    assert roles["politie"].role_in_case is ParticipantRole.INVITED
    assert roles["politie"].invited_by == "gemeente"
    assert roles["politie"].joined_at == T0


def test_entries_must_belong_to_the_case(cases: CaseRepository) -> None:
    with pytest.raises(ValueError):
        register(cases, entries=[entry("e1", "reason", 0, case_id="other")])
    assert cases.get_case("c1") is None


def test_participants_and_idempotent_invite(cases: CaseRepository) -> None:
    register(cases, invitees=[])
    assert cases.is_participant("c1", "gemeente")
    assert not cases.is_participant("c1", "ggz")
    later = T0 + timedelta(days=1)
    row = cases.add_participant("c1", "ggz", "politie", later)
    assert row.participants == ("gemeente", "ggz")
    again = cases.add_participant("c1", "ggz", "someone-else", later + timedelta(days=1))
    assert again == row
    ggz = [p for p in cases.participants("c1") if p.partner_id == "ggz"][0]
    assert ggz.invited_by == "politie" and ggz.joined_at == later
    assert cases.is_participant("c1", "ggz")
    assert not cases.is_participant("other-case", "ggz")


def test_invite_to_unknown_case(cases: CaseRepository) -> None:
    with pytest.raises(CaseNotFound):
        cases.add_participant("nope", "ggz", "politie", T0)


def test_latest_entries_newest_per_field(cases: CaseRepository) -> None:
    register(cases, entries=[entry("e1", "reason", 0), entry("e2", "goal", 0)])
    cases.add_entries(
        "c1",
        [
            entry("e3", "reason", 10),
            entry("e4", "note", 5),
            entry("e5", "note", 20),
            entry("e6", "goal", -5),  # older than e2: must not win
        ],
    )
    latest = cases.latest_entries("c1", ["reason", "goal", "note", "absent"])
    assert {f: e.entry_id for f, e in latest.items()} == {
        "reason": "e3",
        "goal": "e2",
        "note": "e5",
    }
    assert latest["reason"] == entry("e3", "reason", 10)
    assert cases.latest_entries("c1", ["goal"]).keys() == {"goal"}
    assert cases.latest_entries("c1", []) == {}


def test_latest_entry_tie_breaks_on_entry_id(cases: CaseRepository) -> None:
    register(cases, entries=[entry("b", "note", 3), entry("a", "note", 3), entry("c", "x", 9)])
    assert cases.latest_entries("c1", ["note"])["note"].entry_id == "b"


def test_entries_accumulate_oldest_first(cases: CaseRepository) -> None:
    register(cases, entries=[])
    cases.add_entries("c1", [entry("n2", "note", 2), entry("n1", "note", 1)])
    cases.add_entries("c1", [entry("n3", "note", 3), entry("r1", "reason", 0)])
    assert [e.entry_id for e in cases.entries("c1", "note")] == ["n1", "n2", "n3"]
    assert cases.entries("c1", "absent") == []


def test_add_entries_to_unknown_case(cases: CaseRepository) -> None:
    with pytest.raises(CaseNotFound):
        cases.add_entries("nope", [entry("e1", "note", 0, case_id="nope")])


def test_set_phase_and_optimistic_conflict(cases: CaseRepository) -> None:
    register(cases)
    row = cases.set_phase("c1", "triage", expected_phase="registration")
    assert row.phase == "triage"
    with pytest.raises(PhaseConflict) as err:
        cases.set_phase("c1", "case_meeting", expected_phase="registration")
    assert err.value.actual == "triage" and err.value.expected == "registration"
    unchanged = cases.get_case("c1")
    assert unchanged is not None and unchanged.phase == "triage"
    # Without an expectation the move is unconditional.
    assert cases.set_phase("c1", "case_meeting").phase == "case_meeting"


def test_closing_records_the_moment(cases: CaseRepository) -> None:
    register(cases)
    closed_at = T0 + timedelta(days=90)
    row = cases.set_phase("c1", "closed", closed_at=closed_at)
    assert row.closed_at == closed_at


def test_set_phase_of_unknown_case(cases: CaseRepository) -> None:
    with pytest.raises(CaseNotFound):
        cases.set_phase("nope", "triage")
    with pytest.raises(CaseNotFound):
        cases.set_phase("nope", "triage", expected_phase="registration")


def test_find_cases_by_subject(cases: CaseRepository) -> None:
    register(cases, "c2", now=T0 + timedelta(hours=1), entries=[])
    register(cases, "c1", entries=[])
    register(cases, "c3", subject_pseudonym="ps-bob", entries=[])
    assert [c.case_id for c in cases.find_cases_by_subject("ps-anna")] == ["c1", "c2"]
    assert cases.find_cases_by_subject("ps-nobody") == []


def test_delete_case_removes_everything(cases: CaseRepository, engine: Engine) -> None:
    register(cases)
    register(cases, "c2", entries=[entry("x1", "reason", 0, case_id="c2")])
    cases.delete_case("c1")
    assert cases.get_case("c1") is None
    assert cases.entries("c1", "reason") == []
    assert not cases.is_participant("c1", "gemeente")
    assert cases.get_case("c2") is not None
    with pytest.raises(CaseNotFound):
        cases.delete_case("c1")


def test_errors_name_ids_but_never_values(cases: CaseRepository) -> None:
    register(cases)
    with pytest.raises(StoreError) as err:
        register(cases, entries=[entry("e1", "reason", 0)])
    text = repr(err.value) + repr(err.value.__cause__) + str(err.value.__cause__)
    assert "ps-anna" not in text and "ct:e1" not in text


async def test_async_face(cases: CaseRepository) -> None:
    repo = AsyncCaseRepository(cases)
    row = await repo.create_case(
        case_id="a1",
        subject_pseudonym="ps-anna",
        case_type="verward_gedrag",
        phase="registration",
        registered_by="ggz",
        wrapped_data_key=KEY,
        entries=[entry("e1", "reason", 0, case_id="a1")],
        invitees=[("politie", "ggz")],
        now=T0,
    )
    assert await repo.get_case("a1") == row
    assert await repo.is_participant("a1", "politie")
    await repo.add_participant("a1", "reclassering", "ggz", T0)
    assert [p.partner_id for p in await repo.participants("a1")] == [
        "ggz",
        "politie",
        "reclassering",
    ]
    await repo.add_entries("a1", [entry("e2", "reason", 5, case_id="a1")])
    assert (await repo.latest_entries("a1", ["reason"]))["reason"].entry_id == "e2"
    assert [e.entry_id for e in await repo.entries("a1", "reason")] == ["e1", "e2"]
    with pytest.raises(PhaseConflict):
        await repo.set_phase("a1", "triage", expected_phase="case_meeting")
    assert (await repo.set_phase("a1", "triage", expected_phase="registration")).phase == "triage"
    assert [c.case_id for c in await repo.find_cases_by_subject("ps-anna")] == ["a1"]
    await repo.delete_case("a1")
    assert await repo.get_case("a1") is None
