"""The CSV drop adapter on real files: a good delivery, bad rows reported and kept aside, a
half-written file left alone, an encrypted store replaced whole, a person not found."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.source_runtime.adapter import NotKnown, Person, SystemUnavailable
from adapters.source_runtime.mapping import load_mapping
from adapters.systems.csv_drop import CsvDropAdapter, open_adapter, write_key_file

MAPPING = """\
kind: csv
partner_type: housing_corporation
csv: {delimiter: ";", date_of_birth_format: "%d-%m-%Y"}
identify: {name: naam, date_of_birth: geboren, postcode: postcode, reference: huurder}
fields:
  housing.eviction_risk:
    type: text
    column: risico
    convert: {map: {H: high, L: low}}
  housing.nuisance_reports: {type: text, column: overlast, convert: {max_length: 40}}
lookup: {role: tenant}
"""
HEADER = "huurder;naam;geboren;postcode;risico;overlast\n"
GOOD = HEADER + (
    "H-1;Jan de Vries;07-03-1984;7511 AB;H;Two reports in 2026\n"
    "H-2;Els Bakker;01-12-1990;3701 AB;L;\n"
)


@pytest.fixture
async def drop(tmp_path: Path) -> AsyncIterator[CsvDropAdapter]:
    (tmp_path / "inbox").mkdir()
    write_key_file(tmp_path / "store.key")
    (tmp_path / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
    adapter = open_adapter(
        load_mapping(tmp_path / "mapping.yaml"),
        {"inbox": "inbox", "store": "store.bin", "key_file": "store.key", "poll_s": 3600},
        tmp_path,
    )
    yield adapter
    await adapter.close()


def deliver(drop: CsvDropAdapter, name: str, text: str) -> None:
    (drop.inbox / name).write_text(text, encoding="utf-8")


async def test_a_good_file_is_imported_into_the_encrypted_store(
    drop: CsvDropAdapter, tmp_path: Path
) -> None:
    with pytest.raises(SystemUnavailable):  # nothing delivered yet
        await drop.fetch(Person(reference="H-1"), ["housing.eviction_risk"], deadline_s=1)
    deliver(drop, "export-1.csv", GOOD)
    (report,) = drop.import_inbox()
    assert (report.outcome, report.rows_imported, report.rows_rejected) == ("imported", 2, 0)
    found = await drop.fetch(
        Person(name="Jan de Vries", date_of_birth="1984-03-07"),
        ["housing.eviction_risk", "housing.nuisance_reports"], deadline_s=1,
    )
    assert found.values == {"housing.eviction_risk": "high",
                            "housing.nuisance_reports": "Two reports in 2026"}
    assert await drop.lookup(Person(reference="H-2"), deadline_s=1) == (True, "tenant")
    # The store is encrypted: nothing of the rows is readable in it.
    stored = (tmp_path / "store.bin").read_bytes()
    assert b"Jan de Vries" not in stored and b"7511" not in stored
    assert not (drop.inbox / "export-1.csv").exists()
    assert (drop.inbox / "processed" / "export-1.csv").exists()
    # A restarted runtime reads the store it left.
    again = CsvDropAdapter(load_mapping(tmp_path / "mapping.yaml"), drop.inbox, drop.store, 3600)
    assert await again.lookup(Person(reference="H-1"), deadline_s=1) == (True, "tenant")


async def test_bad_rows_are_reported_and_kept_aside(drop: CsvDropAdapter) -> None:
    deliver(drop, "export-1.csv", GOOD)
    drop.import_inbox()
    deliver(drop, "export-2.csv", HEADER + (
        "H-1;Jan de Vries;07-03-1984;7511 AB;L;\n"          # line 2: fine
        "H-3;Piet Jansen;31-02-1970;1234 AB;L;\n"           # line 3: no such date
        "H-4;Ans Smit;01-01-1960;1234 AB;X;\n"              # line 4: a code the map lacks
        "H-5;Kees Bos;01-01-1961\n"                         # line 5: too few cells
        "H-1;Jan de Vries;07-03-1984;7511 AB;H;\n"          # line 6: the same reference again
        ";;;;L;\n"                                          # line 7: no identifier
    ))
    (report,) = drop.import_inbox()
    assert (report.rows_imported, report.rows_rejected) == (1, 5)
    assert [r["line"] for r in report.rejected] == [3, 4, 5, 6, 7]
    reasons = {r["line"]: r["reason"] for r in report.rejected}
    assert "geboren" in reasons[3] and "risico" in reasons[4] and "cells" in reasons[5]
    assert "line 2" in reasons[6] and "no identifier" in reasons[7]
    reports = drop.inbox / "reports"
    rejects = (reports / "export-2.csv.rejects.csv").read_text().splitlines()
    assert rejects[0] == HEADER.strip() and len(rejects) == 6
    assert json.loads((reports / "export-2.csv.report.json").read_text())["rows_rejected"] == 5
    # The new export replaced the old one whole: H-2 is no longer there, H-1 is updated.
    with pytest.raises(NotKnown):
        await drop.fetch(Person(reference="H-2"), ["housing.eviction_risk"], deadline_s=1)
    found = await drop.fetch(Person(reference="H-1"), ["housing.eviction_risk"], deadline_s=1)
    assert found.values == {"housing.eviction_risk": "low"}


async def test_a_half_written_file_is_left_for_later(drop: CsvDropAdapter) -> None:
    deliver(drop, "export-1.csv", GOOD)
    drop.import_inbox()
    cut = GOOD.replace("Jan de Vries", "Jan de Vries-Smit")[:-12]  # no line end yet
    deliver(drop, "export-2.csv", cut)
    deliver(drop, "export-3.csv.part", GOOD)
    assert drop.import_inbox() == []
    assert (drop.inbox / "export-2.csv").exists() and (drop.inbox / "export-3.csv.part").exists()
    found = await drop.fetch(Person(reference="H-2"), ["housing.eviction_risk"], deadline_s=1)
    assert found.values == {"housing.eviction_risk": "low"}, "the old store is still in force"
    # Once complete, it is imported.
    deliver(drop, "export-2.csv", GOOD.replace("Els Bakker", "Els Bakker-de Wit"))
    (report,) = drop.import_inbox()
    assert report.rows_imported == 2
    assert await drop.lookup(Person(name="Els Bakker-de Wit", postcode="3701AB"),
                             deadline_s=1) == (True, "tenant")


async def test_a_file_without_a_needed_column_is_refused_whole(drop: CsvDropAdapter) -> None:
    deliver(drop, "export-1.csv", GOOD)
    drop.import_inbox()
    deliver(drop, "export-2.csv", "huurder;naam\nH-9;Nieuw\n")
    (report,) = drop.import_inbox()
    assert report.outcome == "refused" and "risico" in report.reason
    assert (drop.inbox / "refused" / "export-2.csv").exists()
    assert await drop.lookup(Person(reference="H-1"), deadline_s=1) == (True, "tenant")


async def test_a_person_not_in_the_export_is_not_known(drop: CsvDropAdapter) -> None:
    deliver(drop, "export-1.csv", GOOD)
    drop.import_inbox()
    with pytest.raises(NotKnown):
        await drop.fetch(Person(reference="H-404"), ["housing.eviction_risk"], deadline_s=1)
    with pytest.raises(NotKnown):
        await drop.fetch(Person(name="Jan de Vries", date_of_birth="1999"),
                         ["housing.eviction_risk"], deadline_s=1)
    assert await drop.lookup(Person(name="Nobody", postcode="1234 AB"), deadline_s=1) == (
        False, "")


async def test_a_store_under_another_key_is_unavailable(
    drop: CsvDropAdapter, tmp_path: Path
) -> None:
    deliver(drop, "export-1.csv", GOOD)
    drop.import_inbox()
    write_key_file(tmp_path / "other.key")
    other = open_adapter(
        load_mapping(tmp_path / "mapping.yaml"),
        {"inbox": "inbox", "store": "store.bin", "key_file": "other.key"}, tmp_path,
    )
    try:
        with pytest.raises(SystemUnavailable):
            await other.fetch(Person(reference="H-1"), ["housing.eviction_risk"], deadline_s=1)
    finally:
        await other.close()
