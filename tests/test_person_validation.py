"""Validation of the persons of a case (gateway.broker.persons): each error names
persons[i].field and never a value."""

from __future__ import annotations

import pytest

from gateway.broker.errors import InvalidRequest
from gateway.broker.persons import (
    MAX_PERSONS,
    PersonInput,
    about_person,
    for_source,
    identified_by,
    is_partial_date,
    validate_persons,
)
from gateway.broker.sources import Subject
from gateway.core import CompiledPolicy
from gateway.crypto.pseudonym import person_pseudonym, subject_pseudonym
from gateway.policyfiles import load_policy_dir
from gateway.server.config import shipped_policy_dir
from gateway.store.cases import IdentifiedBy

KEY = b"k" * 32


@pytest.fixture(scope="module")
def policy() -> CompiledPolicy:
    return load_policy_dir(shipped_policy_dir())


@pytest.mark.parametrize("text", ["1984", "1984-02", "1984-02-29", "2000-02-29"])
def test_partial_dates_that_exist_are_taken(text: str) -> None:
    assert is_partial_date(text)


@pytest.mark.parametrize(
    "text", ["", "84", "1984-2", "1984-13", "1984-00", "1985-02-29", "0000", "1984-02-30",
             "1984/02", "19840229", " 1984"],
)
def test_other_dates_are_refused(text: str) -> None:
    assert not is_partial_date(text)


@pytest.mark.parametrize(
    ("person", "named"),
    [
        (PersonInput("victim", name="A", date_of_birth="1984-13"), "persons[0].date_of_birth"),
        (PersonInput("landlord", name="A", date_of_birth="1984"), "persons[0].role_in_case"),
        (PersonInput("victim", bsn="123456789"), "persons[0].bsn"),
        (PersonInput("victim", name="x" * 201, date_of_birth="1984"), "persons[0].name"),
        (PersonInput("victim", reference="r" * 101), "persons[0].reference"),
        (PersonInput("victim", description="d" * 2001), "persons[0].description"),
        (PersonInput("victim", name="Only a name"), "persons[0] is not identified"),
    ],
)
def test_an_invalid_person_is_named(
    policy: CompiledPolicy, person: PersonInput, named: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_persons(policy, (person,))
    assert named in str(caught.value)
    for value in (person.bsn, person.name, person.date_of_birth):
        if value:
            assert value not in str(caught.value)


def test_a_bsn_is_never_required(policy: CompiledPolicy) -> None:
    validate_persons(policy, (
        PersonInput("victim", name="Anna", date_of_birth="1990"),
        PersonInput("child", reference="VT-2026-0042"),
        PersonInput("child", description="Toddler seen at the address"),
    ))


def test_at_most_twenty_persons(policy: CompiledPolicy) -> None:
    many = tuple(PersonInput("child", name=f"c{i}", date_of_birth="2015")
                 for i in range(MAX_PERSONS + 1))
    with pytest.raises(InvalidRequest, match="at most 20"):
        validate_persons(policy, many)
    with pytest.raises(InvalidRequest, match="at least one person"):
        validate_persons(policy, ())


def test_how_a_person_is_identified() -> None:
    assert identified_by(PersonInput("victim", bsn="111222333")) is IdentifiedBy.BSN
    assert identified_by(PersonInput("victim", name="A", date_of_birth="1990")) is (
        IdentifiedBy.NAME_AND_BIRTH
    )
    assert identified_by(PersonInput("victim", reference="R1")) is IdentifiedBy.REFERENCE
    assert identified_by(PersonInput("victim", description="d")) is IdentifiedBy.UNIDENTIFIED


def test_a_role_the_policy_does_not_name_is_refused(policy: CompiledPolicy) -> None:
    with pytest.raises(InvalidRequest, match=r"persons\[0\]\.role_in_case must be one of"):
        validate_persons(policy, (PersonInput("neighbour", name="A", date_of_birth="1990"),))


def test_case_fields_are_about_the_case_and_the_rest_about_a_person(
    policy: CompiledPolicy,
) -> None:
    assert not about_person(policy.field("case.reason"))
    assert about_person(policy.field("subject.name"))
    assert about_person(policy.field("police.incidents"))


def test_a_source_gets_only_its_identifiers_and_only_its_own_reference() -> None:
    subject = Subject("111222333", "Anna", "1990", "Street 1", "7511 AB", "R-1")
    shown = for_source(subject, {"name", "date_of_birth", "reference"}, own_reference=False)
    assert (shown.bsn, shown.address, shown.reference) == ("", "", "")
    assert (shown.name, shown.date_of_birth) == ("Anna", "1990")
    own = for_source(subject, {"reference"}, own_reference=True)
    assert own.reference == "R-1" and own.bsn == ""


def test_a_person_pseudonym_never_equals_a_bsn_pseudonym() -> None:
    assert person_pseudonym(KEY, "111222333") != subject_pseudonym(KEY, "111222333")
    assert person_pseudonym(KEY, "p_1") == person_pseudonym(KEY, "p_1")
    assert person_pseudonym(KEY, "p_1").startswith("ps_")
