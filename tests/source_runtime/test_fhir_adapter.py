"""The FHIR adapter against the loopback FHIR R4 server (real HTTP on 127.0.0.1, resources
validated with fhir.resources), configured by the example mapping deploy/source/ggz-fhir.yaml."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.source_runtime.adapter import NotKnown, Person, SystemUnavailable
from adapters.source_runtime.mapping import MappingError, load_mapping
from adapters.systems.fhir import FhirAdapter, open_adapter
from gateway.demo_systems.fhir_server import BSN_SYSTEM, FhirServer, ggz_client
from tests.source_runtime.http_systems import EXAMPLES, example_mapping, real_catalogue

TOKEN = "fhir-token-for-the-runtime"
FIELDS = ("ggz.diagnosis", "ggz.treatment_status", "ggz.care_involved")
CLIENT_NUMBERS = "https://ggz-twente.example.nl/fhir/NamingSystem/client-number"


def _jan(**changes: Any) -> list[dict[str, Any]]:
    spec: dict[str, Any] = dict(
        patient_id="p1", bsn="111222333", given=["Jan"], family="de Vries",
        birth_date="1985-03-04", diagnosis="Intermittent explosive disorder",
        episode_status="active", care_team="FACT team Enschede, 053-480 1234",
        care_plan="Outpatient treatment plan", last_contact="2026-11-20T10:00:00+01:00",
        flag="Aggression risk",
        reference="C-5521", reference_system=CLIENT_NUMBERS,
    )
    spec.update(changes)
    return ggz_client(**spec)


@pytest.fixture
def fhir() -> Iterator[FhirServer]:
    server = FhirServer(token=TOKEN)
    server.add(*_jan())
    with server:
        yield server


def _open(tmp_path: Path, fhir: FhirServer, name: str = "ggz-fhir.yaml",
          token: str = TOKEN) -> FhirAdapter:
    mapping = example_mapping(tmp_path, name, {"secrets/fhir-token": token})
    return open_adapter(mapping, {"base_url": fhir.base_url, "tls": {}}, tmp_path)


@pytest.fixture
async def adapter(tmp_path: Path, fhir: FhirServer) -> AsyncIterator[FhirAdapter]:
    ggz = _open(tmp_path, fhir)
    yield ggz
    await ggz.close()


async def test_the_example_mapping_reads_the_ggz_fields_by_bsn(
    adapter: FhirAdapter, fhir: FhirServer
) -> None:
    found = await adapter.fetch(Person(bsn="111222333"), FIELDS, deadline_s=5)
    assert found.unavailable == frozenset()
    assert found.values == {
        "ggz.diagnosis": "Intermittent explosive disorder",
        "ggz.treatment_status": "in treatment",
        "ggz.care_involved": "FACT team Enschede, 053-480 1234",
    }
    # One search per resource type the fields need, after the Patient's.
    assert dict(fhir.counts) == {"Patient": 1, "Condition": 1, "EpisodeOfCare": 1,
                                 "CarePlan": 1}


async def test_only_the_resources_the_asked_fields_need_are_searched(
    adapter: FhirAdapter, fhir: FhirServer
) -> None:
    found = await adapter.fetch(Person(bsn="111222333"), ["ggz.diagnosis"], deadline_s=5)
    assert found.values == {"ggz.diagnosis": "Intermittent explosive disorder"}
    assert dict(fhir.counts) == {"Patient": 1, "Condition": 1}


async def test_a_patient_is_found_by_client_number_or_by_name_and_partial_birth_date(
    adapter: FhirAdapter
) -> None:
    assert await adapter.lookup(Person(reference="C-5521"), deadline_s=5) == (True, "client")
    found = await adapter.fetch(Person(name="jan  de vries", date_of_birth="1985-03"),
                                ["ggz.treatment_status"], deadline_s=5)
    assert found.values == {"ggz.treatment_status": "in treatment"}
    # A name the server's prefix search matches but that is not the person's is not a match.
    with pytest.raises(NotKnown):
        await adapter.fetch(Person(name="Jan", date_of_birth="1985"), FIELDS, deadline_s=5)


async def test_a_person_the_server_does_not_know_is_not_known(
    adapter: FhirAdapter, fhir: FhirServer
) -> None:
    with pytest.raises(NotKnown):
        await adapter.fetch(Person(bsn="999999990"), FIELDS, deadline_s=5)
    assert await adapter.lookup(Person(bsn="999999990"), deadline_s=5) == (False, "")
    assert set(fhir.counts) == {"Patient"}  # nothing else is asked about an unknown person


async def test_two_patients_fitting_name_and_birth_date_is_not_known(
    adapter: FhirAdapter, fhir: FhirServer
) -> None:
    fhir.add(*_jan(patient_id="p2", bsn=None, reference=None, birth_date="1985-03-20"))
    with pytest.raises(NotKnown):
        await adapter.fetch(Person(name="Jan de Vries", date_of_birth="1985-03"), FIELDS,
                            deadline_s=5)


async def test_a_slow_server_is_unavailable_within_the_deadline(
    adapter: FhirAdapter, fhir: FhirServer
) -> None:
    fhir.faults.delay_s = 1.0
    with pytest.raises(SystemUnavailable, match="deadline"):
        await adapter.fetch(Person(bsn="111222333"), FIELDS, deadline_s=0.2)


async def test_a_5xx_makes_the_server_or_just_its_fields_unavailable(
    adapter: FhirAdapter, fhir: FhirServer
) -> None:
    fhir.faults.status = 500
    with pytest.raises(SystemUnavailable, match="500"):
        await adapter.lookup(Person(bsn="111222333"), deadline_s=5)
    fhir.faults.only = ("Condition",)
    found = await adapter.fetch(Person(bsn="111222333"), FIELDS, deadline_s=5)
    assert found.unavailable == {"ggz.diagnosis"}
    assert found.values == {"ggz.treatment_status": "in treatment",
                            "ggz.care_involved": "FACT team Enschede, 053-480 1234"}


async def test_a_malformed_answer_makes_the_server_unavailable(
    adapter: FhirAdapter, fhir: FhirServer
) -> None:
    fhir.faults.malformed = True
    with pytest.raises(SystemUnavailable, match="not JSON"):
        await adapter.fetch(Person(bsn="111222333"), FIELDS, deadline_s=5)


async def test_a_resource_that_does_not_conform_to_r4_is_never_read(
    adapter: FhirAdapter, fhir: FhirServer
) -> None:
    fhir.add_raw({  # a second Condition whose code is not a CodeableConcept
        "resourceType": "Condition", "id": "bad", "subject": {"reference": "Patient/p1"},
        "clinicalStatus": {"coding": [{"code": "active"}]}, "code": "F63.8",
    })
    found = await adapter.fetch(Person(bsn="111222333"), FIELDS, deadline_s=5, explain=True)
    assert found.unavailable == {"ggz.diagnosis"}
    assert "ggz.diagnosis" not in found.values
    assert found.values["ggz.care_involved"] == "FACT team Enschede, 053-480 1234"
    reading = next(r for r in found.readings if r.field == "ggz.diagnosis")
    assert "does not conform to R4" in reading.problem


async def test_a_status_the_map_does_not_know_makes_only_that_field_unavailable(
    tmp_path: Path, fhir: FhirServer
) -> None:
    fhir.resources.clear()
    fhir.add(*_jan(episode_status="entered-in-error"))
    ggz = _open(tmp_path, fhir)
    try:
        found = await ggz.fetch(Person(bsn="111222333"), FIELDS, deadline_s=5, explain=True)
    finally:
        await ggz.close()
    assert found.unavailable == {"ggz.treatment_status"}
    assert found.values == {"ggz.diagnosis": "Intermittent explosive disorder",
                            "ggz.care_involved": "FACT team Enschede, 053-480 1234"}
    reading = next(r for r in found.readings if r.field == "ggz.treatment_status")
    assert reading.raw == "entered-in-error" and reading.value is None


async def test_resources_about_another_patient_are_never_read(
    adapter: FhirAdapter, fhir: FhirServer
) -> None:
    fhir.add(*_jan(patient_id="p9", bsn="222333444", reference=None,
                   diagnosis="Someone else's diagnosis"))
    fhir.ignore_patient_filter = True  # a server answering every Condition it holds
    found = await adapter.fetch(Person(bsn="111222333"), FIELDS, deadline_s=5)
    assert found.unavailable == {"ggz.diagnosis", "ggz.treatment_status", "ggz.care_involved"}
    assert found.values == {}


async def test_refused_credentials_and_a_refused_connection_are_unavailable(
    tmp_path: Path, fhir: FhirServer
) -> None:
    wrong = _open(tmp_path, fhir, token="wrong")
    try:
        with pytest.raises(SystemUnavailable, match="credentials"):
            await wrong.lookup(Person(bsn="111222333"), deadline_s=5)
    finally:
        await wrong.close()
    ggz = _open(tmp_path / "again", fhir)
    fhir.stop()
    try:
        with pytest.raises(SystemUnavailable, match="reached"):
            await ggz.fetch(Person(bsn="111222333"), FIELDS, deadline_s=5)
    finally:
        await ggz.close()


MAPPING_OF_EVERY_RESOURCE = """\
kind: fhir
partner_type: ggz
server: {base_url: "http://127.0.0.1:9/fhir", auth: {bearer_token_file: secrets/fhir-token}}
page_size: 1
fields:
  ggz.diagnosis: {type: text, resource: Flag, path: Flag.code.text}
  ggz.treatment_status:
    type: text
    resource: CarePlan
    path: "CarePlan.title + ' (' + CarePlan.status + ')'"
  ggz.care_involved:
    type: text
    resource: Encounter
    path: "Encounter.class.code + ' ' + Encounter.period.start.toString().substring(0, 10)"
