"""A real gateway on loopback with real partner source systems, per test.

The gateway runs on port 0 without TLS for speed (tests/integration/test_mtls.py covers
mutual TLS); storage is the database of the `db_url` fixture (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.grpc_source import GrpcSource
from adapters.source_server import InMemoryBackend, RunningSource, serve_source
from gateway.broker.sources import Source
from gateway.cli.demo_data import SOURCE_RECORDS
from gateway.core import CompiledPolicy
from gateway.crypto.devkeys import init_dev_keys
from gateway.policyfiles import load_policy_dir
from gateway.server.app import start_gateway
from gateway.server.config import shipped_policy_dir
from tests.integration.harness import SOURCE_PARTNERS, Harness, gateway_config


@pytest.fixture(scope="session")
def shipped_policy() -> CompiledPolicy:
    return load_policy_dir(shipped_policy_dir())


@pytest.fixture(scope="session")
def dev_keys(tmp_path_factory: pytest.TempPathFactory, shipped_policy: CompiledPolicy) -> Path:
    keys = tmp_path_factory.mktemp("keys") / "keys"
    init_dev_keys(keys, sorted(shipped_policy.partners))
    return keys


@pytest.fixture
async def harness(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy
) -> AsyncIterator[Harness]:
    running: dict[str, RunningSource] = {}
    adapters: dict[str, Source] = {}
    for partner, partner_type in SOURCE_PARTNERS.items():
        backend = InMemoryBackend()
        backend.add(SOURCE_RECORDS[partner_type])
        running[partner] = await serve_source(backend)
        adapters[partner_type] = GrpcSource(running[partner].address)
    gateway = await start_gateway(
        gateway_config(db_url, dev_keys), policy=shipped_policy, sources=adapters
    )
    try:
        yield Harness(gateway, dev_keys, running, shipped_policy, db_url)
    finally:
        await gateway.stop(grace=None)
        for r in running.values():
            await r.stop(None)
