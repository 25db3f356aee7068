"""The test gateway's configuration and handle, shared by the integration tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from adapters.client import PartnerClient, PartnerCredentials
from adapters.source_server import RunningSource
from gateway.core import CompiledPolicy
from gateway.server.app import Gateway
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
