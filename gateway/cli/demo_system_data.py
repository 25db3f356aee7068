"""The demo's partner systems' own data, made from what demo_data says each system holds.

``demo_data.CASE_RECORDS`` stays the one account of what each partner's system holds about
each person: the demo's checks compute every expected value from it. For the partners whose
systems the demo runs through the source runtime, this module writes that same account in
the system's own shape — the police's REST API records, the GGZ provider's FHIR R4
resources, the municipality's database tables, the housing corporation's CSV export — so that
a value reaches the gateway only if the adapter and its mapping file (gateway.cli.demo_mappings)
carry it through unchanged. A record these shapes cannot hold (a field with no column here, a
police incident without its date) is a ValueError: the demo's data and its systems must not
drift apart silently.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from adapters.source_server import SubjectRecord
from gateway.demo_systems.fhir_server import BSN_SYSTEM
from gateway.demo_systems.police_rest import PoliceRecord

__all__ = [
    "HOUSING_COLUMNS",
    "MUNICIPALITY_COLUMNS",
    "ggz_resources",
    "housing_export",
    "municipality_database",
    "only_role",
    "police_records",
]

# "2026-11-14 assault" or "2026 fourteen shop thefts": a date (as far as it is known), a
# space, what happened.
_INCIDENT = re.compile(r"^(\d{4}(?:-\d{2}){0,2}) (\S.*)$")


def only_role(records: Sequence[SubjectRecord], partner_type: str) -> str:
    """The role every record of a system has, for a mapping that states one fixed role."""
    roles = {r.role for r in records}
    if len(roles) != 1:
        raise ValueError(f"the {partner_type} records have several roles ({sorted(roles)}); "
                         "its mapping states one")
    return roles.pop()


def _unmapped(record: SubjectRecord, known: Iterable[str], system: str) -> None:
    extra = sorted(set(record.fields) - set(known))
    if extra:
        raise ValueError(f"the demo's {system} has no place for {', '.join(extra)}")


# --- The police: a REST/JSON API (gateway.demo_systems.police_rest) ---------------------------

POLICE_FIELDS = ("police.incidents", "police.antecedents_summary", "police.weapon_flag",
                 "police.neighbourhood_officer")


def police_records(records: Sequence[SubjectRecord]) -> list[PoliceRecord]:
    """Incidents ("date summary; ...") become the API's (date, summary) list, the
    neighbourhood officer ("team, phone") its team and phone; the mapping's templates put
    them back together."""
    out = []
    for number, record in enumerate(records, start=1):
        _unmapped(record, POLICE_FIELDS, "police API")
        fields = record.fields
        incidents = [_incident(item) for item in _items(fields.get("police.incidents"))]
        officer = None
        if "police.neighbourhood_officer" in fields:
            team, _, phone = fields["police.neighbourhood_officer"].rpartition(", ")
            if not team:
                raise ValueError("the neighbourhood officer is written 'team, phone'")
            officer = (team, phone)
        out.append(PoliceRecord(
            id=f"P{number:05d}",
            role=record.role,
            name=record.name,
            birth_date=record.date_of_birth,
            bsn=record.bsn or None,
            reference=record.reference or None,
            incidents=tuple(incidents),
            antecedents=fields.get("police.antecedents_summary"),
            weapon=fields.get("police.weapon_flag"),
            officer=officer,
        ))
    return out


def _incident(item: str) -> tuple[str, str]:
    match = _INCIDENT.match(item)
    if match is None:
        raise ValueError(f"a police incident must start with its date: {item!r}")
    return match.group(1), match.group(2)


# --- GGZ: a FHIR R4 server (gateway.demo_systems.fhir_server) ----------------------------------

GGZ_FIELDS = ("ggz.diagnosis", "ggz.treatment_status", "ggz.care_involved")


def ggz_resources(records: Sequence[SubjectRecord]) -> list[dict[str, Any]]:
    """Per client a Patient (BSN identifier, name, birth date as far as known), an active
    Condition per diagnosis, an active CarePlan describing the treatment and an active
    EpisodeOfCare naming the care team; the FHIR server validates each as R4."""
    out: list[dict[str, Any]] = []
    for number, record in enumerate(records, start=1):
        _unmapped(record, GGZ_FIELDS, "FHIR server")
        pid = f"ggz-{number}"
        subject = {"reference": f"Patient/{pid}"}
        patient: dict[str, Any] = {"resourceType": "Patient", "id": pid}
        if record.bsn:
            patient["identifier"] = [{"system": BSN_SYSTEM, "value": record.bsn}]
        if record.name:
            given, _, family = record.name.partition(" ")
            patient["name"] = [{"use": "official", "text": record.name,
                                "given": [given], **({"family": family} if family else {})}]
        if record.date_of_birth:
            patient["birthDate"] = record.date_of_birth
        out.append(patient)
        fields = record.fields
        for index, diagnosis in enumerate(_items(fields.get("ggz.diagnosis"))):
            out.append({
                "resourceType": "Condition", "id": f"{pid}-dx{index}",
                "clinicalStatus": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active"}]},
                "code": {"text": diagnosis}, "subject": subject,
            })
        if "ggz.treatment_status" in fields:
            out.append({
                "resourceType": "CarePlan", "id": f"{pid}-plan", "status": "active",
                "intent": "plan", "description": fields["ggz.treatment_status"],
                "subject": subject,
            })
        if "ggz.care_involved" in fields:
            out.append({
                "resourceType": "EpisodeOfCare", "id": f"{pid}-eoc", "status": "active",
                "patient": subject, "team": [{"display": fields["ggz.care_involved"]}],
            })
    return out


def _items(value: str | None) -> list[str]:
    return value.split("; ") if value else []


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
