"""The partner systems of the source adapter benchmark, and how each is called directly.

Three system kinds, each a partner's own system with the demo subject's record among others:

- ``fhir``: the GGZ provider's FHIR R4 server (gateway/demo_systems/fhir_server.py), mapped by
  deploy/source/ggz-fhir.yaml, partner ``ggz``;
- ``sql_sqlite``: a municipality's SQLite database file, partner ``municipality``;
- ``sql_postgres``: the same tables in a fresh PostgreSQL schema (``--db postgres``).

"Directly" is what the partner's own client code would do for the same person and fields,
without the runtime: for FHIR the HTTP searches the adapter makes (the Patient by BSN, then the
searches of the asked fields' resource types, concurrently), each answer read as JSON, with
httpx; for SQL the mapping's parameterised queries on one pooled SQLAlchemy connection, in a
worker thread as the adapter runs them.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import sqlite3
import textwrap
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy

from adapters.systems.fhir import FhirPlan
from gateway.cli.demo_data import SOURCE_RECORDS, SUBJECT

ROOT = Path(__file__).resolve().parents[1]
FHIR_MAPPING = ROOT / "deploy" / "source" / "ggz-fhir.yaml"
FHIR_JSON = "application/fhir+json"
FHIR_TOKEN = "bench-token"  # the bearer token the FHIR server wants
PARTNER = {"fhir": "ggz", "sql_sqlite": "municipality", "sql_postgres": "municipality"}

# The municipality's tables, as a partner's view might give them: one row per person, one per
# debt. The housing status is a code the mapping turns into the catalogue's wording.
HOUSING_CODE = "HUUR_SOC_UITZ"
SQL_MAPPING = """\
kind: sql
partner_type: municipality
queries:
  person: {sql: "SELECT adres, huishouden, woonsituatie FROM personen WHERE bsn = :bsn"}
  debts:
    sql: SELECT omschrijving FROM schulden WHERE bsn = :bsn ORDER BY volgorde
    rows: all
fields:
  mun.brp_address: {type: text, query: person, column: adres}
  mun.household_composition: {type: text, query: person, column: huishouden}
  mun.housing_status:
    type: text
    query: person
    column: woonsituatie
    convert: {map: {HOUSING_CODE: HOUSING_STATUS}}
  mun.debts: {type: text, query: debts, column: omschrijving, convert: {join: "; "}}
