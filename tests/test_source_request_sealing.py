"""Sealed source requests end to end without a network: the gateway's sealer and its policy,
and the source's reading of what came (adapters.source_requests)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from adapters.source_requests import (
    BOTH_GIVEN,
    REQUEST_NOT_OPENED,
    SEALED_NOT_SUPPORTED,
    SEALING_REQUIRED,
    SOURCE_KEY_UNKNOWN,
    RequestOpening,
    RequestRefused,
    SourceKeyRing,
    fetch_query,
    lookup_query,
)
from gateway.api.v1 import common_pb2, source_pb2
from gateway.broker.context import SealingKey
from gateway.broker.source_requests import (
    RequestSealer,
    SealingKeyMissing,
    SourceRequestPolicy,
)
from gateway.broker.sources import SourceUnavailable
from gateway.crypto.keyids import key_id

FETCH = "SourceService/FetchFields"
LOOKUP = "SourceService/LookupSubject"
SUBJECT = common_pb2.SubjectIdentity(
    bsn="111222333", name="Jan Smit", date_of_birth="1984-03-12", address="Markt 1"
)
QUERY = source_pb2.FetchFieldsQuery(
    subject=SUBJECT, fields=["police.incidents"], purpose="analysis_and_plan", recipient_id="ggz"
)


class Counted:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, partner: str, sealing: str) -> None:
        self.seen.append((partner, sealing))


def registry(**keys: X25519PrivateKey) -> dict[str, SealingKey]:
    return {p: SealingKey(k.public_key(), key_id(k.public_key())) for p, k in keys.items()}


def fetch_request(
    sealer: RequestSealer, partner: str = "police", request_id: str = "f_1"
) -> source_pb2.FetchFieldsRequest:
    request = source_pb2.FetchFieldsRequest(disclosure_id="d_1", request_id=request_id)
    sealed = sealer.seal(partner, FETCH, request_id=request_id, reference="d_1", query=QUERY)
    assert sealed is not None
    request.sealed.CopyFrom(sealed)
    return request


@pytest.fixture
def police_key() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


@pytest.fixture
def opening(police_key: X25519PrivateKey) -> RequestOpening:
    return RequestOpening("police", SourceKeyRing([police_key]))


def test_a_sealed_fetch_opens_at_the_source_and_carries_nothing_in_clear(
    police_key: X25519PrivateKey, opening: RequestOpening
) -> None:
    counted = Counted()
    sealer = RequestSealer(
        lambda: registry(police=police_key), gateway_id="ketenpoort", on_request=counted
    )
    request = fetch_request(sealer)
    wire = request.SerializeToString()
    assert b"111222333" not in wire and b"Jan Smit" not in wire
    assert b"analysis_and_plan" not in wire and b"police.incidents" not in wire
    assert not request.HasField("subject") and not request.fields and not request.purpose
    assert request.sealed.recipient_key_id == key_id(police_key.public_key())
    assert fetch_query(request, opening) == QUERY
    assert counted.seen == [("police", "sealed")]


def test_a_sealed_lookup_opens_bound_to_its_triage_id(
    police_key: X25519PrivateKey, opening: RequestOpening
) -> None:
    sealer = RequestSealer(lambda: registry(police=police_key), gateway_id="ketenpoort")
    query = source_pb2.LookupSubjectQuery(subject=SUBJECT)
    sealed = sealer.seal("police", LOOKUP, request_id="l_1", reference="t_1", query=query)
    assert sealed is not None
    request = source_pb2.LookupSubjectRequest(triage_id="t_1", request_id="l_1", sealed=sealed)
    assert lookup_query(request, opening) == query
    request.triage_id = "t_2"  # rewritten on the way
    with pytest.raises(RequestRefused) as err:
        lookup_query(request, opening)
    assert (err.value.code, err.value.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT, REQUEST_NOT_OPENED,
    )


def test_the_registry_is_asked_on_every_request(police_key: X25519PrivateKey) -> None:
    current: dict[str, Mapping[str, SealingKey]] = {"keys": registry(police=police_key)}
    sealer = RequestSealer(lambda: current["keys"], gateway_id="ketenpoort")
    first = fetch_request(sealer)
    rotated = X25519PrivateKey.generate()
    current["keys"] = registry(police=rotated)
    second = fetch_request(sealer)
    assert first.sealed.recipient_key_id == key_id(police_key.public_key())
    assert second.sealed.recipient_key_id == key_id(rotated.public_key())
    # The source holds both keys during the rotation: each request opens with its own.
    both = RequestOpening("police", SourceKeyRing([police_key, rotated]))
    assert fetch_query(first, both) == fetch_query(second, both) == QUERY


def test_no_sealing_key_means_not_asked_unless_clear_is_allowed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counted = Counted()
    sealer = RequestSealer(
        lambda: {},
        gateway_id="ketenpoort",
        policy=SourceRequestPolicy(clear_allowed=frozenset({"housing"})),
        on_request=counted,
    )
    with caplog.at_level(logging.INFO):
        with pytest.raises(SealingKeyMissing) as err:
            sealer.seal("police", FETCH, request_id="f_1", reference="d_1", query=QUERY)
        assert isinstance(err.value, SourceUnavailable)
        for _ in range(2):
            assert (
                sealer.seal("housing", FETCH, request_id="f_2", reference="d_1", query=QUERY)
                is None
            )
    assert counted.seen == [
        ("police", "no_sealing_key"), ("housing", "clear_allowed"), ("housing", "clear_allowed"),
    ]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2  # the clear partner once, not per request
    assert "police" in lines[0] and "housing" in lines[1]
    for line in lines:
        for secret in ("111222333", "Jan Smit", "1984-03-12", "Markt 1", "police.incidents"):
            assert secret not in line


def test_sealing_switched_off_asks_every_source_in_clear(police_key: X25519PrivateKey) -> None:
    counted = Counted()
    sealer = RequestSealer(
        lambda: registry(police=police_key),
        gateway_id="ketenpoort",
        policy=SourceRequestPolicy(seal=False),
        on_request=counted,
    )
    assert sealer.seal("police", FETCH, request_id="f_1", reference="d_1", query=QUERY) is None
    assert counted.seen == [("police", "clear_configured")]


def test_a_source_that_opens_refuses_clear_requests_unless_told(
    police_key: X25519PrivateKey, opening: RequestOpening
) -> None:
    clear = source_pb2.FetchFieldsRequest(
        subject=SUBJECT, fields=["police.incidents"], disclosure_id="d_1", request_id="f_1"
    )
    with pytest.raises(RequestRefused) as err:
        fetch_query(clear, opening)
    assert (err.value.code, err.value.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION, SEALING_REQUIRED,
    )
    lenient = RequestOpening("police", SourceKeyRing([police_key]), accept_clear=True)
    assert fetch_query(clear, lenient).subject == SUBJECT
    assert fetch_query(clear, None).subject == SUBJECT  # a source with no keys reads clear


def test_sealed_and_clear_together_or_sealed_without_keys_are_refused(
    police_key: X25519PrivateKey, opening: RequestOpening
) -> None:
    sealer = RequestSealer(lambda: registry(police=police_key), gateway_id="ketenpoort")
    both = fetch_request(sealer)
    both.subject.CopyFrom(SUBJECT)
    with pytest.raises(RequestRefused) as err:
        fetch_query(both, opening)
    assert (err.value.code, err.value.reason) == (grpc.StatusCode.INVALID_ARGUMENT, BOTH_GIVEN)
    with pytest.raises(RequestRefused) as none:
        fetch_query(fetch_request(sealer), None)
    assert (none.value.code, none.value.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION, SEALED_NOT_SUPPORTED,
    )


@pytest.mark.parametrize(
    ("partner", "gateway_id", "request_id"),
    [("ggz", "ketenpoort", "f_1"), ("police", "another-zvh", "f_1"), ("police", "ketenpoort", "")],
    ids=["other-partner", "other-gateway", "no-request-id"],
)
def test_a_request_sealed_for_another_partner_gateway_or_request_is_refused(
    police_key: X25519PrivateKey, partner: str, gateway_id: str, request_id: str
) -> None:
    sealer = RequestSealer(lambda: registry(police=police_key), gateway_id="ketenpoort")
    request = fetch_request(sealer)
    request.request_id = request_id
    source = RequestOpening(partner, SourceKeyRing([police_key]), gateway_id=gateway_id)
    with pytest.raises(RequestRefused) as err:
        fetch_query(request, source)
    assert (err.value.code, err.value.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT, REQUEST_NOT_OPENED,
    )
    assert "111222333" not in err.value.message


def test_the_key_ring_tells_when_a_key_was_last_used_and_can_drop_it(
    police_key: X25519PrivateKey,
) -> None:
    now = [1000.0]
    ring = SourceKeyRing([police_key], clock=lambda: now[0])
    old = key_id(police_key.public_key())
    source = RequestOpening("police", ring)
    keys = {"police": police_key}
    sealer = RequestSealer(lambda: registry(**keys), gateway_id="ketenpoort")
    fetch_query(fetch_request(sealer), source)
    assert ring.last_used(old) == 1000.0

    new = X25519PrivateKey.generate()
    assert ring.add(new) == key_id(new.public_key())
    keys["police"] = new
    now[0] = 2000.0
    fetch_query(fetch_request(sealer), source)
    assert ring.last_used(old) == 1000.0  # no request names the old key any more
    assert ring.last_used(key_id(new.public_key())) == 2000.0

    keys["police"] = police_key  # a gateway that has not seen the rotation yet
    ring.remove(old)
    with pytest.raises(RequestRefused) as err:
        fetch_query(fetch_request(sealer), source)
    assert (err.value.code, err.value.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION, SOURCE_KEY_UNKNOWN,
    )
    assert ring.key_ids == (key_id(new.public_key()),)
    assert "X25519PrivateKey" not in repr(ring)
