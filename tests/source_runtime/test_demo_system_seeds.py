"""The demo's police and GGZ records, served by the loopback systems and read back through the
example mappings, give exactly the records' values: the demo can run these partners through
the source runtime and check the gateway's answers against the same records."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.source_runtime.adapter import Person
from adapters.source_server import SubjectRecord
from adapters.systems import fhir, rest
from gateway.cli.demo_data import CASE_RECORDS
from gateway.demo_systems.fhir_server import FhirServer
from gateway.demo_systems.police_rest import PoliceRestServer
from gateway.demo_systems.seeds import ggz_resources, police_records
from tests.source_runtime.http_systems import example_mapping


def _person(record: SubjectRecord) -> Person:
    if record.bsn:
        return Person(bsn=record.bsn)
    return Person(name=record.name, date_of_birth=record.date_of_birth)


async def test_the_police_records_pass_through_the_rest_mapping_unchanged(
    tmp_path: Path
) -> None:
    server = PoliceRestServer(token="demo")
    server.add(*police_records(CASE_RECORDS["police"]))
    mapping = example_mapping(tmp_path, "police-rest.yaml", {"secrets/police-api-token": "demo"})
    with server:
        adapter = rest.open_adapter(mapping, {"base_url": server.base_url, "tls": {}}, tmp_path)
        try:
            for record in CASE_RECORDS["police"]:
                found = await adapter.fetch(_person(record), list(mapping.fields), deadline_s=5)
                assert (dict(found.values), found.unavailable) == (dict(record.fields), frozenset())
                assert await adapter.lookup(_person(record), deadline_s=5) == (True, record.role)
        finally:
            await adapter.close()


async def test_the_ggz_records_pass_through_the_fhir_mapping_unchanged(tmp_path: Path) -> None:
    server = FhirServer(token="demo")
    server.add(*ggz_resources(CASE_RECORDS["ggz"]))
    mapping = example_mapping(tmp_path, "ggz-fhir.yaml", {"secrets/fhir-token": "demo"})
    with server:
        adapter = fhir.open_adapter(mapping, {"base_url": server.base_url, "tls": {}}, tmp_path)
        try:
            for record in CASE_RECORDS["ggz"]:
                found = await adapter.fetch(_person(record), list(mapping.fields), deadline_s=5)
                assert (dict(found.values), found.unavailable) == (dict(record.fields), frozenset())
                assert await adapter.lookup(_person(record), deadline_s=5) == (True, "client")
        finally:
            await adapter.close()


def test_a_value_the_system_cannot_carry_is_refused_not_changed() -> None:
    record = SubjectRecord(bsn="1", role="client",
                           fields={"ggz.treatment_status": "missed three sessions"})
    with pytest.raises(ValueError, match="ggz.treatment_status"):
        ggz_resources([record])
    police = SubjectRecord(bsn="1", role="x", fields={"police.neighbourhood_officer": "Team"})
    with pytest.raises(ValueError, match="police.neighbourhood_officer"):
        police_records([police])
