"""A source system must be the partner it is configured as, and its answers must prove it.

An impostor serving as the police's source with ggz's certificate, or a police source whose
answers are signed with another partner's key or not at all, must not get a value, or a
forged triage role, to the caller: the source counts as unavailable, the answer says it is
incomplete, and a log line tells the operator why.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import load_pem_x509_certificate

from adapters.client import PartnerClient, PartnerCredentials
from adapters.source_server import InMemoryBackend, SubjectRecord, serve_source
from gateway.api.v1 import common_pb2
from gateway.broker.sources import SourceUnavailable, Subject
from gateway.cli.demo_data import SUBJECT
from gateway.core import CompiledPolicy
from gateway.crypto import _certs
from gateway.crypto._pem import load_certificate, load_ec_private_key
from gateway.crypto.keyids import certificate_thumbprint
from gateway.crypto.layout import CaPaths, GatewayKeyPaths
from gateway.registry.edits import revoke_certificate
from gateway.registry.files import entry_path, read_entry, write_entry
from gateway.server.app import gateway_client_tls
from gateway.sources.grpc_source import GrpcSource
from gateway.sources.source_certificates import (
    CertificateNotRegistered,
    SourceCertificates,
    probe_context,
)
from tests.integration.harness import Harness, running_harness
from tests.integration.helpers import accept, register

FORGED_ROLE = "informant"
POLICE_FIELD = "police.weapon_flag"


@asynccontextmanager
async def _harness(
    db_url: str, keys: Path, policy: CompiledPolicy, **impostor: dict[str, str]
) -> AsyncIterator[Harness]:
    async with running_harness(db_url, keys, policy, **impostor) as harness:
        # What the police's source would say if it were asked: a role the police never gave.
        backend = harness.sources["police"].servicer.backend
        assert isinstance(backend, InMemoryBackend)
        backend.add(SubjectRecord(SUBJECT.bsn, FORGED_ROLE, {POLICE_FIELD: "no weapons"}))
        yield harness


async def _triage_case(harness: Harness) -> tuple[str, PartnerClient]:
    police, director = harness.client("police"), harness.client("zvh")
    case_id = await register(police)
    await accept(director, case_id)
    await director.change_phase(case_id, "registration", "triage")
    return case_id, director


async def _the_police_source_counts_as_unavailable(harness: Harness) -> None:
    case_id, director = await _triage_case(harness)
    triage = await director.triage(case_id)
    hits = {h.partner_type: h for h in triage.hits}
    assert not hits["police"].answered and not hits["police"].known
    assert all(h.role != FORGED_ROLE for h in triage.hits)
    assert triage.incomplete
    # The other sources answered as ever.
    assert hits["ggz"].answered

    await director.change_phase(case_id, "triage", "case_meeting")
    answer = await harness.client("police").request_disclosure(
        case_id, "analysis_and_plan", "case_meeting"
    )
    assert answer.response.incomplete and "police" in answer.response.unavailable_sources
    assert POLICE_FIELD not in answer.values
    outcome = answer.outcomes[POLICE_FIELD]
    assert outcome.availability == common_pb2.AVAILABILITY_SOURCE_UNAVAILABLE


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "ketenpoort.sources" and r.levelno >= logging.WARNING]


async def test_a_source_presenting_another_partners_certificate_is_not_asked(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ketenpoort.sources")
    async with _harness(
        db_url, dev_keys, shipped_policy, presented_certificates={"police": "ggz"}
    ) as harness:
        await _the_police_source_counts_as_unavailable(harness)
        impostor = harness.sources["police"].servicer
        # Not even asked: the subject's identity never reached it.
        assert impostor.lookups == 0 and impostor.seen == []
        assert harness.wire["police"].requests == []
    refused = [m for m in _warnings(caplog)
               if "presented a certificate not registered to police" in m]
    assert refused and all("registered to ggz" in m for m in refused)


async def test_an_answer_signed_with_another_partners_key_is_refused(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ketenpoort.sources")
    async with _harness(
        db_url, dev_keys, shipped_policy, answer_signers={"police": "ggz"}
    ) as harness:
        await _the_police_source_counts_as_unavailable(harness)
        # This time the source was asked (its certificate is the police's), and not believed.
        assert harness.sources["police"].servicer.lookups == 1
    assert any("answer of police's source was refused: it is signed with a key not "
               "registered to the partner" in m for m in _warnings(caplog))


async def test_an_unsigned_answer_is_refused(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ketenpoort.sources")
    async with _harness(db_url, dev_keys, shipped_policy, answer_signers={"police": ""}) as harness:
        await _the_police_source_counts_as_unavailable(harness)
    assert any("answer of police's source was refused: it is not signed" in m
               for m in _warnings(caplog))


async def test_the_genuine_sources_answer_and_a_revoked_certificate_ends_the_pin(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy
) -> None:
    async with running_harness(db_url, dev_keys, shipped_policy) as harness:
        case_id, director = await _triage_case(harness)
        triage = await director.triage(case_id)
        assert not triage.incomplete and all(h.answered for h in triage.hits)
        police_source = harness.gateway.sources["police"]
        assert isinstance(police_source, GrpcSource)
        thumbprint = police_source.pinned_certificate
        assert thumbprint in harness.gateway.registry.partners["police"].certificates
        asked = harness.sources["police"].servicer.lookups

        # The certificate the police's source presents is revoked: from the next call on the
        # source is not asked (it still presents the revoked one).
        path = entry_path(harness.registry, "police")
        entry = revoke_certificate(read_entry(path), thumbprint, datetime.now(UTC))
        write_entry(harness.registry, entry)
        await harness.gateway.reload_registry()
        again = await director.triage(case_id)
        hits = {h.partner_type: h for h in again.hits}
        assert again.incomplete and not hits["police"].answered and hits["ggz"].answered
        assert harness.sources["police"].servicer.lookups == asked


def _police_certificate(keys: Path) -> tuple[bytes, bytes]:
    """A further certificate of the police's from the development CA, naming 127.0.0.1."""
    ca = CaPaths.under(keys)
    key = _certs.new_tls_key()
    cert = _certs.build_client_cert(
        load_certificate(ca.cert), load_ec_private_key(ca.key), key, "police",
        datetime.now(UTC), ip_addresses=("127.0.0.1",),
    )
    return (
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()),
        cert.public_bytes(serialization.Encoding.PEM),
    )


