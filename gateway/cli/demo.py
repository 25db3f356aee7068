"""`ketenpoort demo`: three ZVH cases played through a real gateway.

It starts a gateway on the embedded default (SQLite, shipped policies, fresh development
keys) with mutual TLS, starts the source systems of the partners that hold fields (police,
OM, child protection, prison service, GGZ, addiction care, Veilig Thuis, municipality,
housing corporation), each serving what it holds about the persons of the cases through the
source contract, leaves probation's system down, and lets the partners and the ZVH's process
director work three cases through the client library:

1. Code Rood (gateway.cli.demo_code_rood): a family of four, from registration to closure;
2. Drang en dwang (gateway.cli.demo_drang): a repeat offender at the justice core table;
3. Mensenhandel (gateway.cli.demo_trafficking): a presumed victim without a BSN.

Every answer is opened with the recipient's key and checked against what the policy says,
person by person and value by value (gateway.cli.demo_checks); the demo exits 0 only if
every step did.
"""

from __future__ import annotations

import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import grpc

from adapters.client import PartnerClient, PartnerCredentials
from adapters.gateway_keys import GatewayKeys
from adapters.source_requests import RequestOpening, SourceKeyRing
from adapters.source_server import AnswerSealing, InMemoryBackend, RunningSource, serve_source
from gateway.cli import demo_code_rood, demo_drang, demo_trafficking
from gateway.cli.demo_checks import Demo
from gateway.cli.demo_data import CASE_RECORDS
from gateway.cli.demo_plan import PlanCalls
from gateway.cli.demo_table import print_table
from gateway.cli.policy_catalogue import catalogue_document
from gateway.core import CompiledPolicy
from gateway.crypto.devkeys import init_dev_keys, load_partner_private_keys
from gateway.crypto.keystore import Keystore
from gateway.crypto.layout import GatewayKeyPaths
from gateway.crypto.source_answers import SourceAnswerSigner
from gateway.demo_systems.runtimes import HTTP_SYSTEMS, start_behind_runtime
from gateway.policyfiles import load_policy_dir
from gateway.registry.dev import register_dev_partners
from gateway.server.app import start_gateway
from gateway.server.config import GatewayConfig, SourceEndpoint, TlsMode, shipped_policy_dir

# Which role each partner's user claims in its token; a regie claim counts on a case only
# for the partner holding that regie (docs/case-lifecycle.md, section 3).
CLAIMS = {
    "zvh": "process_director",
    "municipality": "case_director",
    "police": "case_director",
    "trafficking-care-coordination": "case_director",
    "veilig-thuis": "chain_partner",
    "rvdk": "chain_partner",
    "ggz": "chain_partner",
    "om": "chain_partner",
    "probation": "case_director",
    "housing": "chain_partner",
    "police_avim": "chain_partner",
}
# One partner per partner type that holds fields; its system answers for the whole type.
SOURCE_PARTNERS = (
    "police",
    "om",
    "rvdk",
    "dji",
    "ggz",
    "addiction-care",
    "veilig-thuis",
    "municipality",
    "housing",
)
DOWN_PARTNER = "probation"
# The plan monitor looks often, so that the demo's overdue action is told within a second.
MONITOR_INTERVAL_S = 0.2


async def run_demo(data_dir: Path | None = None, expect: CompiledPolicy | None = None) -> int:
    """Play the three cases; 0 when every answer was as the policy says. ``expect`` is the
    policy the answers are checked against (default: the shipped one the gateway runs)."""
    with _workdir(data_dir) as work:
        async with running_demo(work, expect) as demo:
            for play in (demo_code_rood.play, demo_drang.play, demo_trafficking.play):
                await play(demo)
            demo.checks.check(
                _asked_sealed(demo),
                "every source asked was asked sealed to its partner's registered key: "
                "no BSN or name in clear on the way",
            )
            for case in demo.cases:
                print_table(case, demo.policy)
            ok = demo.checks.all_ok
            passed = sum(1 for good, _ in demo.checks.results if good)
            print(f"\n{passed} passed, {len(demo.checks.results) - passed} failed")
            print(
                "demo " + ("succeeded: every step behaved as the policy says" if ok else "FAILED")
            )
            return 0 if ok else 1


@contextmanager
def _workdir(data_dir: Path | None) -> Iterator[Path]:
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        yield data_dir
        return
    with tempfile.TemporaryDirectory(prefix="ketenpoort-demo-") as tmp:
        yield Path(tmp)


