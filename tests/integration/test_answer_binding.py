"""A relay that terminates TLS cannot pass one request's sealed answer off as another's.

The relay (tests/integration/relay.py) sits between the police's system and the gateway,
forwarding real calls over mutual TLS. It keeps the answer to the first request and hands it
back in reply to the second, or strips the request nonce so that the gateway answers in
format version 1: the client library refuses each, because it opens an answer only as
version 2, bound to the nonce it sent and the case it asked about.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from adapters.client import PartnerClient, PartnerCredentials
from gateway.api.v1 import exchange_pb2
from gateway.core import CompiledPolicy
from gateway.crypto.errors import SealOpenError
from gateway.crypto.layout import GatewayKeyPaths
from gateway.crypto.sealing import BOUND_SEAL_FORMAT_VERSION, SEAL_FORMAT_VERSION
from gateway.server.app import start_gateway
from tests.integration.harness import ROLES, Harness, gateway_config
from tests.integration.helpers import accept, register, to_case_meeting
from tests.integration.relay import RequestRewrite, ResponseRewrite, tls_relay

DISCLOSE = "/ketenpoort.v1.ExchangeService/RequestDisclosure"
TRIAGE = "/ketenpoort.v1.ExchangeService/Triage"


def _swapping(method: str) -> tuple[ResponseRewrite, list[bytes]]:
    """Answers the second call of ``method`` with the first call's answer."""
    seen: list[bytes] = []

    def rewrite(called: str, _request: bytes, response: bytes) -> bytes:
        if called != method:
            return response
        seen.append(response)
        return seen[0]

    return rewrite, seen


def _stripping_nonce(method: str, message: type[exchange_pb2.DisclosureRequest]
                     | type[exchange_pb2.TriageRequest]) -> RequestRewrite:
    def rewrite(called: str, raw: bytes) -> bytes:
        if called != method:
            return raw
        request = message.FromString(raw)
        request.ClearField("request_nonce")
        return request.SerializeToString()

    return rewrite


def _relay_args(harness: Harness, partner: str = "police") -> dict[str, object]:
    paths = GatewayKeyPaths.under(harness.keys)
    own = harness.credentials(partner)
    assert own.tls is not None
    return {
        # A certificate the partner trusts (the gateway's own, from the CA it pins) and the
        # partner's client certificate upstream.
        "serve_as": (paths.tls_key.read_bytes(), paths.tls_cert.read_bytes()),
        "upstream_tls": own.tls,
    }


async def _two_cases(harness: Harness, phase: str = "case_meeting") -> tuple[str, str]:
    police, director = harness.client("police"), harness.client("zvh")
    cases = (await register(police), await register(police))
    for case_id in cases:
        if phase == "triage":
            await accept(director, case_id)
            await director.change_phase(case_id, "registration", "triage")
        else:
            await to_case_meeting(director, case_id)
    return cases


def _through(address: str, harness: Harness, partner: str) -> PartnerClient:
    return PartnerClient(address, harness.credentials(partner), role=ROLES[partner])


async def test_a_disclosure_answer_swapped_by_a_relay_is_refused(harness: Harness) -> None:
    case_a, case_b = await _two_cases(harness)
    swap, seen = _swapping(DISCLOSE)
    async with tls_relay(harness.address, rewrite_response=swap, **_relay_args(harness)) as at:
        police = _through(at, harness, "police")
        first = await police.request_disclosure(case_a, "analysis_and_plan", "case_meeting")
        assert first.response.sealed.format_version == BOUND_SEAL_FORMAT_VERSION
        assert first.record.case_id == case_a and first.values
        with pytest.raises(SealOpenError):
            # The relay answers with case A's record; the client asked about case B.
            await police.request_disclosure(case_b, "analysis_and_plan", "case_meeting")
        # The same case asked again: the nonce alone tells the answers apart.
        with pytest.raises(SealOpenError):
            await police.request_disclosure(case_a, "analysis_and_plan", "case_meeting")
        await police.close()
    assert len(seen) == 3 and seen[1] != seen[0]