@dataclass(frozen=True)
class _Registered:
    certificates: frozenset[str]


async def test_a_source_moving_to_a_newly_registered_certificate_is_pinned_again(
    dev_keys: Path,
) -> None:
    # The pin follows the registry: a source that restarts with another certificate of its
    # partner's is asked again once that certificate is registered, and not while it is not.
    old = PartnerCredentials.from_key_dir(dev_keys, "police").tls
    assert old is not None and old.key_pem and old.cert_pem
    new_key, new_cert = _police_certificate(dev_keys)
    thumb = {pem: certificate_thumbprint(load_pem_x509_certificate(pem).public_bytes(
        serialization.Encoding.DER)) for pem in (old.cert_pem, new_cert)}
    registry = {"police": _Registered(frozenset({thumb[old.cert_pem], thumb[new_cert]}))}
    paths = GatewayKeyPaths.under(dev_keys)
    pinning = SourceCertificates(
        lambda: registry,
        probe_context(old.ca_pem, paths.tls_cert, paths.tls_key),
        retry_after_s=0.0,
    )
    backend = InMemoryBackend()
    backend.add(SubjectRecord(SUBJECT.bsn, "suspect", {}))

    def serving(key_pem: bytes, cert_pem: bytes) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(key_pem, cert_pem)], root_certificates=old.ca_pem, require_client_auth=True
        )

    running = await serve_source(backend, credentials=serving(old.key_pem, old.cert_pem),
                                 clear_answers=True)
    source = GrpcSource(running.address, gateway_client_tls(dev_keys), partner_id="police",
                        clear_requests=True, certificates=pinning)
    subject = Subject(bsn=SUBJECT.bsn, name="", date_of_birth="")
    try:
        assert (await source.lookup(subject, "t_1", timeout_s=5.0)).known
        assert source.pinned_certificate == thumb[old.cert_pem]

        await running.stop(None)
        running = await serve_source(backend, running.address,
                                     credentials=serving(new_key, new_cert), clear_answers=True)
        with pytest.raises(SourceUnavailable):  # the old pin refuses the new certificate
            await source.lookup(subject, "t_2", timeout_s=5.0)
        assert (await source.lookup(subject, "t_3", timeout_s=5.0)).known
        assert source.pinned_certificate == thumb[new_cert]

        registry["police"] = _Registered(frozenset({thumb[old.cert_pem]}))
        with pytest.raises(CertificateNotRegistered):
            await source.lookup(subject, "t_4", timeout_s=5.0)
        assert running.servicer.lookups == 1  # t_3 only: t_2 and t_4 never reached it
    finally:
        await source.close()
        await running.stop(None)
