"""The source runtime's service in front of a real SQLite database, served by
adapters.source_server over real gRPC on loopback (clear answers here; sealing and mutual TLS
are in tests/integration/test_source_runtime_sql.py): per-field unavailable, a database that is
gone as UNAVAILABLE, a slow query as DEADLINE_EXCEEDED, the breaker, the access log."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc import aio

from adapters.circuit_breaker import BreakerSettings, BreakerState, CircuitBreaker
from adapters.source_runtime.access_log import AccessLog
from adapters.source_runtime.config import Deadlines
from adapters.source_runtime.mapping import load_mapping
from adapters.source_runtime.metrics import SourceMetrics
from adapters.source_runtime.service import RuntimeBackend
from adapters.source_server import RunningSource, serve_source
from adapters.systems.sql import open_adapter
from gateway.api.v1 import common_pb2, source_pb2, source_pb2_grpc

BSN = "999990019"
MAPPING = """\
kind: sql
partner_type: municipality
queries:
  person: {sql: "SELECT adres, status FROM personen WHERE bsn = :bsn"}
  slow:
    sql: >-
      WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)
      SELECT count(*) AS n FROM c WHERE :bsn IS NOT NULL
fields:
  mun.brp_address: {type: text, query: person, column: adres}
  mun.housing_status: {type: text, query: person, column: status, convert: {map: {K: owns}}}
  mun.social_support: {type: text, query: slow, column: n}
lookup: {query: person, role: resident}
"""


class Served:
    def __init__(self, running: RunningSource, backend: RuntimeBackend, tmp: Path) -> None:
        self.running, self.backend, self.tmp = running, backend, tmp
        self.channel = aio.insecure_channel(running.address)
        self.stub = source_pb2_grpc.SourceServiceStub(self.channel)  # type: ignore[no-untyped-call]

    async def fetch(self, fields: list[str], timeout: float = 5) -> source_pb2.FetchFieldsResponse:
        request = source_pb2.FetchFieldsRequest(
            subject=common_pb2.SubjectIdentity(bsn=BSN), fields=fields, purpose="p",
            disclosure_id="d-1", recipient_id="zvh",
        )
        response: source_pb2.FetchFieldsResponse = await self.stub.FetchFields(
            request, timeout=timeout)
        return response

    def log(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in (self.tmp / "access.jsonl").read_text().splitlines()]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    with sqlite3.connect(tmp_path / "system.db") as db:
        db.execute("CREATE TABLE personen (bsn, adres, status)")
        db.execute("INSERT INTO personen VALUES (?, 'Dorpsstraat 1', 'X')", (BSN,))
    (tmp_path / "mapping.yaml").write_text(MAPPING)
    adapter = open_adapter(load_mapping(tmp_path / "mapping.yaml"),
                           {"url": "sqlite:///system.db"}, tmp_path)
    metrics = SourceMetrics()
    backend = RuntimeBackend(
        adapter,
        deadlines=Deadlines(default_s=5, margin_s=0.2),
        breaker=CircuitBreaker("system", BreakerSettings(failure_threshold=2, open_for_s=3600),
                               on_change=metrics.breaker_changed),
        metrics=metrics,
        access_log=AccessLog(tmp_path / "access.jsonl"),
    )
    running = await serve_source(backend, clear_answers=True)
    served = Served(running, backend, tmp_path)
    yield served
    await served.channel.close(None)
    await running.stop(None)
    await adapter.close()
    backend.access_log.close()


async def test_a_value_that_does_not_convert_goes_out_as_unavailable(served: Served) -> None:
    response = await served.fetch(["mun.brp_address", "mun.housing_status", "not.mapped"])
    assert dict(response.values) == {"mun.brp_address": "Dorpsstraat 1"}
    assert list(response.unavailable) == ["mun.housing_status"]
    (entry,) = served.log()
    assert entry["outcome"] == "partial" and entry["reference"] == "d-1"
    assert entry["supplied"] == ["mun.brp_address"]
    assert entry["unavailable"] == ["mun.housing_status"]
    assert entry["identifiers"] == ["bsn"] and entry["recipient"] == "zvh"
    assert BSN not in json.dumps(entry) and "Dorpsstraat" not in json.dumps(entry)


async def test_a_slow_system_ends_in_deadline_exceeded(served: Served) -> None:
    with pytest.raises(aio.AioRpcError) as raised:
        await served.fetch(["mun.social_support"], timeout=1.5)
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert served.log()[-1]["outcome"] == "deadline"


async def test_a_database_gone_is_unavailable_and_opens_the_breaker(served: Served) -> None:
    (served.tmp / "system.db").unlink()
    await served.backend.adapter.close()  # drop pooled connections to the deleted file
    for _ in range(2):
        with pytest.raises(aio.AioRpcError) as raised:
            await served.fetch(["mun.brp_address"])
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert served.backend.breaker.state is BreakerState.OPEN
    # Open: the system is not asked; the call fails at once, just as unavailable.
    with pytest.raises(aio.AioRpcError) as raised:
        await served.fetch(["mun.brp_address"])
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert [e["outcome"] for e in served.log()] == ["unavailable", "unavailable",
                                                    "circuit_open"]
    assert served.backend.metrics.registry.get_sample_value(
        "ketenpoort_source_runtime_circuit_state") == 2


async def test_a_person_the_system_lacks_is_no_values_and_unknown(served: Served) -> None:
    request = source_pb2.LookupSubjectRequest(
        subject=common_pb2.SubjectIdentity(bsn="123456782"), triage_id="t-1")
    answer = await served.stub.LookupSubject(request, timeout=5)
    assert (answer.known, answer.role) == (False, "")
    request = source_pb2.LookupSubjectRequest(
        subject=common_pb2.SubjectIdentity(bsn=BSN), triage_id="t-2")
    answer = await served.stub.LookupSubject(request, timeout=5)
    assert (answer.known, answer.role) == (True, "resident")
    assert [e["outcome"] for e in served.log()] == ["not_known", "known"]