@asynccontextmanager
async def running_demo(work: Path, expect: CompiledPolicy | None = None) -> AsyncIterator[Demo]:
    policy = load_policy_dir(shipped_policy_dir())
    keys = work / "keys"
    init_dev_keys(keys, sorted(policy.partners))
    register_dev_partners(keys, work / "registry", sorted(policy.partners))
    backends = {t: _backend(t) for t in CASE_RECORDS if t != policy.partner(DOWN_PARTNER).type}
    # The police and the GGZ provider answer through the source runtime in front of their own
    # system (a REST service, a FHIR server); the others from memory.
    behind = {
        p: await start_behind_runtime(p, t, CASE_RECORDS[t], keys, work / "sources",
                                      catalogue_document(policy))
        for p in SOURCE_PARTNERS if (t := policy.partner(p).type) in HTTP_SYSTEMS
    }
    sources = {
        p: behind[p].source if p in behind
        else await _start_source(keys, p, backends[policy.partner(p).type])
        for p in SOURCE_PARTNERS
    }
    endpoints = [SourceEndpoint(p, f"localhost:{s.port}") for p, s in sources.items()]
    endpoints.append(SourceEndpoint(DOWN_PARTNER, f"localhost:{_closed_port()}"))
    config = GatewayConfig(
        listen="127.0.0.1:0",
        database_url=f"sqlite:///{work / 'ketenpoort.db'}",
        policy_dir=shipped_policy_dir(),
        keys_dir=keys,
        data_dir=work,
        tls_mode=TlsMode.MUTUAL,
        metrics_port=None,
        source_deadline_s=1.0,
        sources=tuple(endpoints),
        # Every partner system here seals what it sends in; anything in clear is refused.
        require_sealed_submissions=True,
        # And every source is asked sealed to its partner's registered key.
        seal_source_requests=True,
        plan_monitor_interval_s=MONITOR_INTERVAL_S,
        case_event_poll_s=MONITOR_INTERVAL_S,
    )
    gateway = await start_gateway(config, policy=policy)
    address = f"localhost:{gateway.port}"
    clients = {
        partner: PartnerClient(
            address,
            PartnerCredentials.from_key_dir(keys, partner),
            role=role,
            user_ref=f"demo-{partner}-user",
        )
        for partner, role in CLAIMS.items()
    }
    clients["privacy-officer"] = PartnerClient(
        address,
        PartnerCredentials.from_key_dir(keys, "zvh"),
        role="privacy_officer",
        user_ref="demo-fg",
    )
    plan = {p: PlanCalls(address, clients[p]) for p in ("zvh", "ggz", "police")}
    print(
        f"gateway on {address} (mutual TLS), policy {policy.version[:19]}…; "
        f"sources up: {', '.join(SOURCE_PARTNERS)}; down: {DOWN_PARTNER}; through the source "
        "runtime: " + ", ".join(f"{p} ({s.kind})" for p, s in behind.items())
    )
    try:
        yield Demo(
            gateway, expect or policy, clients, dict(CLAIMS), plan, sources, backends,
            DOWN_PARTNER, Keystore.open(keys).pseudonym_key,
        )
    finally:
        for calls in plan.values():
            await calls.close()
        for client in clients.values():
            await client.close()
        await gateway.stop()
        for partner, running in sources.items():
            if partner not in behind:
                await running.stop()
        for system in behind.values():
            await system.stop()


def _backend(partner_type: str) -> InMemoryBackend:
    backend = InMemoryBackend()
    for record in CASE_RECORDS[partner_type]:
        backend.add(record)
    return backend


async def _start_source(keys: Path, partner_id: str, backend: InMemoryBackend) -> RunningSource:
    own = load_partner_private_keys(keys, partner_id)
    creds = grpc.ssl_server_credentials(
        [(own.tls_key_pem, own.tls_cert_pem)],
        root_certificates=own.ca_pem,
        require_client_auth=True,
    )
    # The partner system is configured with the gateway's public key and seals and signs its
    # answers, and with its partner's private sealing key, which opens what the gateway asks it.
    gateway_keys = GatewayKeys.from_public_key_file(GatewayKeyPaths.under(keys).hpke_pub)
    return await serve_source(
        backend,
        "127.0.0.1:0",
        credentials=creds,
        # Signed with the partner's token key: the gateway accepts only answers its registry
        # shows to come from the partner.
        sealing=AnswerSealing(
            partner_id, gateway_keys, SourceAnswerSigner(own.token_key, own.token_key_id)
        ),
        requests=RequestOpening(partner_id, SourceKeyRing([own.hpke_key])),
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _asked_sealed(demo: Demo) -> bool:
    """Each source that was asked opened the gateway's questions with its partner's private
    key; it refuses questions in clear, so every one it answered came sealed."""
    for running in demo.sources.values():
        servicer = running.servicer
        opening = servicer.requests
        if opening is None or opening.accept_clear:
            return False
        asked = bool(servicer.seen) or servicer.lookups > 0
        used = any(opening.keys.last_used(kid) is not None for kid in opening.keys.key_ids)
        if asked and not used:
            return False
    return True

