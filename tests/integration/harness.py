"""The test gateway's configuration and handle, shared by the integration tests."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from cryptography.hazmat.primitives import serialization
from grpc import aio

from adapters.channels import TlsMaterial, open_channel
from adapters.client import PartnerClient, PartnerCredentials
from adapters.gateway_keys import GatewayKeys
from adapters.source_requests import RequestOpening
from adapters.source_server import AnswerSealing, InMemoryBackend, RunningSource, serve_source
from adapters.tokens import certificate_thumbprint, mint_token
from gateway.broker.sources import Source
from gateway.broker.submission_gate import SubmissionGate
from gateway.cli.demo_data import SOURCE_RECORDS
from gateway.core import CompiledPolicy
from gateway.crypto import _certs
from gateway.crypto._pem import load_certificate, load_ec_private_key
from gateway.crypto.keystore import Keystore
from gateway.crypto.layout import CaPaths, GatewayKeyPaths
from gateway.crypto.source_answers import SourceAnswerSigner
from gateway.registry.dev import register_dev_partners
from gateway.server.app import (
    Gateway,
    gateway_client_tls,
    request_sealer,
    source_certificates,
    source_origins,
    start_gateway,
)
from gateway.server.config import GatewayConfig, TlsMode, shipped_policy_dir
from gateway.server.limit_settings import LimitSettings
from gateway.sources.grpc_source import GrpcSource
from tests.integration.wire_tap import WireTap

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
    registry: Path  # this gateway's own partner registry, free to change in a test
    # partner id -> every request its source received, as serialised on the wire
    wire: dict[str, WireTap] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.gateway.port}"

    def client(self, partner: str, role: str | None = None, **kw: object) -> PartnerClient:
        creds = PartnerCredentials.from_key_dir(self.keys, partner)
        return PartnerClient(self.address, creds, role=role or ROLES[partner], **kw)  # type: ignore[arg-type]

    def credentials(self, partner: str) -> PartnerCredentials:
        return PartnerCredentials.from_key_dir(self.keys, partner)

    def token(self, partner: str = "police", **overrides: object) -> str:
        """A fresh token of ``partner``'s, bound to its certificate; ``overrides`` go to
        mint_token (another key, audience, time, certificate...)."""
        creds = self.credentials(partner)
        assert creds.tls is not None and creds.tls.cert_pem is not None
        args: dict[str, object] = dict(
            partner_id=partner,
            key=creds.token_key,
            key_id=creds.token_key_id,
            audience="ketenpoort",
            role=ROLES.get(partner, "chain_partner"),
            certificate=certificate_thumbprint(creds.tls.cert_pem),
        )
        args.update(overrides)
        return mint_token(**args)  # type: ignore[arg-type]

    def new_client_certificate(self, partner: str) -> TlsMaterial:
        """A further certificate for ``partner`` from the development CA, naming the local
        host as the development ones do (a partner's source serves with it too): trusted by
        TLS, but not in the registry until a test adds it."""
        ca = CaPaths.under(self.keys)
        key = _certs.new_tls_key()
        cert = _certs.build_client_cert(
            load_certificate(ca.cert), load_ec_private_key(ca.key), key, partner,
            datetime.now(UTC), ("localhost",), ("127.0.0.1",),
        )
        return TlsMaterial(
            ca_pem=ca.cert.read_bytes(),
            cert_pem=cert.public_bytes(serialization.Encoding.PEM),
            key_pem=key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )

    def channel(self, partner: str = "police") -> aio.Channel:
        """A mutual-TLS channel presenting ``partner``'s certificate."""
        return open_channel(self.address, self.credentials(partner).tls)

    async def restart_source(self, partner: str, tls: TlsMaterial) -> None:
        """Stop ``partner``'s source system and start it again on the same port, serving
        with ``tls`` (a new certificate) and otherwise as before."""
        running = self.sources[partner]
        servicer = running.servicer
        await running.stop(None)
        assert tls.key_pem and tls.cert_pem
        self.sources[partner] = await serve_source(
            servicer.backend,
            running.address,
            credentials=grpc.ssl_server_credentials(
                [(tls.key_pem, tls.cert_pem)], root_certificates=tls.ca_pem,
                require_client_auth=True,
            ),
            sealing=servicer.sealing,
            requests=servicer.requests,
            interceptors=[self.wire[partner]],
        )


def dev_registry(keys: Path, registry: Path | None = None) -> Path:
    """``registry`` (default: beside ``keys``, DATA_DIR/registry) with an entry for every
    partner that has development keys there."""
    registry = registry or keys.parent / "registry"
    partners = sorted(p.name for p in (keys / "partners").iterdir() if p.is_dir())
    register_dev_partners(keys, registry, partners)
    return registry


def gateway_config(db_url: str, keys: Path, **changes: object) -> GatewayConfig:
    registry = changes.get("registry_dir")
    dev_registry(keys, registry if isinstance(registry, Path) else None)
    # The session shares one key directory: each database gets its own checkpoint files, so
    # one test's checkpoints never meet another test's log.
    own_checkpoints = keys.parent / "checkpoints" / hashlib.sha256(db_url.encode()).hexdigest()[:16]
    base = GatewayConfig(
        listen="127.0.0.1:0",
        database_url=db_url,
        policy_dir=shipped_policy_dir(),
        keys_dir=keys,
        data_dir=keys.parent,
        tls_mode=TlsMode.MUTUAL,
        metrics_port=None,
        source_deadline_s=1.0,
        checkpoint_dir=own_checkpoints,
        # Tests of the call limits set their own; the others must not run into them.
        limits=LimitSettings.lifted(),
    )
    return base.with_overrides(**changes)


@asynccontextmanager
async def running_harness(
    db_url: str,
    keys: Path,
    policy: CompiledPolicy,
    *,
    config_changes: dict[str, Any] | None = None,
    presented_certificates: Mapping[str, str] | None = None,
    answer_signers: Mapping[str, str] | None = None,
    source_partners: Mapping[str, str] = SOURCE_PARTNERS,
    external_sources: Mapping[str, str] | None = None,
    **gateway_options: Any,
) -> AsyncIterator[Harness]:
    """A gateway with a real source system per source partner, stopped on exit.

    ``gateway_options`` go to ``start_gateway`` (a ``clock``, say); ``config_changes`` to
    the gateway's configuration (``limits``, say). The sources seal their
    answers to the gateway's key file; the gateway opens them with its key ring. Gateway and
    sources speak mutual TLS; the gateway seals its requests to each source partner's
    registered sealing key (the registry in force), and each source opens them with its
    partner's private key (``harness.sources[p].servicer.requests.keys``). Each source signs
    its answers with its partner's token key, and the gateway checks the signature and pins the
    connection to a certificate registered to the partner, as a configured gateway does.

    ``presented_certificates`` (partner -> other partner) makes a partner's source present the
    other partner's TLS certificate, ``answer_signers`` sign with the other partner's token key
    (or, given "", not sign at all): impostors, for tests of source identity.

    ``source_partners`` (partner id -> partner type) chooses which source systems run;
    ``external_sources`` (partner id -> address) names partners whose source already runs
    elsewhere (a source runtime, say): the gateway calls it there and no source is started."""
    running: dict[str, RunningSource] = {}
    adapters: dict[str, Source] = {}
    wire: dict[str, WireTap] = {}
    registry = Path(tempfile.mkdtemp(prefix="ketenpoort-registry-"))
    config = gateway_config(db_url, keys, registry_dir=registry, **(config_changes or {}))
    tls = gateway_client_tls(keys)
    gateway_keys = GatewayKeys.from_public_key_file(GatewayKeyPaths.under(keys).hpke_pub)
    # The sources' answers are opened with the serving gateway's own key ring, as the
    # sources a gateway connects from its configuration are, so rotations reach them.
    started: list[Gateway] = []
    answers = SubmissionGate(
        gateway_options.get("hpke_keys") or (lambda: _keystore_of(started).hpke_keys())
    )
    requests = request_sealer(
        config,
        lambda: _gateway_of(started).registry.sealing_keys,
        lambda partner, sealing: _gateway_of(started).metrics.source_request(partner, sealing),
    )
    registered = lambda: _gateway_of(started).registry.partners  # noqa: E731
    origins = source_origins(config, registered)
    certificates = source_certificates(keys, registered)
    presents = dict(presented_certificates or {})
    signs_as = dict(answer_signers or {})
    external = dict(external_sources or {})
    for partner, partner_type in source_partners.items():
        if partner in external:
            adapters[partner_type] = GrpcSource(
                external[partner], tls, partner_id=partner, answers=answers,
                requests=requests, origins=origins, certificates=certificates,
            )
            continue
        backend = InMemoryBackend()
        backend.add(SOURCE_RECORDS[partner_type])
        own = PartnerCredentials.from_key_dir(keys, partner)
        signer_id = signs_as.get(partner, partner)
        signer = PartnerCredentials.from_key_dir(keys, signer_id or partner)
        wire[partner] = WireTap()
        running[partner] = await serve_source(
            backend,
            credentials=_source_tls(
                PartnerCredentials.from_key_dir(keys, presents.get(partner, partner))
            ),
            sealing=AnswerSealing(
                partner,
                gateway_keys,
                # An empty signer: the source answers sealed but unsigned (version 1).
                SourceAnswerSigner(signer.token_key, signer.token_key_id) if signer_id else None,
            ),
            requests=RequestOpening.from_credentials(own),
            interceptors=[wire[partner]],
        )
        adapters[partner_type] = GrpcSource(
            running[partner].address,
            tls,
            partner_id=partner,
            answers=answers,
            requests=requests,
            origins=origins,
            certificates=certificates,
        )
    gateway = await start_gateway(
        config,
        policy=policy,
        sources=adapters,
        **gateway_options,
    )
    started.append(gateway)
    try:
        yield Harness(gateway, keys, running, policy, db_url, registry, wire)
    finally:
        await gateway.stop(grace=None)
        for r in running.values():
            await r.stop(None)
        shutil.rmtree(registry, ignore_errors=True)


def _gateway_of(started: list[Gateway]) -> Gateway:
    assert started, "no source is asked before the start"
    return started[0]


def _source_tls(own: PartnerCredentials) -> grpc.ServerCredentials:
    # A partner's source serves with the partner's certificate and takes only clients the
    # development CA issued (the gateway's among them).
    assert own.tls is not None and own.tls.key_pem and own.tls.cert_pem
    return grpc.ssl_server_credentials(
        [(own.tls.key_pem, own.tls.cert_pem)],
        root_certificates=own.tls.ca_pem,
        require_client_auth=True,
    )


def _keystore_of(started: list[Gateway]) -> Keystore:
    assert started and started[0].keystore is not None, "no source is asked before the start"
    return started[0].keystore