lookup: {role_path: "Patient.name.first().family"}
"""


async def test_every_supported_resource_maps_and_pages_are_followed(
    tmp_path: Path, fhir: FhirServer
) -> None:
    fhir.add({"resourceType": "Flag", "id": "p1-flag2", "status": "active",
              "code": {"text": "Weapon"}, "subject": {"reference": "Patient/p1"}})
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets/fhir-token").write_text(TOKEN)
    path = tmp_path / "every.yaml"
    path.write_text(MAPPING_OF_EVERY_RESOURCE, encoding="utf-8")
    mapping = load_mapping(path, real_catalogue())
    ggz = open_adapter(mapping, {"base_url": fhir.base_url}, tmp_path)
    try:
        found = await ggz.fetch(Person(bsn="111222333"), FIELDS, deadline_s=5, explain=True)
        assert found.unavailable == {"ggz.diagnosis"}  # two flags, no join: refused
        assert found.values == {
            "ggz.treatment_status": "Outpatient treatment plan (active)",
            "ggz.care_involved": "AMB 2026-11-20",
        }
        assert fhir.counts["Flag"] == 2  # page_size 1: the next link was followed
        assert await ggz.lookup(Person(bsn="111222333"), deadline_s=5) == (True, "de Vries")
    finally:
        await ggz.close()


def test_the_mapping_check_names_the_place_of_each_problem(tmp_path: Path) -> None:
    text = (EXAMPLES / "ggz-fhir.yaml").read_text(encoding="utf-8")
    text = text.replace("    resource: Condition\n", "    resource: Conditon\n")
    text = text.replace("path: CarePlan.careTeam.display", "path: CarePlan.careTeam.(display")
    text = text.replace("  bsn_system:", "  bsn_sytem:")
    path = tmp_path / "ggz-fhir.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError) as caught:
        load_mapping(path, real_catalogue())
    problems = [str(p) for p in caught.value.problems]
    lines = text.splitlines()

    def line_of(snippet: str) -> int:
        return next(i for i, line in enumerate(lines, 1) if snippet in line)

    assert f"{path}:{line_of('bsn_sytem')}:3: unknown key 'bsn_sytem', did you mean " \
           "'bsn_system'?" in problems
    assert f"{path}:{line_of('Conditon')}:15: resource 'Conditon' is not one the adapter " \
           "reads, did you mean 'Condition'?" in problems
    assert any(p.startswith(f"{path}:{line_of('careTeam.(display')}:11: not a FHIRPath")
               for p in problems), problems


def test_a_wrong_type_and_a_field_of_another_partner_type_are_refused(tmp_path: Path) -> None:
    text = (EXAMPLES / "ggz-fhir.yaml").read_text(encoding="utf-8")
    text = text.replace("  ggz.diagnosis:\n    type: text", "  ggz.diagnosis:\n    type: date")
    text = text.replace("  ggz.care_involved:", "  police.weapon_flag:")
    path = tmp_path / "ggz-fhir.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError) as caught:
        load_mapping(path, real_catalogue())
    messages = " | ".join(str(p) for p in caught.value.problems)
    assert "type 'date' is not the catalogue's kind of 'ggz.diagnosis': 'text'" in messages
    assert "field 'police.weapon_flag' is held by partner type 'police', not 'ggz'" in messages


def test_the_bsn_system_is_the_dutch_naming_system() -> None:
    assert BSN_SYSTEM == "http://fhir.nl/fhir/NamingSystem/bsn"


async def test_a_search_parameter_the_server_refuses_and_too_many_pages_are_unavailable(
    tmp_path: Path, fhir: FhirServer
) -> None:
    fhir.add({"resourceType": "Flag", "id": "p1-flag2", "status": "active",
              "code": {"text": "Weapon"}, "subject": {"reference": "Patient/p1"}})
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets/fhir-token").write_text(TOKEN)
    path = tmp_path / "strict.yaml"
    path.write_text("""\
