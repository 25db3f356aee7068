"""A real gateway asks two sources served by the source runtime, each in front of a real
loopback system: the police through the REST adapter, the GGZ provider through the FHIR
adapter (mutual TLS and sealing both ways, as `ketenpoort source serve` runs them). The
disclosure carries the systems' values as the example mappings give them, and a system that
fails makes exactly its fields "source unavailable"."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from adapters.source_runtime.config import load_config
from adapters.source_runtime.service import RunningRuntime, start_runtime
from gateway.api.v1 import common_pb2
from gateway.cli.demo_data import SOURCE_RECORDS
from gateway.cli.policy_catalogue import catalogue_document
from gateway.core import CompiledPolicy
from gateway.demo_systems.fhir_server import FhirServer
from gateway.demo_systems.police_rest import PoliceRestServer
from gateway.demo_systems.seeds import ggz_resources, police_records
from tests.integration.harness import Harness, running_harness
from tests.integration.helpers import register, to_case_meeting

PURPOSE, MEETING = "analysis_and_plan", "case_meeting"
EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "source"


def source_toml(directory: Path, keys: Path, policy: CompiledPolicy, partner: str,
                mapping: str, base_url: str, token_file: str) -> Path:
    directory.mkdir(parents=True)
    (directory / "catalogue.json").write_text(json.dumps(catalogue_document(policy)))
    shutil.copy(EXAMPLES / mapping, directory / mapping)
    (directory / "token").write_text("demo-token")
    config = directory / "source.toml"
    config.write_text(textwrap.dedent(f"""\
        partner_id = "{partner}"
        listen = "127.0.0.1:0"
        catalogue = "catalogue.json"
        mapping = "{mapping}"
        access_log = "access.jsonl"

        [keys]
        dir = "{keys}"

        [system]
        base_url = "{base_url}"
        auth = {{bearer_token_file = "{token_file}"}}
        tls = {{}}

        [deadlines]
        margin_s = 0.1
        """))
    return config


@pytest.fixture
def systems() -> Iterator[tuple[PoliceRestServer, FhirServer]]:
    police = PoliceRestServer(token="demo-token")
    police.add(*police_records([SOURCE_RECORDS["police"]]))
    ggz = FhirServer(token="demo-token")
    ggz.add(*ggz_resources([SOURCE_RECORDS["ggz"]]))
    with police, ggz:
        yield police, ggz


@pytest.fixture
async def runtimes(
    tmp_path: Path, dev_keys: Path, shipped_policy: CompiledPolicy,
    systems: tuple[PoliceRestServer, FhirServer],
) -> AsyncIterator[dict[str, RunningRuntime]]:
    police, ggz = systems
    running: dict[str, RunningRuntime] = {}
    try:
        for partner, mapping, url in (("police", "police-rest.yaml", police.base_url),
                                      ("ggz", "ggz-fhir.yaml", ggz.base_url)):
            config = source_toml(tmp_path / partner, dev_keys, shipped_policy, partner,
                                 mapping, url, "token")
            running[partner] = await start_runtime(load_config(config))
        yield running
    finally:
        for runtime in running.values():
            await runtime.stop(None)


@pytest.fixture
async def gateway(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy,
    runtimes: dict[str, RunningRuntime],
) -> AsyncIterator[Harness]:
    async with running_harness(
        db_url, dev_keys, shipped_policy,
        external_sources={p: f"127.0.0.1:{r.port}" for p, r in runtimes.items()},
    ) as running:
        yield running


async def test_a_disclosure_carries_the_rest_and_fhir_systems_values(
    gateway: Harness, systems: tuple[PoliceRestServer, FhirServer], tmp_path: Path
) -> None:
    police_api, fhir = systems
    police, director = gateway.client("police"), gateway.client("zvh")
    case_id = await register(police, ("zvh", "police", "ggz"))
    await to_case_meeting(director, case_id)
    answer = await director.request_disclosure(case_id, PURPOSE, MEETING)

    disclosed = {
        f.field: f.source for f in answer.response.fields
        if f.source in ("police", "ggz") and f.outcome == common_pb2.OUTCOME_DISCLOSED
    }
    assert {"police", "ggz"} <= set(disclosed.values()), disclosed
    expected = {**SOURCE_RECORDS["police"].fields, **SOURCE_RECORDS["ggz"].fields}
    for field_id in disclosed:
        assert answer.values[field_id] == expected[field_id]
    asked = {f.field for f in answer.response.fields
             if f.source == "ggz" and f.outcome != common_pb2.OUTCOME_WITHHELD}
    # The FHIR server was asked only for the resource types of the ggz fields the policy
    # releases (disclosed or masked); a withheld field is never asked of its source.
    wanted = {"ggz.diagnosis": "Condition", "ggz.treatment_status": "EpisodeOfCare",
              "ggz.care_involved": "CarePlan"}
    assert set(fhir.counts) == {"Patient"} | {wanted[f] for f in asked}
    text = (tmp_path / "ggz" / "access.jsonl").read_text()
    assert SOURCE_RECORDS["ggz"].bsn not in text and "explosive" not in text


async def test_a_failing_fhir_server_makes_only_its_fields_unavailable(
    gateway: Harness, systems: tuple[PoliceRestServer, FhirServer]
) -> None:
    _, fhir = systems
    fhir.faults.status = 503
    police, director = gateway.client("police"), gateway.client("zvh")
    case_id = await register(police, ("zvh", "police", "ggz"))
    await to_case_meeting(director, case_id)
    answer = await director.request_disclosure(case_id, PURPOSE, MEETING)
    released = [f for f in answer.response.fields if f.outcome != common_pb2.OUTCOME_WITHHELD]
    by_field = {f.field: f for f in answer.record.fields}
    ggz = [f.field for f in released if f.source == "ggz"]
    police_fields = [f.field for f in released if f.source == "police"]
    assert ggz and police_fields
    for field_id in ggz:
        assert by_field[field_id].availability == common_pb2.AVAILABILITY_SOURCE_UNAVAILABLE
        assert field_id not in answer.values
    for field_id in police_fields:
        assert field_id in answer.values
    assert answer.response.incomplete
