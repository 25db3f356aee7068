"""The test gateway's configuration and handle, shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.client import PartnerClient, PartnerCredentials
from adapters.grpc_source import GrpcSource
from adapters.source_server import InMemoryBackend, RunningSource, serve_source
from gateway.broker.sources import Source
from gateway.cli.demo_data import SOURCE_RECORDS
from gateway.core import CompiledPolicy
from gateway.server.app import Gateway, start_gateway
from gateway.server.config import GatewayConfig, TlsMode, shipped_policy_dir

SOURCE_PARTNERS = {
    "police": "police",
    "om": "om",
    "probation": "probation",
    "rvdk": "child_protection",
    "dji": "dji",
    "ggz": "ggz",
    "addiction-care": "addiction_care",
    "veilig-thuis": "veilig_thuis",
    "municipality": "municipality",
    "housing": "housing_corporation",
}
ROLES = {
    "police": "case_director",
    "ggz": "chain_partner",
    "municipality": "chain_partner",
    "veilig-thuis": "chain_partner",
    "probation": "chain_partner",
    "zvh": "process_director",
}


@dataclass
class Harness:
    gateway: Gateway
    keys: Path
    sources: dict[str, RunningSource]  # partner id -> running source system
    policy: CompiledPolicy
    db_url: str

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.gateway.port}"

    def client(self, partner: str, role: str | None = None, **kw: object) -> PartnerClient:
        creds = PartnerCredentials.from_key_dir(self.keys, partner, tls=False)
        return PartnerClient(self.address, creds, role=role or ROLES[partner], **kw)  # type: ignore[arg-type]

    def credentials(self, partner: str) -> PartnerCredentials:
        return PartnerCredentials.from_key_dir(self.keys, partner, tls=False)


def gateway_config(db_url: str, keys: Path, **changes: object) -> GatewayConfig:
    base = GatewayConfig(
        listen="127.0.0.1:0",
        database_url=db_url,
        policy_dir=shipped_policy_dir(),
        keys_dir=keys,
        data_dir=keys.parent,
        tls_mode=TlsMode.INSECURE,
        metrics_port=None,
        source_deadline_s=1.0,
    )
    return base.with_overrides(**changes)


@asynccontextmanager
async def running_harness(
    db_url: str, keys: Path, policy: CompiledPolicy, **gateway_options: Any
) -> AsyncIterator[Harness]:
    """A gateway with a real source system per source partner, stopped on exit.

    ``gateway_options`` go to ``start_gateway`` (a ``clock``, say)."""
    running: dict[str, RunningSource] = {}
    adapters: dict[str, Source] = {}
    for partner, partner_type in SOURCE_PARTNERS.items():
        backend = InMemoryBackend()
        backend.add(SOURCE_RECORDS[partner_type])
        running[partner] = await serve_source(backend)
        adapters[partner_type] = GrpcSource(running[partner].address)
    gateway = await start_gateway(
        gateway_config(db_url, keys), policy=policy, sources=adapters, **gateway_options
    )
    try:
        yield Harness(gateway, keys, running, policy, db_url)
    finally:
        await gateway.stop(grace=None)
        for r in running.values():
            await r.stop(None)
