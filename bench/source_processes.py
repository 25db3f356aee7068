"""The processes of the source adapter benchmark: a partner's system, the source runtime in
front of it, in-memory sources, and gateways whose sources are configured as in production.

Each runs in its own process (``TargetProcess.spawn``, see targets.py) and speaks the same
pipe protocol: ``("ready", port)`` or ``("error", text)``, then commands until ``("stop",)``,
answered by ``("stopped", info)``.

Everything that crosses the pipe is plain data (paths, strings, dicts), so the processes can
be spawned; each builds its own servers, keys and credentials from files.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from source_systems import FHIR_TOKEN
from targets import _guard, _serve_commands, record_from_dict


@dataclass(frozen=True)
class GatewaySources:
    """A gateway with its sources configured by address ([[sources]] in its TOML), asked
    sealed, its answers signed and its connections pinned, as a deployed gateway does."""

    database_url: str
    keys_dir: Path
    registry_dir: Path
    data_dir: Path  # this gateway's own: its checkpoint file is not shared with the others
    sources: tuple[tuple[str, str], ...]  # (partner id, host:port)


def run_fhir_server(conn: Connection, records: list[dict[str, Any]], patients: int) -> None:
    """The GGZ provider's FHIR R4 server (gateway/demo_systems/fhir_server.py), holding the
    given records and ``patients`` other clients, each with a Patient, a Condition, an
    EpisodeOfCare and a CarePlan."""
    try:
        from gateway.demo_systems.fhir_server import FhirServer, ggz_client
        from gateway.demo_systems.seeds import ggz_resources

        server = FhirServer(token=FHIR_TOKEN)
        server.add(*ggz_resources([record_from_dict(r) for r in records]))
        for i in range(patients):
            server.add(*ggz_client(
                patient_id=f"other-{i}", bsn=f"8{i:08d}", given=["Client"], family=f"Nr{i}",
                birth_date="1980-01-01", diagnosis="Adjustment disorder",
                episode_status="active", care_team="Outpatient team Hengelo",
            ))
        server.start()
    except Exception:
        import traceback

        conn.send(("error", traceback.format_exc()))
        raise
    conn.send(("ready", int(server.http.address.rsplit(":", 1)[1])))
    while conn.recv()[0] != "stop":
        conn.send(("done",))
    requests = dict(server.counts)
    server.stop()
    conn.send(("stopped", {"requests": requests}))


def run_runtime(conn: Connection, config_path: Path) -> None:
    """``ketenpoort source serve --config config_path`` (without its metrics endpoint): the
    adapter the mapping names behind mutual TLS, opening sealed queries and sealing and
    signing its answers to the gateway's key."""
    asyncio.run(_guard(conn, _runtime_main(conn, config_path)))


async def _runtime_main(conn: Connection, config_path: Path) -> None:
    from adapters.source_runtime.config import load_config
    from adapters.source_runtime.service import start_runtime

    running = await start_runtime(load_config(config_path), serve_metrics=False)
    conn.send(("ready", running.port))
    await _serve_commands(conn)
    await running.stop(None)
    conn.send(("stopped", {}))


def run_memory_source(
    conn: Connection, keys_dir: Path, partner: str, record: dict[str, Any], sealed: bool
) -> None:
    """A source serving ``record`` from memory over mutual TLS with ``partner``'s certificate.
    ``sealed``: as the source runtime serves (sealed queries, sealed and signed answers), so
    that a gateway configured for it works exactly as for the runtime; otherwise clear
    queries and clear answers, the bare gRPC round trip."""
    asyncio.run(_guard(conn, _memory_main(conn, keys_dir, partner, record, sealed)))


async def _memory_main(
    conn: Connection, keys_dir: Path, partner: str, record: dict[str, Any], sealed: bool
) -> None:
    import grpc

    from adapters.client import PartnerCredentials
    from adapters.gateway_keys import GatewayKeys
    from adapters.source_requests import RequestOpening
    from adapters.source_server import AnswerSealing, InMemoryBackend, serve_source
    from gateway.crypto.layout import GatewayKeyPaths

    backend = InMemoryBackend()
    backend.add(record_from_dict(record))
    own = PartnerCredentials.from_key_dir(keys_dir, partner)
    material = own.tls
    assert material is not None and material.key_pem and material.cert_pem
    tls = grpc.ssl_server_credentials(
        [(material.key_pem, material.cert_pem)], root_certificates=material.ca_pem,
        require_client_auth=True,
    )
    if sealed:
        gateway_keys = GatewayKeys.from_public_key_file(GatewayKeyPaths.under(keys_dir).hpke_pub)
        running = await serve_source(
            backend, credentials=tls,
            sealing=AnswerSealing.from_credentials(own, gateway_keys),
            requests=RequestOpening.from_credentials(own),
        )
    else:
        running = await serve_source(backend, credentials=tls, clear_answers=True)
    conn.send(("ready", running.port))
    await _serve_commands(conn)
    fetches = len(running.servicer.seen)
    await running.stop(None)
    conn.send(("stopped", {"fetches": fetches}))


def run_gateway_with_sources(conn: Connection, spec: GatewaySources) -> None:
    asyncio.run(_guard(conn, _gateway_main(conn, spec)))


async def _gateway_main(conn: Connection, spec: GatewaySources) -> None:
    from gateway.server.app import start_gateway
    from gateway.server.config import (
        GatewayConfig,
        SourceEndpoint,
        TlsMode,
        shipped_policy_dir,
    )
    from gateway.server.limit_settings import LimitSettings

    config = GatewayConfig(
        listen="127.0.0.1:0",
        database_url=spec.database_url,
        policy_dir=shipped_policy_dir(),
        keys_dir=spec.keys_dir,
        data_dir=spec.data_dir,
        registry_dir=spec.registry_dir,
        checkpoint_dir=spec.data_dir / "checkpoints",
        # Production: mutual TLS to clients and sources, tokens bound to the certificate.
        tls_mode=TlsMode.MUTUAL,
        certificate_bound_tokens=True,
        metrics_port=None,
        # The benchmark measures latency, not the per-partner call limits.
        limits=LimitSettings.lifted(),
        # No sources= override: the gateway connects its configured sources itself (sealed
        # requests, signed answers, pinned certificates, a breaker each).
        sources=tuple(SourceEndpoint(partner, address) for partner, address in spec.sources),
    )
    gateway = await start_gateway(config)
    conn.send(("ready", gateway.port))
    await _serve_commands(conn)
    info = {"log_records": gateway.log.records_committed}
    await gateway.stop(grace=None)
    conn.send(("stopped", info))
