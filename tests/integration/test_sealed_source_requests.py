"""What the gateway asks partners' source systems travels sealed to the source partner's
registered sealing key, over real mutual TLS on loopback: disclosures and triage work, nothing
of the subject is in the bytes a proxy terminating TLS in front of a source would read, a
partner's key rotation reaches the next request, and a partner without a registered key is
asked in clear only where the operator allowed it."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from adapters.client import PartnerClient, PartnerCredentials
from adapters.gateway_keys import GatewayKeys
from adapters.source_requests import RequestOpening
from adapters.source_server import AnswerSealing, InMemoryBackend, RunningSource, serve_source
from gateway.api.v1 import common_pb2, source_pb2
from gateway.cli.demo_data import SOURCE_RECORDS, SUBJECT
from gateway.cli.main import main
from gateway.core import CompiledPolicy
from gateway.crypto.keyids import key_id
from gateway.crypto.layout import GatewayKeyPaths
from gateway.registry.files import entry_path, read_entry, write_entry
from gateway.server.app import Gateway, start_gateway
from gateway.server.config import SourceEndpoint
from tests.integration.harness import ROLES, Harness, gateway_config
from tests.integration.helpers import accept, register
from tests.integration.wire_tap import WireTap

PURPOSE, MEETING = "analysis_and_plan", "case_meeting"
# What must never be readable on the way to a source: the subject's identity, and what the
# question says about it (which fields, why).
IDENTITY = (
    SUBJECT.bsn, SUBJECT.name, "de Vries", SUBJECT.date_of_birth, SUBJECT.address,
    SUBJECT.postcode,
)


def fetches(tap: WireTap) -> list[source_pb2.FetchFieldsRequest]:
    return [source_pb2.FetchFieldsRequest.FromString(raw) for raw in tap.of("FetchFields")]


def lookups(tap: WireTap) -> list[source_pb2.LookupSubjectRequest]:
    return [source_pb2.LookupSubjectRequest.FromString(raw) for raw in tap.of("LookupSubject")]


def sample(gateway: Gateway, partner: str, sealing: str) -> float:
    value = gateway.metrics.registry.get_sample_value(
        "ketenpoort_source_requests_total", {"partner": partner, "sealing": sealing}
    )
    return value or 0.0


async def test_a_disclosure_and_a_triage_reach_every_source_sealed(harness: Harness) -> None:
    police, director = harness.client("police"), harness.client("zvh")
    case_id = await register(police, ("zvh", "ggz"))
    await accept(director, case_id)
    await director.change_phase(case_id, "registration", "triage")
    triage = await director.triage(case_id)
    hits = {h.partner_type: h for h in triage.hits}
    for partner_type in SOURCE_RECORDS:
        assert hits[partner_type].answered and hits[partner_type].known, partner_type
    await director.change_phase(case_id, "triage", MEETING)
    answer = await director.request_disclosure(case_id, PURPOSE, MEETING)

    assert not answer.response.incomplete
    disclosed = [
        f.field for f in answer.response.fields
        if f.source == "ggz" and f.outcome == common_pb2.OUTCOME_DISCLOSED
    ]
    assert disclosed, "the ZVH receives GGZ fields in a case meeting"
    for field_id in disclosed:
        assert answer.values[field_id] == SOURCE_RECORDS["ggz"].fields[field_id]
    registered = harness.gateway.registry.sealing_keys
    for partner, tap in harness.wire.items():
        key = registered[partner].key_id
        (lookup,) = lookups(tap)
        assert lookup.HasField("sealed") and not lookup.HasField("subject")
        assert lookup.sealed.recipient_key_id == key and lookup.triage_id == triage.triage_id
        for fetch in fetches(tap):
            assert fetch.HasField("sealed") and fetch.sealed.recipient_key_id == key
            assert not fetch.HasField("subject") and not fetch.fields
            assert not fetch.purpose and not fetch.recipient_id
            assert fetch.disclosure_id == answer.response.disclosure_id
        keys = harness.sources[partner].servicer.requests
        assert keys is not None and keys.keys.last_used(key) is not None
        assert sample(harness.gateway, partner, "sealed") == 1 + len(fetches(tap))
    # The source read the whole question once opened, and can account for what it supplied.
    (seen,) = harness.sources["ggz"].servicer.seen
    assert (seen.disclosure_id, seen.purpose, seen.recipient_id) == (
        answer.response.disclosure_id, PURPOSE, "zvh",
    )
    assert set(seen.fields) == set(SOURCE_RECORDS["ggz"].fields)


async def test_nothing_of_the_subject_crosses_the_wire_to_a_source(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    police, director = harness.client("police"), harness.client("zvh")
    case_id = await register(police, ("zvh", "ggz"))
    await accept(director, case_id)
    await director.change_phase(case_id, "registration", "triage")
    await director.triage(case_id)
    await director.change_phase(case_id, "triage", MEETING)
    await director.request_disclosure(case_id, PURPOSE, MEETING)
    await police.request_disclosure(case_id, PURPOSE, MEETING)

    received = [raw for tap in harness.wire.values() for _, raw in tap.requests]
    assert len(received) > 2 * len(harness.wire), "every source was asked"
    asked_for = {f for s in harness.sources.values() for seen in s.servicer.seen
                 for f in seen.fields}
    assert "ggz.diagnosis" in asked_for
    secret = [*IDENTITY, PURPOSE, *sorted(asked_for)]
    for raw in received:
        for text in secret:
            assert text.encode() not in raw, f"{text!r} crossed the wire in clear"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for text in IDENTITY:
        assert text not in logged


async def test_a_rotated_partner_key_is_sealed_to_from_the_next_request(
    harness: Harness, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    opening = harness.sources["ggz"].servicer.requests
    assert opening is not None
    ring, tap = opening.keys, harness.wire["ggz"]
    old = harness.gateway.registry.sealing_keys["ggz"].key_id
    police, director = harness.client("police"), harness.client("zvh")
    case_id = await register(police, ("zvh", "ggz"))
    await accept(director, case_id)
    await director.change_phase(case_id, "registration", "triage")
    await director.triage(case_id)
    assert lookups(tap)[-1].sealed.recipient_key_id == old

    # The partner gives its source the new private key first, then registers the public one.
    new = X25519PrivateKey.generate()
    new_id = ring.add(new)
    assert _cli(harness, "rotate", "ggz", "--sealing-key", _pem(tmp_path, new)) == 0
    assert await harness.gateway.reload_registry() == "applied"
    last_old = ring.last_used(old)

    again = await director.triage(case_id)
    assert {h.partner_type: h for h in again.hits}["ggz"].known
    assert lookups(tap)[-1].sealed.recipient_key_id == new_id
    await director.change_phase(case_id, "triage", MEETING)
    answer = await director.request_disclosure(case_id, PURPOSE, MEETING)
    assert not answer.response.incomplete
    assert fetches(tap)[-1].sealed.recipient_key_id == new_id
    assert ring.last_used(old) == last_old  # nothing names the old key any more

    # So the source drops the old key, and still answers.
    ring.remove(old)
    assert not (await director.request_disclosure(case_id, PURPOSE, MEETING)).response.incomplete

    # A source without the key the request names refuses it; the gateway does not fall back
    # to clear, reports the source unavailable, and tells the operator why.
    ring.remove(new_id)
    caplog.set_level(logging.WARNING, logger="ketenpoort.sources")
    down = await director.request_disclosure(case_id, PURPOSE, MEETING)
    assert list(down.response.unavailable_sources) == ["ggz"]
    assert any(
        "ggz" in r.getMessage() and "source_key_unknown" in r.getMessage()
        for r in caplog.records
    )
    assert all(f.HasField("sealed") for f in fetches(tap))


@asynccontextmanager
async def configured_gateway(
    tmp_path: Path, keys: Path, policy: CompiledPolicy
) -> AsyncIterator[tuple[Gateway, dict[str, RunningSource], dict[str, WireTap]]]:
    """A gateway that connects its sources from its configuration, as `ketenpoort serve` does:
    police's source opens sealed requests; housing and the municipality have no registered
    sealing key, and only housing's [[sources]] entry allows clear requests."""
    registry = Path(tempfile.mkdtemp(prefix="ketenpoort-registry-"))
    config = gateway_config(f"sqlite:///{tmp_path / 'gateway.db'}", keys, registry_dir=registry)
    for partner in ("housing", "municipality"):
        entry = read_entry(entry_path(registry, partner))
        write_entry(registry, dataclasses.replace(entry, sealing_keys=(), current_sealing=""))
    gateway_keys = GatewayKeys.from_public_key_file(GatewayKeyPaths.under(keys).hpke_pub)
    running: dict[str, RunningSource] = {}
    taps: dict[str, WireTap] = {}
    for partner in ("police", "housing", "municipality"):
        own = PartnerCredentials.from_key_dir(keys, partner)
        assert own.tls is not None and own.tls.key_pem and own.tls.cert_pem
        backend = InMemoryBackend()
        backend.add(SOURCE_RECORDS[policy.partner(partner).type])
        taps[partner] = WireTap()
        running[partner] = await serve_source(
            backend,
            credentials=grpc.ssl_server_credentials(
                [(own.tls.key_pem, own.tls.cert_pem)],
                root_certificates=own.tls.ca_pem,
                require_client_auth=True,
            ),
            sealing=AnswerSealing.from_credentials(own, gateway_keys),
            # Housing's system cannot open sealed requests yet.
            requests=None if partner == "housing" else RequestOpening.from_credentials(own),
            interceptors=[taps[partner]],
        )
    config = config.with_overrides(
        sources=tuple(
            SourceEndpoint(p, s.address, allow_clear_requests=p == "housing")
            for p, s in running.items()
        )
    )
    gateway = await start_gateway(config, policy=policy)
    try:
        yield gateway, running, taps
    finally:
        await gateway.stop(grace=None)
        for source in running.values():
            await source.stop(None)
        shutil.rmtree(registry, ignore_errors=True)


