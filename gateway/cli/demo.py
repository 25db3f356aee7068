"""`ketenpoort demo`: three ZVH cases played through a real gateway.

It starts a gateway on the embedded default (SQLite, shipped policies, fresh development
keys) with mutual TLS, starts the source systems of the partners that hold fields (police,
OM, child protection, prison service, GGZ, addiction care, Veilig Thuis, municipality,
housing corporation), each serving what it holds about the persons of the cases through the
source contract, leaves probation's system down, and lets the partners and the ZVH's process
director work three cases through the client library. The police, GGZ, the municipality and
the housing corporation answer through the partner-side source runtime in front of a REST
API, a FHIR R4 server, a SQLite database and a CSV drop (gateway.cli.demo_sources); the
others through the in-memory test system. The cases:

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
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path

import grpc

from adapters.client import PartnerClient, PartnerCredentials
from adapters.gateway_keys import GatewayKeys
from adapters.source_requests import RequestOpening, SourceKeyRing
from adapters.source_server import AnswerSealing, InMemoryBackend, RunningSource, serve_source
from gateway.cli import demo_code_rood, demo_drang, demo_trafficking
from gateway.cli.demo_checks import Checks, Demo
from gateway.cli.demo_data import CASE_RECORDS
from gateway.cli.demo_plan import PlanCalls
from gateway.cli.demo_sources import RuntimeSources, SourceSetupFailed
from gateway.cli.demo_table import print_table
from gateway.core import CompiledPolicy
from gateway.crypto.devkeys import init_dev_keys, load_partner_private_keys
from gateway.crypto.keystore import Keystore
from gateway.crypto.layout import GatewayKeyPaths
from gateway.crypto.source_answers import SourceAnswerSigner
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
IN_MEMORY = "in-memory test system (the source contract served directly)"
# How long the gateway gives a source. The runtimes' systems answer on loopback in
# milliseconds; the margin is for a busy CI machine (the down source fails at once: refused).
SOURCE_DEADLINE_S = 1.0
# The plan monitor looks often, so that the demo's overdue action is told within a second.
MONITOR_INTERVAL_S = 0.2


async def run_demo(
    data_dir: Path | None = None,
    expect: CompiledPolicy | None = None,
    mappings: Mapping[str, str] | None = None,
) -> int:
    """Play the three cases; 0 when every answer was as the policy says. ``expect`` is the
    policy the answers are checked against (default: the shipped one the gateway runs);
    ``mappings`` replaces a runtime partner's mapping file text (partner id -> YAML)."""
    with _workdir(data_dir) as work:
        try:
            async with running_demo(work, expect, mappings) as demo:
                return await _play(demo)
        except SourceSetupFailed as exc:
            print(f"demo FAILED: {exc}")
            return 1


async def _play(demo: Demo) -> int:
    for play in (demo_code_rood.play, demo_drang.play, demo_trafficking.play):
        await play(demo)
    demo.checks.check(
        _asked_sealed(demo),
        "every source asked was asked sealed to its partner's registered key: "
        "no BSN or name in clear on the way",
    )
    leaking = demo.runtimes.access_logs_hold(_source_values())
    demo.checks.check(
        not leaking,
        "the source runtimes' access logs name field ids and outcomes, never an identifier "
        "or a value" + (f" (not so: {', '.join(leaking)})" if leaking else ""),
    )
    _print_who_answered(demo)
    for case in demo.cases:
        print_table(case, demo.policy)
    ok = demo.checks.all_ok
    passed = sum(1 for good, _ in demo.checks.results if good)
    print(f"\n{passed} passed, {len(demo.checks.results) - passed} failed")
    print("demo " + ("succeeded: every step behaved as the policy says" if ok else "FAILED"))
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
async def running_demo(
    work: Path, expect: CompiledPolicy | None = None, mappings: Mapping[str, str] | None = None
) -> AsyncIterator[Demo]:
    policy = load_policy_dir(shipped_policy_dir())
    keys = work / "keys"
    init_dev_keys(keys, sorted(policy.partners))
    register_dev_partners(keys, work / "registry", sorted(policy.partners))
    checks = Checks()
    backends = {t: _backend(t) for t in CASE_RECORDS if t != policy.partner(DOWN_PARTNER).type}
    async with AsyncExitStack() as stack:
        runtimes = RuntimeSources(work / "sources", keys, policy, CASE_RECORDS, mappings)
        stack.push_async_callback(runtimes.stop)
        print("The partners' source runtimes: `ketenpoort source check` on each one's files")
        runtimes.prepare()
        if not runtimes.check(checks):
            raise SourceSetupFailed("a partner's mapping did not pass `ketenpoort source check`")
        await runtimes.start()
        sources: dict[str, RunningSource] = {}
        for p in SOURCE_PARTNERS:
            runtime = runtimes.sources[p].runtime if p in runtimes.sources else None
            if runtime is not None:
                sources[p] = runtime.source
            else:
                sources[p] = await _start_source(keys, p, backends[policy.partner(p).type])
                stack.push_async_callback(sources[p].stop)
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
            source_deadline_s=SOURCE_DEADLINE_S,
            sources=tuple(endpoints),
            # Every partner system here seals what it sends in; anything in clear is refused.
            require_sealed_submissions=True,
            # And every source is asked sealed to its partner's registered key.
            seal_source_requests=True,
            plan_monitor_interval_s=MONITOR_INTERVAL_S,
            case_event_poll_s=MONITOR_INTERVAL_S,
        )
        gateway = await start_gateway(config, policy=policy)
        stack.push_async_callback(gateway.stop)
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
        for client in clients.values():
            stack.push_async_callback(client.close)
        plan = {p: PlanCalls(address, clients[p]) for p in ("zvh", "ggz", "police")}
        for calls in plan.values():
            stack.push_async_callback(calls.close)
        print(
            f"gateway on {address} (mutual TLS), policy {policy.version[:19]}…; each partner "
            "system answers it through the source contract, over mutual TLS, sealed:"
        )
        for p in SOURCE_PARTNERS:
            print(f"  {p:<15} {_system_of(runtimes, p)}")
        print(f"  {DOWN_PARTNER:<15} down (nothing listens on its address)")
        yield Demo(
            gateway=gateway, policy=expect or policy, clients=clients, claims=dict(CLAIMS),
            plan=plan, sources=sources, backends=backends, down_partner=DOWN_PARTNER,
            pseudonym_key=Keystore.open(keys).pseudonym_key, runtimes=runtimes, checks=checks,
        )


def _system_of(runtimes: RuntimeSources, partner_id: str) -> str:
    source = runtimes.sources.get(partner_id)
    return source.describe() if source is not None else IN_MEMORY


def _print_who_answered(demo: Demo) -> None:
    """Per partner, which kind of system answered the gateway, and how often."""
    print("\nWho answered the gateway:")
    for p in SOURCE_PARTNERS:
        servicer = demo.sources[p].servicer
        source = demo.runtimes.sources.get(p)
        kind = f"its {source.system_kind}, through the source runtime" if source else IN_MEMORY
        system = f"; {source.requests()}" if source is not None else ""
        print(f"  {p:<15} {kind}: {len(servicer.seen)} field requests, "
              f"{servicer.lookups} lookups{system}")


def _source_values() -> list[str]:
    """Identifiers and values the partners' systems hold: none may reach an access log."""
    values: set[str] = set()
    for records in CASE_RECORDS.values():
        for r in records:
            values.update((r.bsn, r.name, r.date_of_birth, r.postcode, *r.fields.values()))
    return sorted(v for v in values if len(v) > 3)


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

