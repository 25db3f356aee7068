"""The demo's partner systems get their data from demo_data's records, in each system's own
shape, and a record a system cannot hold is an error rather than a silently different demo."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from adapters.source_server import SubjectRecord
from gateway.cli.demo_data import CASE_RECORDS
from gateway.cli.demo_system_data import (
    ggz_resources,
    housing_export,
    municipality_database,
    only_role,
    police_records,
)
from gateway.demo_systems.fhir_server import FhirServer


def test_police_incidents_and_officer_are_split_as_the_api_keeps_them() -> None:
    record = SubjectRecord(bsn="111222333", role="suspect", fields={
        "police.incidents": "2026-10-02 call-out; 2026 two thefts",
        "police.neighbourhood_officer": "Team Zuid, Oost, 0900-8844",
    })
    (police,) = police_records([record])
    assert police.incidents == (("2026-10-02", "call-out"), ("2026", "two thefts"))
    assert police.officer == ("Team Zuid, Oost", "0900-8844")
    assert police.bsn == "111222333" and police.weapon is None


@pytest.mark.parametrize("fields", [
    {"police.incidents": "call-out on a Tuesday"},  # no date first
    {"police.neighbourhood_officer": "Team Zuid"},  # no phone
    {"police.unheard_of": "x"},  # no place for it in the API
])
def test_a_police_record_the_api_cannot_hold_is_refused(fields: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        police_records([SubjectRecord(bsn="111222333", role="suspect", fields=fields)])


def test_every_demo_record_fits_its_system(tmp_path: Path) -> None:
    police_records(CASE_RECORDS["police"])
    FhirServer().add(*ggz_resources(CASE_RECORDS["ggz"]))  # each validated as R4
    municipality_database(CASE_RECORDS["municipality"], tmp_path / "gemeente.db")
    housing_export(CASE_RECORDS["housing_corporation"])
    assert only_role(CASE_RECORDS["ggz"], "ggz") == "client"


def test_a_fixed_role_needs_one_role() -> None:
    records = [SubjectRecord(bsn="1", role="client", fields={}),
               SubjectRecord(bsn="2", role="patient", fields={})]
    with pytest.raises(ValueError, match="several roles"):
        only_role(records, "ggz")


def test_the_municipality_database_has_a_row_per_register(tmp_path: Path) -> None:
    database = tmp_path / "gemeente.db"
    municipality_database([
        SubjectRecord(bsn="111222333", role="resident", fields={
            "mun.brp_address": "Lindenstraat 12", "mun.debts": "Rent arrears"}),
        SubjectRecord(bsn="", name="Marco Visser", date_of_birth="1979-08-30", role="resident",
                      fields={}),
    ], database)
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT bsn, naam, rol, adres FROM inwoner ORDER BY id").fetchall() \
            == [("111222333", None, "resident", "Lindenstraat 12"),
                (None, "Marco Visser", "resident", None)]
        assert db.execute("SELECT inwoner_id, schulden, inkomen FROM financien").fetchall() \
            == [(1, "Rent arrears", None)]
    with pytest.raises(ValueError, match="mun.unheard_of"):
        municipality_database([SubjectRecord(bsn="1", role="r", fields={
            "mun.unheard_of": "x"})], tmp_path / "other.db")


def test_the_housing_export_has_no_bsn() -> None:
    text = housing_export([SubjectRecord(bsn="111222333", name="Jan de Vries",
                                         postcode="7511 AB", role="tenant",
                                         fields={"housing.eviction_risk": "High; pending"})])
    assert text.splitlines() == [
        "huurdernummer;naam;postcode;rol;ontruimingsrisico;overlastmeldingen",
        ';Jan de Vries;7511 AB;tenant;"High; pending";',
    ]
    assert "111222333" not in text