async def test_without_a_registered_key_a_source_is_asked_in_clear_only_where_allowed(
    tmp_path: Path, dev_keys: Path, shipped_policy: CompiledPolicy
) -> None:
    async with configured_gateway(tmp_path, dev_keys, shipped_policy) as (gateway, _, taps):
        address = f"127.0.0.1:{gateway.port}"
        clients = [
            PartnerClient(address, PartnerCredentials.from_key_dir(dev_keys, p), role=ROLES[p])
            for p in ("police", "zvh")
        ]
        police, director = clients
        case_id = await register(police, ("zvh",))
        await accept(director, case_id)
        await director.change_phase(case_id, "registration", "triage")
        hits = {h.partner_type: h for h in (await director.triage(case_id)).hits}
        for client in clients:
            await client.close()

    assert hits["police"].answered and hits["police"].known
    assert hits["housing_corporation"].answered and hits["housing_corporation"].known
    assert not hits["municipality"].answered  # not asked: deny by default
    assert taps["municipality"].requests == []
    (police_lookup,) = lookups(taps["police"])
    assert police_lookup.HasField("sealed") and SUBJECT.bsn.encode() not in (
        police_lookup.SerializeToString()
    )
    (housing_lookup,) = lookups(taps["housing"])
    # Asked in clear where allowed, and even then with only what the policy lets the landlord
    # hold: the name and address, never the BSN.
    assert not housing_lookup.HasField("sealed") and housing_lookup.subject.bsn == ""
    assert housing_lookup.subject.name == SUBJECT.name
    assert sample(gateway, "police", "sealed") == 1
    assert sample(gateway, "housing", "clear_allowed") == 1
    assert sample(gateway, "municipality", "no_sealing_key") == 1


def _cli(harness: Harness, *args: str) -> int:
    return main(["partner", *args, "--registry", str(harness.registry), "--db", harness.db_url])


def _pem(directory: Path, key: X25519PrivateKey) -> str:
    path = directory / f"{key_id(key.public_key())}.pub.pem"
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return str(path)
