"""Authentication failures and bad input get the right status codes over real gRPC."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from adapters.client import PartnerClient
from gateway.api.v1 import exchange_pb2, exchange_pb2_grpc
from gateway.cli.demo_data import SUBJECT
from tests.integration.harness import Harness
from tests.integration.helpers import accept


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def _call_with(
    harness: Harness, token: str | None, partner: str = "police"
) -> grpc.StatusCode:
    """Call over a mutual-TLS connection with ``partner``'s certificate; NOT_FOUND (an unknown
    case) means the call got past authentication."""
    channel = harness.channel(partner)
    stub = exchange_pb2_grpc.ExchangeServiceStub(channel)  # type: ignore[no-untyped-call]
    metadata = (("authorization", f"Bearer {token}"),) if token is not None else ()
    try:
        await stub.RequestDisclosure(
            exchange_pb2.DisclosureRequest(case_id="case-unknown", purpose="case_meeting"),
            metadata=metadata,
            timeout=5,
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return grpc.StatusCode.OK
        return exc.code()
    finally:
        await channel.close()
    return grpc.StatusCode.OK


def _token(harness: Harness, **overrides: object) -> str:
    return harness.token("police", **overrides)


async def test_a_valid_token_is_accepted(harness: Harness) -> None:
    assert await _call_with(harness, _token(harness)) == grpc.StatusCode.OK


async def test_missing_token(harness: Harness) -> None:
    assert await _call_with(harness, None) == grpc.StatusCode.UNAUTHENTICATED


async def test_expired_token(harness: Harness) -> None:
    old = _token(harness, now=time.time() - 3600, lifetime_s=300)
    assert await _call_with(harness, old) == grpc.StatusCode.UNAUTHENTICATED


async def test_token_signed_by_another_key(harness: Harness) -> None:
    creds = harness.credentials("police")
    forged = _token(harness, key=Ed25519PrivateKey.generate(), key_id=creds.token_key_id)
    assert await _call_with(harness, forged) == grpc.StatusCode.UNAUTHENTICATED


async def test_token_of_another_partner_key_claiming_police(harness: Harness) -> None:
    ggz = harness.credentials("ggz")
    forged = _token(harness, key=ggz.token_key, key_id=ggz.token_key_id)
    assert await _call_with(harness, forged) == grpc.StatusCode.UNAUTHENTICATED


async def test_alg_none_is_refused(harness: Harness) -> None:
    now = int(time.time())
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    claims = _b64(
        json.dumps(
            {
                "iss": "police",
                "aud": "ketenpoort",
                "iat": now,
                "exp": now + 60,
                "jti": "x",
                "role": "case_director",
            }
        ).encode()
    )
    assert await _call_with(harness, f"{header}.{claims}.") == grpc.StatusCode.UNAUTHENTICATED


async def test_hmac_with_the_public_key_is_refused(harness: Harness) -> None:
    now = int(time.time())
    token = jwt.encode(
        {
            "iss": "police",
            "aud": "ketenpoort",
            "iat": now,
            "exp": now + 60,
            "jti": "y",
            "role": "case_director",
        },
        b"public-key-bytes-used-as-hmac-secret-000000",
        algorithm="HS256",
    )
    assert await _call_with(harness, token) == grpc.StatusCode.UNAUTHENTICATED


async def test_wrong_audience(harness: Harness) -> None:
    token = _token(harness, audience="another-gateway")
    assert await _call_with(harness, token) == grpc.StatusCode.UNAUTHENTICATED


async def test_role_not_granted_to_partner(harness: Harness) -> None:
    token = _token(harness, role="process_director")
    assert await _call_with(harness, token) == grpc.StatusCode.PERMISSION_DENIED


async def test_garbage_token(harness: Harness) -> None:
    assert await _call_with(harness, "not-a-jwt") == grpc.StatusCode.UNAUTHENTICATED


async def test_oversized_message_is_resource_exhausted(harness: Harness) -> None:
    police = harness.client("police")
    huge = "x" * (harness.gateway.config.max_message_bytes + 1024)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await police.register_case(SUBJECT, "code_rood", reason=huge)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_privacy_officer_service_needs_the_role(harness: Harness) -> None:
    director = harness.client("zvh")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await director.verify_log()
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    officer = harness.client("zvh", role="privacy_officer")
    await harness.client("police").register_case(SUBJECT, "code_rood", reason="r")
    verified = await officer.verify_log()
    assert verified.ok and verified.records_checked >= 1
    listing = await officer.list_disclosures(kinds=["registration"])
    assert [e.kind for e in listing.entries] == ["registration"]
    with pytest.raises(grpc.aio.AioRpcError) as bad_kind:
        await officer.list_disclosures(kinds=["gossip"])
    assert bad_kind.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_each_call_is_judged_by_its_own_token(harness: Harness) -> None:
    """One authenticating wrapper serves every call of a method: a good call does not let a
    bad one through after it, and concurrent calls keep their own caller."""
    assert await _call_with(harness, _token(harness)) == grpc.StatusCode.OK
    assert await _call_with(harness, "not-a-token") == grpc.StatusCode.UNAUTHENTICATED
    assert await _call_with(harness, None) == grpc.StatusCode.UNAUTHENTICATED
    assert await _call_with(harness, _token(harness)) == grpc.StatusCode.OK

    police, director = harness.client("police"), harness.client("zvh")
    case = await police.register_case(SUBJECT, "code_rood", reason="r", invitees=["zvh"])
    await accept(director, case.case_id)

    async def change(client: PartnerClient) -> grpc.StatusCode:
        try:
            await client.change_phase(case.case_id, "registration", "triage")
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    # Only the ZVH's process director holding the procesregie may change the phase; police,
    # calling at the same time through the same wrapper, may not.
    codes = await asyncio.gather(change(police), change(director), change(police))
    assert codes == [
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.OK,
        grpc.StatusCode.PERMISSION_DENIED,
    ]
    await police.close()
    await director.close()
