"""The municipality's database and the housing corporation's CSV export, made from what
demo_data says those systems hold.

``demo_data.CASE_RECORDS`` stays the one account of what each partner's system holds about
each person: the demo's checks compute every expected value from it. For the partners whose
systems the demo runs through the source runtime, that same account is written in the
system's own shape — here the municipality's tables and the corporation's export; the police
API's records and the GGZ provider's FHIR resources in gateway.demo_systems.seeds — so that a
value reaches the gateway only if the adapter and its mapping file carry it through
unchanged. A record these shapes cannot hold (a field with no column here) is a ValueError:
the demo's data and its systems must not drift apart silently.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from adapters.source_server import SubjectRecord

__all__ = ["HOUSING_COLUMNS", "MUNICIPALITY_COLUMNS", "housing_export", "municipality_database"]


def _unmapped(record: SubjectRecord, known: Iterable[str], system: str) -> None:
    extra = sorted(set(record.fields) - set(known))
    if extra:
        raise ValueError(f"the demo's {system} has no place for {', '.join(extra)}")


# --- The municipality: a SQLite database --------------------------------------------------------

# field -> (table, column); every table but "inwoner" hangs off a resident by inwoner_id.
MUNICIPALITY_COLUMNS: dict[str, tuple[str, str]] = {
    "mun.brp_address": ("inwoner", "adres"),
    "mun.household_composition": ("inwoner", "huishouden"),
    "mun.housing_status": ("inwoner", "woonsituatie"),
    "mun.debts": ("financien", "schulden"),
    "mun.income": ("financien", "inkomen"),
    "mun.social_support": ("wmo", "voorziening"),
    "mun.restraining_order": ("maatregel", "huisverbod"),
    "mun.area_ban": ("maatregel", "gebiedsverbod"),
}
_IDENTITY = ("bsn", "naam", "geboortedatum", "postcode", "rol")


def municipality_database(records: Sequence[SubjectRecord], path: Path) -> None:
    """A resident table and one table per register, as a municipality's systems keep them
    (the source runtime opens it read-only)."""
    tables: dict[str, list[str]] = {}
    for table, column in MUNICIPALITY_COLUMNS.values():
        tables.setdefault(table, []).append(column)
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE inwoner (id INTEGER PRIMARY KEY, "
            + ", ".join(f"{c} TEXT" for c in (*_IDENTITY, *tables["inwoner"])) + ")"
        )
        for table, columns in tables.items():
            if table != "inwoner":
                db.execute(f"CREATE TABLE {table} (inwoner_id INTEGER NOT NULL "
                           "REFERENCES inwoner(id), " + ", ".join(f"{c} TEXT" for c in columns)
                           + ")")
        for number, record in enumerate(records, start=1):
            _unmapped(record, MUNICIPALITY_COLUMNS, "municipality database")
            rows: dict[str, dict[str, str]] = {}
            for field_id, value in record.fields.items():
                table, column = MUNICIPALITY_COLUMNS[field_id]
                rows.setdefault(table, {})[column] = value
            resident = {"id": number, "bsn": record.bsn or None, "naam": record.name or None,
                        "geboortedatum": record.date_of_birth or None,
                        "postcode": record.postcode or None, "rol": record.role,
                        **rows.pop("inwoner", {})}
            _insert(db, "inwoner", resident)
            for table, row in rows.items():
                _insert(db, table, {"inwoner_id": number, **row})


def _insert(db: sqlite3.Connection, table: str, row: dict[str, Any]) -> None:
    names = list(row)
    db.execute(f"INSERT INTO {table} ({', '.join(names)}) VALUES "
               f"({', '.join('?' for _ in names)})", [row[n] for n in names])


# --- The housing corporation: a CSV export ---------------------------------------------------

HOUSING_COLUMNS = {"housing.eviction_risk": "ontruimingsrisico",
                   "housing.nuisance_reports": "overlastmeldingen"}
HOUSING_IDENTITY = ("huurdernummer", "naam", "postcode", "rol")


def housing_export(records: Sequence[SubjectRecord]) -> str:
    """The tenant export (";"-separated, a header line), as the corporation's system writes
    it: the landlord has no BSN, it knows its tenants by name and postcode."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow([*HOUSING_IDENTITY, *HOUSING_COLUMNS.values()])
    for record in records:
        _unmapped(record, HOUSING_COLUMNS, "housing export")
        writer.writerow([record.reference, record.name, record.postcode, record.role,
                         *(record.fields.get(f, "") for f in HOUSING_COLUMNS)])
    return out.getvalue()
