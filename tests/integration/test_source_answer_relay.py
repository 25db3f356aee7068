"""A relay between the gateway and a source cannot inject or replay a source's answer.

The relay (tests/integration/relay.py) terminates TLS in front of the police's source system
with the police's own certificate, as the partner's ingress would, so the gateway's certificate
pin passes; it reads every answer and may replace it. The gateway's public key is public, so
the relay can seal an answer of its own; what it cannot do is sign one with the police's
registered token key, or make an answer signed for one request count for another.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from adapters.client import PartnerCredentials
from adapters.gateway_keys import GatewayKeys
from adapters.source_server import (
    AnswerSealing,
    InMemoryBackend,
    RunningSource,
    SubjectRecord,
    serve_source,
)
from gateway.api.v1 import source_pb2
from gateway.broker.source_origin import AnswerOrigins
from gateway.broker.sources import SourceUnavailable, Subject
from gateway.broker.submission_gate import SubmissionGate
from gateway.crypto.keyids import pem_certificate_thumbprint
from gateway.crypto.layout import GatewayKeyPaths
from gateway.crypto.memory_provider import MemoryKeyProvider
from gateway.crypto.source_answers import SourceAnswerSigner, VerifyingKey
from gateway.server.app import gateway_client_tls
from gateway.sources.grpc_source import GrpcSource
from gateway.sources.source_certificates import SourceCertificates, probe_context
from tests.integration.relay import tls_relay

LOOKUP = "/ketenpoort.v1.SourceService/LookupSubject"
SUBJECT = Subject(bsn="999990019", name="", date_of_birth="")
FORGED = source_pb2.LookupSubjectContent(known=True, role="informant")


@dataclass(frozen=True)
class _Registered:
    certificates: frozenset[str]
    token_keys: Mapping[str, tuple[str, VerifyingKey]]
    algorithms: frozenset[str] = frozenset({"EdDSA"})
    active: bool = True


@dataclass
class _Setup:
    police: PartnerCredentials
    ggz: PartnerCredentials
    source: RunningSource
    gateway_public: GatewayKeys
    relay_rewrites: list[Callable[[bytes, bytes], Awaitable[bytes]]]
    gateway_source: GrpcSource | None = None


@pytest.fixture
async def setup(dev_keys: Path, tmp_path: Path) -> AsyncIterator[_Setup]:
    gateway_key = X25519PrivateKey.generate()
    public_file = tmp_path / "hpke.pub.pem"
    public_file.write_bytes(gateway_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    gateway_public = GatewayKeys.from_public_key_file(public_file)
    police = PartnerCredentials.from_key_dir(dev_keys, "police")
    ggz = PartnerCredentials.from_key_dir(dev_keys, "ggz")
    assert police.tls is not None and police.tls.key_pem and police.tls.cert_pem
    backend = InMemoryBackend()
    backend.add(SubjectRecord(SUBJECT.bsn, "suspect", {}))
    source = await serve_source(
        backend,
        credentials=grpc.ssl_server_credentials(
            [(police.tls.key_pem, police.tls.cert_pem)],
            root_certificates=police.tls.ca_pem,
            require_client_auth=True,
        ),
        sealing=AnswerSealing.from_credentials(police, gateway_public),
    )
    registry = {
        "police": _Registered(
            frozenset({pem_certificate_thumbprint(police.tls.cert_pem)}),
            {police.token_key_id: ("EdDSA", police.token_key.public_key())},
        )
    }
    rewrites: list[Callable[[bytes, bytes], Awaitable[bytes]]] = []

    async def rewrite(method: str, request: bytes, response: bytes) -> bytes:
        for step in rewrites if method == LOOKUP else ():
            response = await step(request, response)
        return response

    tls = gateway_client_tls(dev_keys)
    paths = GatewayKeyPaths.under(dev_keys)
    async with tls_relay(
        source.address,
        serve_as=(police.tls.key_pem, police.tls.cert_pem),
        upstream_tls=tls,
        rewrite_response=rewrite,
    ) as relay_address:
        ring = MemoryKeyProvider(hpke_keys=[gateway_key]).hpke_keys()
        gateway_source = GrpcSource(
            relay_address,
            tls,
            partner_id="police",
            answers=SubmissionGate(lambda: ring),
            clear_requests=True,
            origins=AnswerOrigins(lambda: registry, "ketenpoort"),
            certificates=SourceCertificates(
                lambda: registry, probe_context(tls.ca_pem, paths.tls_cert, paths.tls_key)
            ),
        )
        setup = _Setup(police, ggz, source, gateway_public, rewrites, gateway_source)
        try:
            yield setup
        finally:
            await gateway_source.close()
            await source.stop(None)


async def _lookup(setup: _Setup, triage_id: str = "t_1") -> str:
    assert setup.gateway_source is not None
    return (await setup.gateway_source.lookup(SUBJECT, triage_id, timeout_s=5.0)).role


async def _sealed_by_relay(
    setup: _Setup, request: bytes, signer: SourceAnswerSigner | None
) -> bytes:
    # What a relay can make: the forged content sealed to the gateway's public key for this
    # very request, as the police's system, signed with a key it holds (or not at all).
    asked = source_pb2.LookupSubjectRequest.FromString(request)
    sealing = AnswerSealing("police", setup.gateway_public, signer)
    sealed = await sealing.seal(
        "SourceService/LookupSubject", asked.request_id, FORGED, asked.gateway_key_id,
        asked.triage_id,
    )
    return source_pb2.LookupSubjectResponse(sealed=sealed).SerializeToString()


async def test_the_genuine_answer_passes_the_relay(setup: _Setup) -> None:
    async def look(_request: bytes, response: bytes) -> bytes:
        return response

    setup.relay_rewrites[:] = [look]
    assert await _lookup(setup) == "suspect"


@pytest.mark.parametrize(
    "signed_by", [None, "ggz", "ggz-as-police"],
    ids=["unsigned", "ggz-key", "ggz-key-under-the-police-kid"],
)
async def test_an_answer_the_relay_made_itself_is_refused(
    setup: _Setup, signed_by: str | None
) -> None:
    signer = None
    if signed_by is not None:
        kid = setup.ggz.token_key_id if signed_by == "ggz" else setup.police.token_key_id
        signer = SourceAnswerSigner(setup.ggz.token_key, kid)

    async def forge(request: bytes, _response: bytes) -> bytes:
        return await _sealed_by_relay(setup, request, signer)

    setup.relay_rewrites[:] = [forge]
    with pytest.raises(SourceUnavailable):
        await _lookup(setup)


async def test_a_genuine_answer_replayed_for_another_request_is_refused(setup: _Setup) -> None:
    kept: list[bytes] = []

    async def keep_first(_request: bytes, response: bytes) -> bytes:
        kept.append(response)
        return kept[0]

    setup.relay_rewrites[:] = [keep_first]
    assert await _lookup(setup, "t_1") == "suspect"
    with pytest.raises(SourceUnavailable):
        await _lookup(setup, "t_1")  # the same question again: another request id
    with pytest.raises(SourceUnavailable):
        await _lookup(setup, "t_2")
    assert len(kept) == 3
