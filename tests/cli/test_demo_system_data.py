"""The demo's municipality database and housing export get their data from demo_data's
records, and a record they cannot hold is an error rather than a silently different demo (the
police's and GGZ's: tests/source_runtime/test_demo_system_seeds.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from adapters.source_server import SubjectRecord
from gateway.cli.demo_data import CASE_RECORDS
from gateway.cli.demo_system_data import housing_export, municipality_database


def test_every_demo_record_fits_its_system(tmp_path: Path) -> None:
    municipality_database(CASE_RECORDS["municipality"], tmp_path / "gemeente.db")
    housing_export(CASE_RECORDS["housing_corporation"])


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
