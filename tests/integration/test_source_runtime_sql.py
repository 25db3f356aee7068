"""A real gateway asks a source served by the source runtime (`ketenpoort source serve`'s
service) with the SQL adapter, over mutual TLS, sealed both ways: the disclosure carries the
database's values, a field whose value does not convert reaches the gateway as unavailable
(never a wrong value), and the access log names field ids, never values."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.source_runtime.config import load_config
from adapters.source_runtime.service import RunningRuntime, start_runtime
from gateway.api.v1 import common_pb2
from gateway.cli.demo_data import SUBJECT
from gateway.cli.policy_catalogue import catalogue_document
from gateway.core import CompiledPolicy
from tests.integration.harness import Harness, running_harness
from tests.integration.helpers import register, to_case_meeting

PURPOSE, MEETING = "analysis_and_plan", "case_meeting"
ADDRESS = "Lindenstraat 12, 7511 AB Enschede"

MAPPING = """\
kind: sql
partner_type: municipality
queries:
  person:
    sql:
      - SELECT adres, huishouden, status FROM personen WHERE bsn = :bsn
      - SELECT adres, huishouden, status FROM personen
        WHERE naam = :name AND geboren = :date_of_birth
  debts:
    sql: SELECT schuld FROM schulden WHERE bsn = :bsn
    rows: all
fields:
  mun.brp_address: {type: text, query: person, column: adres}
  mun.household_composition: {type: text, query: person, column: huishouden}
  mun.housing_status:
    type: text
    query: person
    column: status
    convert: {map: {H: Social rental, K: Owner-occupied}}
  mun.debts: {type: text, query: debts, column: schuld, convert: {join: "; "}}
lookup: {query: person, role: resident}
"""


def source_files(
    directory: Path, keys: Path, policy: CompiledPolicy, *, listen: str = "127.0.0.1:0",
    gateway: str = "",
) -> Path:
    database = directory / "gemeente.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE personen (bsn, naam, geboren, adres, huishouden, status)")
        db.execute("CREATE TABLE schulden (bsn, schuld)")
        # status "X" is a code the mapping does not know: that field must go out unavailable.
        db.execute("INSERT INTO personen VALUES (?, ?, ?, ?, ?, ?)",
                   (SUBJECT.bsn, SUBJECT.name, SUBJECT.date_of_birth, ADDRESS, "Two adults",
                    "X"))
        db.executemany("INSERT INTO schulden VALUES (?, ?)",
                       [(SUBJECT.bsn, "Energy arrears"), (SUBJECT.bsn, "Rent arrears")])
    (directory / "catalogue.json").write_text(json.dumps(catalogue_document(policy)))
    (directory / "mapping.yaml").write_text(MAPPING)
    config = directory / "source.toml"
    config.write_text(textwrap.dedent(f"""\
        partner_id = "municipality"
        listen = "{listen}"
        catalogue = "catalogue.json"
        mapping = "mapping.yaml"
        access_log = "access.jsonl"

        [keys]
        dir = "{keys}"

        [system]
        url = "sqlite:///gemeente.db"

        [deadlines]
        margin_s = 0.1
        """))
    if gateway:
        # The gateway's sealing keys fetched from the gateway itself, verified against the
        # signing key pinned in the key directory, instead of a key file.
        with config.open("a") as out:
            out.write(f'\n[gateway]\naddress = "{gateway}"\nrole = "chain_partner"\n')
    return config


@pytest.fixture
async def runtime(
    tmp_path: Path, dev_keys: Path, shipped_policy: CompiledPolicy
) -> AsyncIterator[RunningRuntime]:
    config = load_config(source_files(tmp_path, dev_keys, shipped_policy))
    running = await start_runtime(config)
    yield running
    await running.stop(None)


@pytest.fixture
async def gateway(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy, runtime: RunningRuntime
) -> AsyncIterator[Harness]:
    async with running_harness(
        db_url, dev_keys, shipped_policy,
        external_sources={"municipality": f"127.0.0.1:{runtime.port}"},
    ) as running:
        yield running


async def test_a_disclosure_carries_the_databases_values(
    gateway: Harness, runtime: RunningRuntime, tmp_path: Path
) -> None:
    police, director = gateway.client("police"), gateway.client("zvh")
    case_id = await register(police, ("zvh", "municipality"))
    await to_case_meeting(director, case_id)
    answer = await director.request_disclosure(case_id, PURPOSE, MEETING)

    by_field = {f.field: f for f in answer.record.fields}
    disclosed = {
        f.field for f in answer.response.fields
        if f.source == "municipality" and f.outcome == common_pb2.OUTCOME_DISCLOSED
    }
    assert "mun.brp_address" in disclosed, "the ZVH receives the address in a case meeting"
    expected = {"mun.brp_address": ADDRESS, "mun.household_composition": "Two adults",
                "mun.debts": "Energy arrears; Rent arrears"}
    for field_id in disclosed & expected.keys():
        assert answer.values[field_id] == expected[field_id]
    # A code the mapping does not know: the source names the field unavailable and the
    # gateway marks it so, never passing the code on as a value.
    assert (by_field["mun.housing_status"].availability
            == common_pb2.AVAILABILITY_SOURCE_UNAVAILABLE)
    assert "mun.housing_status" not in answer.values
    assert answer.response.incomplete

    lines = [json.loads(line) for line in (tmp_path / "access.jsonl").read_text().splitlines()]
    fetch = next(e for e in lines if e["operation"] == "SourceService/FetchFields")
    assert fetch["reference"] == answer.response.disclosure_id
    assert fetch["recipient"] == "zvh" and fetch["purpose"] == PURPOSE
    assert "mun.brp_address" in fetch["supplied"]
    assert fetch["unavailable"] == ["mun.housing_status"] and fetch["outcome"] == "partial"
    text = (tmp_path / "access.jsonl").read_text()
    for secret in (SUBJECT.bsn, SUBJECT.name, ADDRESS, "Two adults", "Rent arrears"):
        assert secret not in text
    assert runtime.backend.metrics.registry.get_sample_value(
        "ketenpoort_source_runtime_calls_total",
        {"operation": "SourceService/FetchFields", "outcome": fetch["outcome"]},
    ) == 1


async def test_the_runtime_can_fetch_the_gateways_keys_from_the_gateway(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy, tmp_path: Path,
    unused_tcp_port: int,
) -> None:
    listen = f"127.0.0.1:{unused_tcp_port}"
    async with running_harness(
        db_url, dev_keys, shipped_policy, external_sources={"municipality": listen},
    ) as gateway:
        config = load_config(source_files(tmp_path, dev_keys, shipped_policy, listen=listen,
                                          gateway=gateway.address))
        assert config.gateway is not None
        runtime = await start_runtime(config)
        try:
            police, director = gateway.client("police"), gateway.client("zvh")
            case_id = await register(police, ("zvh", "municipality"))
            await to_case_meeting(director, case_id)
            answer = await director.request_disclosure(case_id, PURPOSE, MEETING)
            assert answer.values["mun.brp_address"] == ADDRESS
        finally:
            await runtime.stop(None)
