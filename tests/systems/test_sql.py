"""The SQL adapter against a real database (SQLite and PostgreSQL, the `db_url` fixture):
asked groups only, bound parameters, read-only, deadlines, and every failure mapped to
"unavailable" or "not known"."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import DBAPIError

from adapters.source_runtime.adapter import NotKnown, Person, SystemUnavailable
from adapters.source_runtime.mapping import MappingError, load_mapping
from adapters.systems.sql import SqlAdapter, open_adapter, read_only_engine

BSN = "999990019"
ROWS = [
    # bsn, name, born (the system's own form), address, postcode, status code
    (BSN, "Jan de Vries", "07-03-1984", "Dorpsstraat 1, Utrecht", "3511ab", "2"),
    ("999990020", "Els Bakker", "31-02-1990", "Kerkweg 2, Zeist", "37O1 AB", "9"),
]


def slow_sql(db_url: str) -> str:
    if make_url(db_url).get_backend_name() == "postgresql":
        return "SELECT pg_sleep(30)::text AS n WHERE CAST(:bsn AS text) IS NOT NULL"
    # Counts for ever, until the adapter interrupts it at the deadline.
    return ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
            "SELECT count(*) AS n FROM c WHERE :bsn IS NOT NULL")


def mapping_text(db_url: str) -> str:
    return textwrap.dedent(f"""\
        kind: sql
        partner_type: municipality
        queries:
          person:
            sql:
              - SELECT adres, huishouden, postcode, status FROM personen WHERE bsn = :bsn
              - >-
                SELECT adres, huishouden, postcode, status FROM personen
                WHERE lower(naam) = lower(:name) AND geboren = :date_of_birth
          debts:
            sql: SELECT schuld FROM schulden WHERE bsn = :bsn ORDER BY schuld
            rows: all
          missing:
            sql: SELECT x FROM no_such_table WHERE bsn = :bsn
          slow:
            sql: "{slow_sql(db_url)}"
        fields:
          mun.brp_address: {{type: text, query: person, column: adres}}
          mun.household_composition: {{type: text, query: person, column: huishouden}}
          mun.housing_status:
            type: text
            query: person
            column: status
            convert: {{map: {{"1": rents, "2": owns}}}}
          mun.debts: {{type: text, query: debts, column: schuld, convert: {{join: "; "}}}}
          mun.income: {{type: text, query: missing, column: x}}
          mun.social_support: {{type: text, query: slow, column: n}}
        lookup: {{query: person, role: resident}}
        """)


@pytest.fixture
def partner_db(db_url: str, tmp_path: Path) -> str:
    """The partner's own database, filled through a writable connection of its own."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        Path(url.database or "").parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(db_url)
    with engine.begin() as c:
        c.execute(text("CREATE TABLE personen (bsn TEXT, naam TEXT, geboren TEXT, adres TEXT, "
                       "huishouden TEXT, postcode TEXT, status TEXT)"))
        c.execute(text("CREATE TABLE schulden (bsn TEXT, schuld TEXT)"))
        for bsn, name, born, address, postcode, status in ROWS:
            c.execute(
                text("INSERT INTO personen VALUES (:b, :n, :g, :a, :h, :p, :s)"),
                {"b": bsn, "n": name, "g": born, "a": address, "h": "2 adults",
                 "p": postcode, "s": status},
            )
        c.execute(text("INSERT INTO schulden VALUES (:b, 'energie'), (:b, 'huur')"), {"b": BSN})
    engine.dispose()
    return db_url


@pytest.fixture
async def adapter(partner_db: str, tmp_path: Path) -> AsyncIterator[SqlAdapter]:
    path = tmp_path / "mapping.yaml"
    path.write_text(mapping_text(partner_db), encoding="utf-8")
    sql = open_adapter(load_mapping(path), {"url": partner_db}, tmp_path)
    yield sql
    await sql.close()


async def test_asked_fields_come_converted_from_their_groups_only(adapter: SqlAdapter) -> None:
    # "missing" and "slow" are not asked: were they run, the answer would have unavailables.
    found = await adapter.fetch(
        Person(bsn=BSN), ["mun.brp_address", "mun.housing_status", "mun.debts"], deadline_s=5
    )
    assert found.values == {
        "mun.brp_address": "Dorpsstraat 1, Utrecht",
        "mun.housing_status": "owns",
        "mun.debts": "energie; huur",
    }
    assert found.unavailable == frozenset()
    assert await adapter.lookup(Person(bsn=BSN), deadline_s=5) == (True, "resident")


async def test_a_person_is_found_by_name_and_date_of_birth(adapter: SqlAdapter) -> None:
    person = Person(name="jan de vries", date_of_birth="07-03-1984")
    found = await adapter.fetch(person, ["mun.household_composition"], deadline_s=5)
    assert found.values == {"mun.household_composition": "2 adults"}


