"""The common mapping reader: marks, unknown keys, catalogue checks, conversions."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from adapters.source_runtime.catalogue import CatalogueError, load_catalogue, parse_catalogue
from adapters.source_runtime.conversions import ConversionError, conversion_from
from adapters.source_runtime.mapping import KindSchema, MappingError, load_mapping

CATALOGUE = {
    "format": "ketenpoort-catalogue/1",
    "fields": [
        {"id": "address", "category": "contact", "kind": "text", "source": "gemeente",
         "about": "person", "description": "Address"},
        {"id": "date_of_birth", "category": "identity", "kind": "date", "source": "gemeente",
         "about": "person", "description": "Born"},
        {"id": "police_record", "category": "justice", "kind": "text", "source": "politie",
         "about": "person", "description": "Record"},
    ],
    "partner_types": [
        {"id": "gemeente", "identifiers": ["bsn", "name", "date_of_birth"]},
        {"id": "politie", "identifiers": ["bsn"]},
    ],
}

SCHEMA = KindSchema("sql", top_keys=("queries",), field_keys=("query", "column"),
                    required_field_keys=("query", "column"), lookup_keys=("query", "role"))


def _schema(kind: str) -> KindSchema:
    return SCHEMA


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_mapping_loads_with_its_conversions(tmp_path: Path) -> None:
    path = _write(tmp_path, """\
kind: sql
partner_type: gemeente
queries: {basis: {sql: "SELECT 1"}}
fields:
  date_of_birth:
    type: date
    query: basis
    column: geboren
    convert: {format: "%d-%m-%Y"}
lookup: {query: basis, role: inwoner}
""")
    mapping = load_mapping(path, parse_catalogue(CATALOGUE), schema=_schema)
    assert mapping.kind == "sql" and mapping.partner_type == "gemeente"
    born = mapping.fields["date_of_birth"]
    assert born.source == {"query": "basis", "column": "geboren"}
    assert born.conversion.apply("07-03-1984") == "1984-03-07"
    assert str(born.mark) == f"{path}:5:3"
    assert mapping.lookup == {"query": "basis", "role": "inwoner"}
    assert mapping.top == {"queries": {"basis": {"sql": "SELECT 1"}}}


def test_every_problem_is_reported_with_its_place(tmp_path: Path) -> None:
    path = _write(tmp_path, """\
kind: sql
partner_type: gemeente
fields:
  adress:
    type: text
    query: basis
    column: adres
  date_of_birth:
    type: text
    query: basis
    colum: geboren
  police_record:
    type: text
    query: basis
    column: x
""")
    with pytest.raises(MappingError) as raised:
        load_mapping(path, parse_catalogue(CATALOGUE), schema=_schema)
    lines = str(raised.value).splitlines()
    assert f"{path}:4:3: unknown field 'adress', did you mean 'address'?" in lines
    assert (f"{path}:9:11: type 'text' is not the catalogue's kind of 'date_of_birth': 'date'"
            in lines)
    assert f"{path}:11:5: unknown key 'colum', did you mean 'column'?" in lines
    assert (f"{path}:12:3: field 'police_record' is held by partner type 'politie', "
            "not 'gemeente'") in lines


def test_a_yaml_error_has_its_place(tmp_path: Path) -> None:
    path = _write(tmp_path, "kind: sql\nfields: [a\n")
    with pytest.raises(MappingError) as raised:
        load_mapping(path, schema=_schema)
    assert str(raised.value).startswith(f"{path}:3:1: not valid YAML")


def test_conversions_refuse_rather_than_guess() -> None:
    assert conversion_from("postcode", None).apply(" 1234ab") == "1234 AB"
    assert conversion_from("name", None).apply("  Jan   de  Vries ") == "Jan de Vries"
    assert conversion_from("date", None).apply(dt.date(1984, 3, 7)) == "1984-03-07"
    assert conversion_from("text", {"join": ", "}).apply(["a", None, "b"]) == "a, b"
    coded = conversion_from("text", {"map": {"1": "actief", "2": "gesloten"}})
    assert coded.apply(1) == "actief"
    assert conversion_from("text", None).apply(None) is None
    for kind, spec, raw in [
        ("postcode", None, "12345"),
        ("date", None, "07-03-1984"),
        ("date", {"format": "%d-%m-%Y"}, "1984-03-07"),
        ("text", {"max_length": 3}, "abcd"),
        ("text", None, ["a", "b"]),
        ("identifier", None, "12 34"),
    ]:
        with pytest.raises(ConversionError):
            conversion_from(kind, spec).apply(raw)
    with pytest.raises(ConversionError) as raised:
        coded.apply("3")
    assert "3" not in str(raised.value)


def test_the_catalogue_is_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(CATALOGUE), encoding="utf-8")
    catalogue = load_catalogue(path)
    assert set(catalogue.fields_of("gemeente")) == {"address", "date_of_birth"}
    assert catalogue.partner_types["politie"].identifiers == ("bsn",)
    path.write_text(json.dumps({**CATALOGUE, "format": "other"}), encoding="utf-8")
    with pytest.raises(CatalogueError, match="ketenpoort policy catalogue"):
        load_catalogue(path)
