"""Request ids claimed with the case or entry they create, on SQLite and PostgreSQL: the first
call with a partner's id creates, every other one gets the first one's row back."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, func, inspect, select

from gateway.store import CaseNotFound, CaseRepository, CaseRow, EntryRow, create_engine_for
from gateway.store.db import init_schema
from gateway.store.request_ids import PriorRequest, RequestClaim
from gateway.store.tables import case_entries, request_ids
from gateway.store.tables import cases as cases_table
from tests.store.factories import T0

RETENTION = timedelta(hours=24)
DIGEST = bytes(range(32))
OTHER_DIGEST = bytes(range(1, 33))
REGISTER = "ExchangeService/RegisterCase"
ADD = "ExchangeService/AddToCaseFile"


def claim(
    case_id: str,
    *,
    partner: str = "police",
    request_id: str = "r_1",
    operation: str = REGISTER,
    digest: bytes = DIGEST,
    entry_id: str = "",
    at: datetime = T0,
) -> RequestClaim:
    return RequestClaim(
        partner_id=partner,
        request_id=request_id,
        operation=operation,
        content_digest=digest,
        case_id=case_id,
        entry_id=entry_id,
        at=at,
        expired_before=at - RETENTION,
    )


def create(repo: CaseRepository, c: RequestClaim) -> CaseRow | PriorRequest:
    return repo.create_case_once(
        c,
        case_id=c.case_id,
        subject_pseudonym="ps_anna",
        case_type="code_rood",
        phase="registration",
        registered_by=c.partner_id,
        wrapped_data_key=b"wrapped",
        entries=[],
        invitees=[("zvh", c.partner_id)],
        now=c.at,
    )


def note(case_id: str, entry_id: str, at: datetime = T0) -> EntryRow:
    return EntryRow(entry_id, case_id, "case.notes", b"ct:" + entry_id.encode(), "police", at)


def count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_the_first_claim_creates_and_a_repeat_gets_its_row(
    cases: CaseRepository, engine: Engine
) -> None:
    first = create(cases, claim("c_1"))
    assert isinstance(first, CaseRow) and first.case_id == "c_1"
    again = create(cases, claim("c_2", at=T0 + timedelta(minutes=3)))
    assert again == PriorRequest(REGISTER, DIGEST, "c_1", "", T0)
    assert cases.get_case("c_2") is None
    assert count(engine, cases_table) == 1


def test_the_row_keeps_identifiers_and_a_digest_only(engine: Engine) -> None:
    columns = {c["name"] for c in inspect(engine).get_columns("request_ids")}
    assert columns == {
        "partner_id", "request_id", "operation", "content_digest", "case_id", "entry_id",
        "created_at",
    }


def test_request_ids_are_scoped_per_partner(cases: CaseRepository, engine: Engine) -> None:
    assert isinstance(create(cases, claim("c_1", partner="police")), CaseRow)
    assert isinstance(create(cases, claim("c_2", partner="municipality")), CaseRow)
    assert count(engine, cases_table) == 2


def test_a_repeat_with_other_content_gets_the_first_row_to_compare(
    cases: CaseRepository,
) -> None:
    create(cases, claim("c_1"))
    prior = create(cases, claim("c_2", digest=OTHER_DIGEST))
    # The store returns the first call's digest; deciding it is another request is the
    # broker's part.
    assert isinstance(prior, PriorRequest) and prior.content_digest == DIGEST
    assert cases.get_case("c_2") is None


def test_an_expired_id_is_free_again(cases: CaseRepository, engine: Engine) -> None:
    create(cases, claim("c_1"))
    later = T0 + RETENTION + timedelta(seconds=1)
    second = create(cases, claim("c_2", at=later))
    assert isinstance(second, CaseRow)
    # Only the new claim remains, naming the new case.
    assert create(cases, claim("c_3", at=later)) == PriorRequest(REGISTER, DIGEST, "c_2", "", later)
    assert count(engine, request_ids) == 1


def test_an_entry_is_added_once(cases: CaseRepository, engine: Engine) -> None:
    create(cases, claim("c_1"))
    c = claim("c_1", request_id="r_note", operation=ADD, entry_id="e_1")
    assert cases.add_entry_once(c, note("c_1", "e_1")) is None
    repeat = claim("c_1", request_id="r_note", operation=ADD, entry_id="e_2")
    assert cases.add_entry_once(repeat, note("c_1", "e_2")) == PriorRequest(
        ADD, DIGEST, "c_1", "e_1", T0
    )
    assert [e.entry_id for e in cases.entries("c_1", "case.notes")] == ["e_1"]


def test_a_failed_write_leaves_no_claim(cases: CaseRepository, engine: Engine) -> None:
    c = claim("c_missing", request_id="r_note", operation=ADD, entry_id="e_1")
    with pytest.raises(CaseNotFound):
        cases.add_entry_once(c, note("c_missing", "e_1"))
    assert count(engine, request_ids) == 0
    # So the same id works once the case is there.
    create(cases, claim("c_missing"))
    assert cases.add_entry_once(c, note("c_missing", "e_1")) is None


def test_a_claim_must_name_what_is_written(cases: CaseRepository) -> None:
    with pytest.raises(ValueError):
        cases.add_entry_once(claim("c_1", operation=ADD, entry_id="e_1"), note("c_1", "e_2"))
    with pytest.raises(ValueError):
        cases.create_case_once(
            claim("c_1"),
            case_id="c_other",
            subject_pseudonym="ps_anna",
            case_type="code_rood",
            phase="registration",
            registered_by="police",
            wrapped_data_key=b"wrapped",
            entries=[],
            invitees=[],
            now=T0,
        )


def test_pruning_forgets_only_expired_ids(cases: CaseRepository, engine: Engine) -> None:
    create(cases, claim("c_1", request_id="r_old"))
    create(cases, claim("c_2", request_id="r_new", at=T0 + timedelta(hours=2)))
    assert cases.prune_request_ids(T0 + timedelta(hours=1)) == 1
    with engine.connect() as conn:
        left = conn.execute(select(request_ids.c.request_id)).scalars().all()
    assert left == ["r_new"]


def test_concurrent_repeats_create_exactly_one_case(db_url: str) -> None:
    """Replicas with their own engines race with one partner's request id: one case."""
    setup = create_engine_for(db_url)
    init_schema(setup)
    setup.dispose()
    racers = 6
    start = threading.Barrier(racers)
    outcomes: list[CaseRow | PriorRequest] = []
    errors: list[BaseException] = []

    def racer(n: int) -> None:
        engine = create_engine_for(db_url)
        try:
            repo = CaseRepository(engine)
            start.wait()
            outcomes.append(create(repo, claim(f"c_{n}")))
        except BaseException as exc:
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    created = [o for o in outcomes if isinstance(o, CaseRow)]
    assert len(created) == 1
    winner = created[0].case_id
    assert all(o.case_id == winner for o in outcomes if isinstance(o, PriorRequest))
    engine = create_engine_for(db_url)
    try:
        assert count(engine, cases_table) == 1
        assert count(engine, request_ids) == 1
        assert count(engine, case_entries) == 0
    finally:
        engine.dispose()