async def test_a_person_the_database_lacks_is_not_known(adapter: SqlAdapter) -> None:
    with pytest.raises(NotKnown):
        await adapter.fetch(Person(bsn="123456782"), ["mun.brp_address"], deadline_s=5)
    assert await adapter.lookup(Person(bsn="123456782"), deadline_s=5) == (False, "")
    # Identifiers no query finds people by: not known either, and nothing is run.
    with pytest.raises(NotKnown):
        await adapter.fetch(Person(reference="X-1"), ["mun.brp_address"], deadline_s=5)


async def test_a_malformed_value_makes_that_field_unavailable(adapter: SqlAdapter) -> None:
    found = await adapter.fetch(
        Person(bsn="999990020"), ["mun.brp_address", "mun.housing_status"], deadline_s=5,
        explain=True,
    )
    assert found.values == {"mun.brp_address": "Kerkweg 2, Zeist"}
    assert found.unavailable == {"mun.housing_status"}
    reading = {r.field: r for r in found.readings}["mun.housing_status"]
    assert (reading.raw, reading.value) == ("9", None)
    assert "map" in reading.problem


async def test_a_failing_group_makes_only_its_fields_unavailable(adapter: SqlAdapter) -> None:
    found = await adapter.fetch(
        Person(bsn=BSN), ["mun.brp_address", "mun.income"], deadline_s=5, explain=True
    )
    assert found.values == {"mun.brp_address": "Dorpsstraat 1, Utrecht"}
    assert found.unavailable == {"mun.income"}
    assert "query failed" in {r.field: r for r in found.readings}["mun.income"].problem
    # Only the failing group asked: the system answered nothing, so it is unavailable.
    with pytest.raises(SystemUnavailable):
        await adapter.fetch(Person(bsn=BSN), ["mun.income"], deadline_s=5)


async def test_the_deadline_stops_a_slow_query(adapter: SqlAdapter) -> None:
    found = await adapter.fetch(
        Person(bsn=BSN), ["mun.brp_address", "mun.social_support"], deadline_s=0.5
    )
    assert found.values == {"mun.brp_address": "Dorpsstraat 1, Utrecht"}
    assert found.unavailable == {"mun.social_support"}
    with pytest.raises(TimeoutError):
        await adapter.fetch(Person(bsn=BSN), ["mun.social_support"], deadline_s=0.3)
    # The connection is usable again afterwards.
    found = await adapter.fetch(Person(bsn=BSN), ["mun.brp_address"], deadline_s=5)
    assert found.values == {"mun.brp_address": "Dorpsstraat 1, Utrecht"}


async def test_a_database_that_is_gone_is_unavailable(partner_db: str, tmp_path: Path) -> None:
    path = tmp_path / "mapping.yaml"
    path.write_text(mapping_text(partner_db), encoding="utf-8")
    url = make_url(partner_db)
    if url.get_backend_name() == "sqlite":
        Path(url.database or "").unlink()
        gone = partner_db
    else:
        gone = url.set(port=1).render_as_string(hide_password=False)
    sql = open_adapter(load_mapping(path), {"url": gone}, tmp_path)
    try:
        with pytest.raises(SystemUnavailable):
            await sql.fetch(Person(bsn=BSN), ["mun.brp_address"], deadline_s=5)
        with pytest.raises(SystemUnavailable):
            await sql.lookup(Person(bsn=BSN), deadline_s=5)
    finally:
        await sql.close()
    if url.get_backend_name() == "sqlite":
        assert not Path(url.database or "").exists(), "read-only opening creates no file"


def test_the_connection_refuses_writes(partner_db: str, tmp_path: Path) -> None:
    engine = read_only_engine({"url": partner_db}, tmp_path)
    try:
        with engine.connect() as c, pytest.raises(DBAPIError):
            c.execute(text("DELETE FROM personen"))
    finally:
        engine.dispose()
    check = create_engine(partner_db)
    with check.connect() as c:
        assert c.execute(text("SELECT count(*) FROM personen")).scalar() == len(ROWS)
    check.dispose()


def test_check_refuses_writes_unknown_parameters_and_undeclared_groups(tmp_path: Path) -> None:
    path = tmp_path / "mapping.yaml"
    path.write_text(textwrap.dedent("""\
        kind: sql
        partner_type: municipality
        queries:
          person:
            sql: DELETE FROM personen WHERE bsn = :bsn
          other:
            sql: SELECT a FROM t WHERE x = :id
            row: all
        fields:
          mun.brp_address: {type: text, query: persoon, column: adres}
        lookup: {query: person, role: resident}
        """), encoding="utf-8")
    with pytest.raises(MappingError) as raised:
        load_mapping(path)
    lines = str(raised.value).splitlines()
    assert f"{path}:5:10: a query must be a SELECT (or WITH ... SELECT)" in lines
    assert any(line.startswith(f"{path}:7:10: parameter :id is not an identifier")
               for line in lines)
    assert f"{path}:8:5: unknown key 'row', did you mean 'rows'?" in lines
    assert (f"{path}:10:40: field 'mun.brp_address' names query 'persoon', which 'queries' "
            "does not declare") in lines