kind: fhir
partner_type: ggz
server: {base_url: "http://127.0.0.1:9/fhir", auth: {bearer_token_file: secrets/fhir-token}}
page_size: 1
max_pages: 1
fields:
  ggz.diagnosis:                       # the server does not support "category": refused
    type: text
    resource: Condition
    search: {category: encounter-diagnosis}
    path: Condition.code.text
  ggz.care_involved:                   # two Flags, one per page, one page allowed
    type: text
    resource: Flag
    path: Flag.code.text
    convert: {join: "; "}
  ggz.treatment_status: {type: text, resource: EpisodeOfCare, path: EpisodeOfCare.status}
""", encoding="utf-8")
    ggz = open_adapter(load_mapping(path, real_catalogue()), {"base_url": fhir.base_url},
                       tmp_path)
    try:
        found = await ggz.fetch(Person(bsn="111222333"), FIELDS, deadline_s=5, explain=True)
    finally:
        await ggz.close()
    assert found.unavailable == {"ggz.diagnosis", "ggz.care_involved"}
    assert found.values == {"ggz.treatment_status": "active"}
    problems = {r.field: r.problem for r in found.readings}
    assert "HTTP 400" in problems["ggz.diagnosis"]
    assert "max_pages" in problems["ggz.care_involved"]


async def test_a_second_fitting_patient_on_a_later_page_is_seen(
    tmp_path: Path, fhir: FhirServer
) -> None:
    fhir.add(*_jan(patient_id="p2", bsn=None, reference=None, birth_date="1985-03-20"))
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets/fhir-token").write_text(TOKEN)
    text = (EXAMPLES / "ggz-fhir.yaml").read_text(encoding="utf-8")
    path = tmp_path / "paged.yaml"
    path.write_text(text.replace("patient:\n", "page_size: 1\npatient:\n", 1), encoding="utf-8")
    original = fhir._bundle

    def one_per_page(kind: str, matches: list[dict[str, Any]], request: Any) -> Any:
        if "_count" not in request.query:  # the Patient search sets no _count: page by one
            request.query["_count"] = ["1"]
        return original(kind, matches, request)

    fhir._bundle = one_per_page  # type: ignore[method-assign]
    ggz = open_adapter(load_mapping(path, real_catalogue()),
                       {"base_url": fhir.base_url, "tls": {}}, tmp_path)
    try:
        with pytest.raises(NotKnown):
            await ggz.fetch(Person(name="Jan de Vries", date_of_birth="1985-03"), FIELDS,
                            deadline_s=5)
        assert fhir.counts["Patient"] == 2  # the next link was followed
    finally:
        await ggz.close()
