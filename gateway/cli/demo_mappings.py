"""The mapping files the demo's partners write for the source runtime, one per kind of system.

They are what a partner writes (docs/partners/rest.md, fhir.md, sql.md, csv.md), checked by
``ketenpoort source check`` against the catalogue before the runtimes start. ``$base_url`` and
``$role`` are filled in by the demo (the loopback port its stand-in system got; the role the
demo's data gives every client of a system that states one).
"""

from __future__ import annotations

__all__ = ["MAPPINGS"]

POLICE_REST = """\
# The police region's case system: a REST/JSON API (gateway/demo_systems/police_rest.py).
kind: rest
partner_type: police
server:
  base_url: $base_url
  auth:
    bearer_token_file: secrets/api-token
person:
  search:
    - /api/v1/persons?bsn={bsn}
    - /api/v1/persons?reference={reference}
    - /api/v1/persons?name={name}&birth_date={date_of_birth}
  matches: persons
  id: id
requests:
  profile:
    url: /api/v1/persons/{id}
  incidents:                       # paged: two per page, the next page's path in "next"
    url: /api/v1/persons/{id}/incidents
    items: items
    next: next
    max_pages: 10
fields:
  police.incidents:
    type: text
    request: incidents
    path: "[*]"
    template: "{date} {summary}"
    convert: {join: "; ", max_length: 2000}
  police.antecedents_summary: {type: text, request: profile, path: antecedents.summary}
  police.weapon_flag: {type: text, request: profile, path: warnings.weapon}
  police.neighbourhood_officer:
    type: text
    request: profile
    path: neighbourhood_officer
    template: "{team}, {phone}"
lookup:
  role_path: role
"""

GGZ_FHIR = """\
# The GGZ provider's FHIR R4 server (gateway/demo_systems/fhir_server.py).
kind: fhir
partner_type: ggz
server:
  base_url: $base_url
  auth:
    bearer_token_file: secrets/fhir-token
patient:
  bsn_system: http://fhir.nl/fhir/NamingSystem/bsn
fields:
  ggz.diagnosis:
    type: text
    resource: Condition
    search: {clinical-status: active}
    path: Condition.code.text
    convert: {join: "; "}
  ggz.treatment_status:
    type: text
    resource: CarePlan
    search: {status: active}
    path: CarePlan.description
    convert: {join: "; "}
  ggz.care_involved:
    type: text
    resource: EpisodeOfCare
    search: {status: active}
    path: EpisodeOfCare.team.display
    convert: {join: "; "}
lookup:
  role: $role
"""

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

# partner id -> (adapter kind, mapping file name, its text)
MAPPINGS: dict[str, tuple[str, str, str]] = {
    "police": ("rest", "police-rest.yaml", POLICE_REST),
    "ggz": ("fhir", "ggz-fhir.yaml", GGZ_FHIR),
    "municipality": ("sql", "municipality-sql.yaml", MUNICIPALITY_SQL),
    "housing": ("csv", "housing-csv.yaml", HOUSING_CSV),
}
