"""Reading a person's pseudonyms from case_persons, on SQLite and PostgreSQL: by the BSN's
pseudonym (known when added, or learnt later), and by case and person id."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, insert, update

from gateway.broker.errors import CaseNotFound, InvalidRequest
from gateway.broker.log_events import SUBJECT_ID_TYPE
from gateway.broker.subjects import PERSON_ID_TYPE, PersonRole, Subjects
from gateway.crypto import Keystore
from gateway.crypto.pseudonym import subject_pseudonym
from gateway.store import CaseRepository
from gateway.store.persons import AsyncPersonDirectory, PersonDirectory, PersonLink
from gateway.store.tables import case_persons

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
BSN = "111222333"


def new_case(cases: CaseRepository, case_id: str, subject: str) -> None:
    cases.create_case(
        case_id=case_id,
        subject_pseudonym=subject,
        case_type="code_rood",
        phase="registration",
        registered_by="police",
        wrapped_data_key=b"\x01wrapped",
        entries=[],
        invitees=[],
        now=T0,
    )


def add(
    engine: Engine,
    case_id: str,
    person_id: str,
    role: str,
    pseudonym: str,
    bsn_pseudonym: str | None = None,
    identified_by: str = "unidentified",
) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(case_persons).values(
                case_id=case_id,
                person_id=person_id,
                role_in_case=role,
                pseudonym=pseudonym,
                bsn_pseudonym=bsn_pseudonym,
                identified_by=identified_by,
                added_by="police",
                added_at=T0,
            )
        )


def family(engine: Engine, cases: CaseRepository, bsn_ps: str) -> None:
    """c_1: a parent added with the BSN, a child without; c_2: a person whose BSN (the
    same) was learnt after it was added, since removed; c_3: someone else."""
    for case_id in ("c_1", "c_2", "c_3"):
        new_case(cases, case_id, "ps_" + "0" * 32)
    add(engine, "c_1", "p_1", "parent", bsn_ps, bsn_ps, "bsn")
    add(engine, "c_1", "p_2", "child", "ps_" + "c" * 32)
    add(engine, "c_2", "p_1", "victim", "ps_" + "d" * 32)
    with engine.begin() as conn:
        conn.execute(
            update(case_persons)
            .where(case_persons.c.case_id == "c_2")
            .values(bsn_pseudonym=bsn_ps, identified_by="bsn", removed_by="zvh", removed_at=T0)
        )
    add(engine, "c_3", "p_1", "subject", "ps_" + "e" * 32)


def test_a_bsn_reaches_every_person_with_it(
    engine: Engine, cases: CaseRepository, gateway_keys: Keystore
) -> None:
    bsn_ps = subject_pseudonym(gateway_keys.pseudonym_key, BSN)
    family(engine, cases, bsn_ps)
    directory = PersonDirectory(engine)
    found = directory.linked_to([bsn_ps])
    assert [(p.case_id, p.person_id, p.role_in_case, p.pseudonym) for p in found] == [
        ("c_1", "p_1", "parent", bsn_ps),
        ("c_2", "p_1", "victim", "ps_" + "d" * 32),
    ]
    assert found[1].removed and not found[0].removed, "a removed person keeps its records"
    assert directory.linked_to([]) == []
    assert directory.linked_to(["ps_" + "f" * 32]) == []

    subject = Subjects(directory, gateway_keys.pseudonym_key).by_bsn_pseudonym(bsn_ps)
    assert subject.pseudonyms == (bsn_ps, "ps_" + "d" * 32)
    assert subject.id_type == SUBJECT_ID_TYPE and subject.named_by == "bsn"
    assert subject.persons == (
        PersonRole("c_1", "p_1", "parent"),
        PersonRole("c_2", "p_1", "victim"),
    )
    assert subject.in_case("c_2") and not subject.in_case("c_3")


def test_a_person_is_found_by_case_and_person_id(
    engine: Engine, cases: CaseRepository, gateway_keys: Keystore
) -> None:
    bsn_ps = subject_pseudonym(gateway_keys.pseudonym_key, BSN)
    family(engine, cases, bsn_ps)
    directory = PersonDirectory(engine)
    assert directory.pseudonym_of("c_1", "p_2") == "ps_" + "c" * 32
    assert directory.pseudonym_of("c_1", "p_9") is None
    assert directory.pseudonym_of("c_9", "p_1") is None
    child = directory.person("c_1", "p_2")
    assert child == PersonLink("c_1", "p_2", "child", "ps_" + "c" * 32, None, "unidentified", False)

    subjects = Subjects(directory, gateway_keys.pseudonym_key)
    alone = subjects.by_person("c_1", "p_2")
    assert alone.pseudonyms == ("ps_" + "c" * 32,) and alone.id_type == PERSON_ID_TYPE
    assert alone.persons == (PersonRole("c_1", "p_2", "child"),) and alone.case_id == "c_1"
    # Once the BSN is known, the person is everyone with that BSN, its own pseudonym first.
    learnt = subjects.by_person("c_2", "p_1")
    assert learnt.pseudonyms == ("ps_" + "d" * 32, bsn_ps)
    assert learnt.id_type == PERSON_ID_TYPE
    assert {p.case_id for p in learnt.persons} == {"c_1", "c_2"}
    with pytest.raises(CaseNotFound) as unknown_person:
        subjects.by_person("c_1", "p_9")
    with pytest.raises(CaseNotFound) as unknown_case:
        subjects.by_person("c_9", "p_1")
    assert str(unknown_person.value) == str(unknown_case.value)
    for case_id, person_id in (("", "p_1"), ("c_1", ""), ("c_1", "p\x00"), ("c" * 65, "p_1")):
        with pytest.raises(InvalidRequest):
            subjects.by_person(case_id, person_id)
    with pytest.raises(InvalidRequest) as bad:
        subjects.bsn_pseudonym("123456789")
    assert "123456789" not in str(bad.value)


def test_a_hold_reaches_the_pseudonyms_linked_to_its_own(
    engine: Engine, cases: CaseRepository, gateway_keys: Keystore
) -> None:
    bsn_ps = subject_pseudonym(gateway_keys.pseudonym_key, BSN)
    family(engine, cases, bsn_ps)
    reach = Subjects(PersonDirectory(engine), gateway_keys.pseudonym_key).reach(
        [bsn_ps, "ps_" + "c" * 32, "ps_" + "f" * 32]
    )
    assert reach == {
        bsn_ps: frozenset({bsn_ps, "ps_" + "d" * 32}),
        "ps_" + "c" * 32: frozenset({"ps_" + "c" * 32}),
        "ps_" + "f" * 32: frozenset({"ps_" + "f" * 32}),
    }


async def test_the_async_face_reads_the_same(
    engine: Engine, cases: CaseRepository, gateway_keys: Keystore
) -> None:
    bsn_ps = subject_pseudonym(gateway_keys.pseudonym_key, BSN)
    family(engine, cases, bsn_ps)
    directory = AsyncPersonDirectory(PersonDirectory(engine))
    assert await directory.linked_to([bsn_ps]) == directory.sync.linked_to([bsn_ps])
    assert await directory.pseudonym_of("c_1", "p_2") == "ps_" + "c" * 32
    assert await directory.person("c_1", "p_9") is None
