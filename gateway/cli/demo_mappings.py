"""The mapping files the demo's partners write for the source runtime, one per kind of system.

The police and the GGZ provider use the worked examples partners are given
(deploy/source/police-rest.yaml and ggz-fhir.yaml, explained in docs/partners/rest.md and
fhir.md) as they are; their source.toml points them at the demo's loopback systems. The
municipality and the housing corporation use the demo's own (the examples in deploy/source are
written for PostgreSQL views and a coded export): they are what a partner writes from
docs/partners/sql.md and csv.md. Each is checked by ``ketenpoort source check`` against the
catalogue before the runtimes start.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["EXAMPLES", "MAPPINGS", "mapping_text"]

# The worked examples beside the installed source tree (as the shipped policies are).
def _examples() -> Path:
    # An installed package carries the examples (copied by the build); a checkout or an
    # editable install reads them from deploy/source.
    package = Path(__file__).resolve().parents[1]
    packaged = package / "_shipped_source_examples"
    return packaged if packaged.is_dir() else package.parent / "deploy" / "source"


EXAMPLES = _examples()

# Each register is a group: asked only when one of its fields is; a resident the register
# has nothing on still gives a row (LEFT JOIN), its fields not held.
_BY_PERSON = """\
      - >-
        SELECT $columns FROM inwoner i $join
        WHERE i.bsn = :bsn
      - >-
        SELECT $columns FROM inwoner i $join
        WHERE lower(i.naam) = lower(:name) AND i.geboortedatum LIKE :date_of_birth || '%'"""


def _query(columns: str, join: str = "") -> str:
    return _BY_PERSON.replace("$columns", columns).replace("$join", join)


MUNICIPALITY_SQL = f"""\
# The municipality's own database, read-only (a SQLite file here; PostgreSQL works the same).
kind: sql
partner_type: municipality
queries:
  person:
    sql:
{_query("i.rol, i.adres, i.huishouden, i.woonsituatie")}
  finances:
    sql:
{_query("f.schulden, f.inkomen", "LEFT JOIN financien f ON f.inwoner_id = i.id")}
  support:
    sql:
{_query("w.voorziening", "LEFT JOIN wmo w ON w.inwoner_id = i.id")}
  measures:
    sql:
{_query("m.huisverbod, m.gebiedsverbod", "LEFT JOIN maatregel m ON m.inwoner_id = i.id")}
fields:
  mun.brp_address: {{type: text, query: person, column: adres}}
  mun.household_composition: {{type: text, query: person, column: huishouden}}
  mun.housing_status: {{type: text, query: person, column: woonsituatie}}
  mun.debts: {{type: text, query: finances, column: schulden}}
  mun.income: {{type: text, query: finances, column: inkomen}}
  mun.social_support: {{type: text, query: support, column: voorziening}}
  mun.restraining_order: {{type: text, query: measures, column: huisverbod}}
  mun.area_ban: {{type: text, query: measures, column: gebiedsverbod}}
lookup:
  query: person
  role_column: rol
"""

HOUSING_CSV = """\
# The housing corporation's nightly tenant export, delivered to the inbox as CSV.
kind: csv
partner_type: housing_corporation
csv: {delimiter: ";", encoding: utf-8}
identify:
  reference: huurdernummer
  name: naam
  postcode: postcode
fields:
  housing.eviction_risk: {type: text, column: ontruimingsrisico}
  housing.nuisance_reports: {type: text, column: overlastmeldingen, convert: {max_length: 400}}
lookup:
  role_column: rol
"""

# partner id -> (adapter kind, mapping file name)
MAPPINGS: dict[str, tuple[str, str]] = {
    "police": ("rest", "police-rest.yaml"),
    "ggz": ("fhir", "ggz-fhir.yaml"),
    "municipality": ("sql", "municipality-sql.yaml"),
    "housing": ("csv", "housing-csv.yaml"),
}
_OWN = {"municipality": MUNICIPALITY_SQL, "housing": HOUSING_CSV}


def mapping_text(partner_id: str) -> str:
    """The mapping file the partner writes."""
    own = _OWN.get(partner_id)
    if own is not None:
        return own
    return (EXAMPLES / MAPPINGS[partner_id][1]).read_text(encoding="utf-8")
