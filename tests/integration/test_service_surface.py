"""Health checking, server reflection and the generated code's freshness."""

from __future__ import annotations

import filecmp
from pathlib import Path

from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gateway import _protogen
from tests.integration.harness import Harness


async def test_health_reports_serving_without_a_token(harness: Harness) -> None:
    channel = harness.channel()
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "ketenpoort.v1.ExchangeService", "ketenpoort.v1.AccountabilityService"):
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    await channel.close()


async def test_reflection_lists_the_services(harness: Harness) -> None:
    channel = harness.channel()
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    names: set[str] = set()
    async for response in stub.ServerReflectionInfo(iter([request]), timeout=5):
        names |= {s.name for s in response.list_services_response.service}
    await channel.close()
    assert {
        "ketenpoort.v1.ExchangeService",
        "ketenpoort.v1.AccountabilityService",
        "grpc.health.v1.Health",
    } <= names


def test_generated_code_matches_proto(tmp_path: Path) -> None:
    root = _protogen.repo_root()
    _protogen.generate(root / "proto", tmp_path)
    generated = root / "gateway" / "api" / "v1"
    fresh = tmp_path / "v1"
    names = sorted(p.name for p in fresh.iterdir())
    assert names == sorted(p.name for p in generated.iterdir() if p.name != "__pycache__"), (
        "gateway/api is stale: run `python -m gateway._protogen` (or reinstall)"
    )
    match, mismatch, errors = filecmp.cmpfiles(fresh, generated, names, shallow=False)
    assert not mismatch and not errors, (
        f"generated code differs from proto/ for {mismatch + errors}: "
        "run `python -m gateway._protogen` (or reinstall)"
    )