lookup: {query: person, role: resident}
""".replace("HOUSING_CODE", HOUSING_CODE).replace(
    "HOUSING_STATUS", json.dumps(SOURCE_RECORDS["municipality"].fields["mun.housing_status"]))
SQL_FIELDS = ("mun.brp_address", "mun.household_composition", "mun.housing_status", "mun.debts")
# The queries the mapping holds, as the partner's own code would send them.
SQL_QUERIES = (
    "SELECT adres, huishouden, woonsituatie FROM personen WHERE bsn = :bsn",
    "SELECT omschrijving FROM schulden WHERE bsn = :bsn ORDER BY volgorde",
)
FHIR_FIELDS = tuple(SOURCE_RECORDS["ggz"].fields)

Call = Callable[[], Awaitable[object]]


def expected_values(kind: str) -> dict[str, str]:
    """What the system holds on the subject, in catalogue form."""
    fields = SOURCE_RECORDS[PARTNER[kind]].fields
    return {f: fields[f] for f in (FHIR_FIELDS if kind == "fhir" else SQL_FIELDS)}


def other_bsn(i: int) -> str:
    return f"7{i:08d}"


def _rows(persons: int) -> tuple[list[tuple[str, str, str, str]], list[tuple[str, int, str]]]:
    fields = SOURCE_RECORDS["municipality"].fields
    people = [(SUBJECT.bsn, fields["mun.brp_address"], fields["mun.household_composition"],
               HOUSING_CODE)]
    people += [(other_bsn(i), f"Lindenstraat {i}, 7511 AB Enschede", "Two adults", "KOOP")
               for i in range(persons)]
    debts = [(SUBJECT.bsn, n, text)
             for n, text in enumerate(fields["mun.debts"].split("; "))]
    debts += [(other_bsn(i), n, text) for i in range(persons)
              for n, text in enumerate(("Energy arrears", "Rent arrears"))]
    return people, debts


def make_sqlite(path: Path, persons: int) -> None:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE personen (bsn TEXT PRIMARY KEY, adres TEXT, huishouden TEXT, "
                   "woonsituatie TEXT)")
        db.execute("CREATE TABLE schulden (bsn TEXT, volgorde INTEGER, omschrijving TEXT)")
        db.execute("CREATE INDEX schulden_bsn ON schulden (bsn)")
        people, debts = _rows(persons)
        db.executemany("INSERT INTO personen VALUES (?, ?, ?, ?)", people)
        db.executemany("INSERT INTO schulden VALUES (?, ?, ?)", debts)
    sqlite3.connect(path).close()


@contextmanager
def postgres_system(pg_url: str, persons: int) -> Iterator[str]:
    """The municipality's tables in a fresh schema; yields a SQLAlchemy URL whose connections
    find them (search_path), and drops the schema afterwards."""
    from sqlalchemy.engine import make_url

    parsed = make_url(pg_url)
    if parsed.get_backend_name() != "postgresql":
        raise SystemExit("--pg-url must be a postgresql+psycopg:// URL")
    schema = "ketenpoort_srcbench_" + secrets.token_hex(4)
    admin = sqlalchemy.create_engine(parsed)
    try:
        with admin.begin() as db:
            db.exec_driver_sql(f"CREATE SCHEMA {schema}")
            db.exec_driver_sql(f"CREATE TABLE {schema}.personen (bsn TEXT PRIMARY KEY, "
                               "adres TEXT, huishouden TEXT, woonsituatie TEXT)")
            db.exec_driver_sql(f"CREATE TABLE {schema}.schulden (bsn TEXT, volgorde INTEGER, "
                               "omschrijving TEXT)")
            db.exec_driver_sql(f"CREATE INDEX ON {schema}.schulden (bsn)")
            people, debts = _rows(persons)
            db.execute(sqlalchemy.text(f"INSERT INTO {schema}.personen VALUES "
                                       "(:b, :a, :h, :w)"),
                       [{"b": b, "a": a, "h": h, "w": w} for b, a, h, w in people])
            db.execute(sqlalchemy.text(f"INSERT INTO {schema}.schulden VALUES (:b, :n, :o)"),
                       [{"b": b, "n": n, "o": o} for b, n, o in debts])
            db.exec_driver_sql(f"ANALYZE {schema}.personen")
            db.exec_driver_sql(f"ANALYZE {schema}.schulden")
        options = parsed.query.get("options", "")
        yield parsed.update_query_dict(
            {"options": f"{options} -csearch_path={schema}".strip()}
        ).render_as_string(hide_password=False)
    finally:
        with admin.begin() as db:
            db.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()


@dataclass(frozen=True)
class SourceFiles:
    """A source runtime's files for one system kind: source.toml, its mapping and what the
    [system] table names."""

    kind: str
    directory: Path
    config: Path
    mapping: Path
    system: Mapping[str, Any]


def write_source_files(
    kind: str, directory: Path, keys: Path, catalogue: Path, system_url: str
) -> SourceFiles:
    """``source.toml`` as a partner writes it, for ``ketenpoort source serve``.
    ``system_url``: the FHIR base URL or the database's SQLAlchemy URL."""
    directory.mkdir(parents=True, exist_ok=True)
    system: dict[str, Any]
    if kind == "fhir":
        mapping = directory / "ggz-fhir.yaml"
        shutil.copy(FHIR_MAPPING, mapping)
        (directory / "token").write_text(FHIR_TOKEN, encoding="utf-8")
        system = {"base_url": system_url, "auth": {"bearer_token_file": "token"}, "tls": {}}
        system_toml = (f"base_url = {json.dumps(system_url)}\n"
                       'auth = {bearer_token_file = "token"}\n'
                       "tls = {}\n")
    else:
        mapping = directory / "municipality-sql.yaml"
        mapping.write_text(SQL_MAPPING, encoding="utf-8")
        system = {"url": system_url}
        system_toml = f"url = {json.dumps(system_url)}\n"
    config = directory / "source.toml"
    config.write_text(textwrap.dedent(f"""\
        partner_id = "{PARTNER[kind]}"
        listen = "127.0.0.1:0"
        catalogue = {json.dumps(str(catalogue))}
        mapping = "{mapping.name}"
        access_log = "access.jsonl"

        [keys]
        dir = {json.dumps(str(keys))}

        [system]
        """) + system_toml, encoding="utf-8")
    return SourceFiles(kind, directory, config, mapping, system)


def fhir_direct(
    base_url: str, plan: FhirPlan, fields: tuple[str, ...], bsn: str
) -> tuple[Call, httpx.AsyncClient]:
    """The searches the FHIR adapter makes for ``fields`` (from its plan: the Patient by
    BSN, then one search per asked resource type with the mapping's search parameters and
    page size, concurrently), sent by hand with httpx and read as JSON."""
    client = httpx.AsyncClient(
        base_url=base_url.rstrip("/") + "/", trust_env=False,
        headers={"Authorization": f"Bearer {FHIR_TOKEN}", "Accept": FHIR_JSON,
                 "Prefer": "handling=strict"},
    )
    groups = sorted({plan.fields[f].group for f in fields if plan.fields[f].resource != "Patient"})

    async def get(resource: str, params: Mapping[str, str]) -> Any:
        response = await client.get(resource, params=params)
        response.raise_for_status()
        return response.json()

    async def call() -> None:
        bundle = await get("Patient", {"identifier": f"{plan.bsn_system}|{bsn}"})
        patient = bundle["entry"][0]["resource"]["id"]
        answers = await asyncio.gather(*(
            get(resource, {**dict(search), "patient": patient, "_count": str(plan.page_size)})
            for resource, search in groups
        ))
        if not all(answer.get("entry") for answer in answers):
            raise RuntimeError("a search found nothing for the subject")

    return call, client


def sql_direct(url: str, bsn: str) -> tuple[Call, sqlalchemy.Engine]:
    """The mapping's queries for the subject on one pooled connection, in a worker thread."""
    engine = sqlalchemy.create_engine(url, pool_size=5)
    person, debts = (sqlalchemy.text(q) for q in SQL_QUERIES)

    def run() -> None:
        with engine.connect() as connection:
            connection.execute(person, {"bsn": bsn}).one()
            if not connection.execute(debts, {"bsn": bsn}).all():
                raise RuntimeError("no debts for the subject")

    async def call() -> None:
        # The blocking driver off the event loop, as the adapter runs it.
        await asyncio.to_thread(run)

    return call, engine