async def test_a_triage_answer_swapped_by_a_relay_is_refused(harness: Harness) -> None:
    case_a, case_b = await _two_cases(harness, "triage")
    swap, seen = _swapping(TRIAGE)
    relay = _relay_args(harness, "zvh")
    async with tls_relay(harness.address, rewrite_response=swap, **relay) as at:
        director = _through(at, harness, "zvh")
        first = await director.triage(case_a)
        assert first.response.sealed.format_version == BOUND_SEAL_FORMAT_VERSION
        assert first.hits and first.known_anywhere
        with pytest.raises(SealOpenError):
            await director.triage(case_b)
        await director.close()
    assert len(seen) == 2


@pytest.mark.parametrize(
    ("method", "message"),
    [(DISCLOSE, exchange_pb2.DisclosureRequest), (TRIAGE, exchange_pb2.TriageRequest)],
    ids=["disclosure", "triage"],
)
async def test_a_version_1_answer_is_refused_by_a_client_that_sent_a_nonce(
    harness: Harness,
    method: str,
    message: type[exchange_pb2.DisclosureRequest] | type[exchange_pb2.TriageRequest],
) -> None:
    # The relay strips the nonce, so the gateway seals an answer of version 1, bound to the
    # disclosure or triage id alone, which the relay could move at will: the client refuses it.
    partner = "police" if method == DISCLOSE else "zvh"
    (case_id, _) = await _two_cases(harness, "case_meeting" if method == DISCLOSE else "triage")
    answers: list[bytes] = []

    def keep(called: str, _request: bytes, response: bytes) -> bytes:
        if called == method:
            answers.append(response)
        return response

    async with tls_relay(
        harness.address,
        rewrite_request=_stripping_nonce(method, message),
        rewrite_response=keep,
        **_relay_args(harness, partner),
    ) as at:
        client = _through(at, harness, partner)
        with pytest.raises(SealOpenError):
            if method == DISCLOSE:
                await client.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
            else:
                await client.triage(case_id)
        await client.close()
    response_type = (
        exchange_pb2.DisclosureResponse if method == DISCLOSE else exchange_pb2.TriageResponse
    )
    assert response_type.FromString(answers[0]).sealed.format_version == SEAL_FORMAT_VERSION


@pytest.mark.parametrize("size", [1, 15, 65])
async def test_a_nonce_of_the_wrong_size_is_invalid_argument(harness: Harness, size: int) -> None:
    (case_id, _) = await _two_cases(harness)
    police = harness.client("police")
    director = harness.client("zvh")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await police.request_disclosure_raw(
            exchange_pb2.DisclosureRequest(
                case_id=case_id, purpose="analysis_and_plan", phase="case_meeting",
                request_nonce=b"n" * size,
            )
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await director.triage_raw(case_id, request_nonce=b"n" * size)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_gateway_that_requires_nonces_refuses_requests_without_one(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy, tmp_path: Path
) -> None:
    config = gateway_config(
        db_url, dev_keys, registry_dir=tmp_path / "registry", require_request_nonce=True
    )
    gateway = await start_gateway(config, policy=shipped_policy, sources={})
    address = f"127.0.0.1:{gateway.port}"
    police = PartnerClient(address, PartnerCredentials.from_key_dir(dev_keys, "police"),
                           role=ROLES["police"])
    director = PartnerClient(address, PartnerCredentials.from_key_dir(dev_keys, "zvh"),
                             role=ROLES["zvh"])
    try:
        case_id = await register(police)
        await to_case_meeting(director, case_id)
        request = exchange_pb2.DisclosureRequest(
            case_id=case_id, purpose="analysis_and_plan", phase="case_meeting"
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await police.request_disclosure_raw(request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "request_nonce" in (err.value.details() or "")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await director.triage_raw(case_id)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # The client library always sends one.
        opened = await police.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
        assert opened.response.sealed.format_version == BOUND_SEAL_FORMAT_VERSION
    finally:
        await police.close()
        await director.close()
        await gateway.stop(grace=None)
