"""Calls refused at authentication are counted with the calls the servicers answer
(ketenpoort_requests_total, ketenpoort_request_seconds), so that error rates and dashboards
see them; and each refusal reason keeps its own count."""

from __future__ import annotations

import grpc

from adapters.channels import open_channel
from gateway.api.v1 import exchange_pb2, exchange_pb2_grpc
from tests.integration.harness import Harness


async def _request_disclosure(harness: Harness, token: str | None) -> grpc.StatusCode:
    channel = open_channel(harness.address, harness.credentials("police").tls)
    stub = exchange_pb2_grpc.ExchangeServiceStub(channel)  # type: ignore[no-untyped-call]
    metadata = (("authorization", f"Bearer {token}"),) if token is not None else ()
    try:
        await stub.RequestDisclosure(
            exchange_pb2.DisclosureRequest(case_id="case-none", purpose="case_meeting"),
            metadata=metadata,
            timeout=5,
        )
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    finally:
        await channel.close()
    return grpc.StatusCode.OK


async def test_refused_at_authentication_counts_as_a_call(harness: Harness) -> None:
    registry = harness.gateway.metrics.registry

    def calls(code: str) -> float:
        return registry.get_sample_value(
            "ketenpoort_requests_total", {"method": "RequestDisclosure", "code": code}
        ) or 0.0

    assert await _request_disclosure(harness, None) == grpc.StatusCode.UNAUTHENTICATED
    assert await _request_disclosure(harness, "not-a-jwt") == grpc.StatusCode.UNAUTHENTICATED
    assert calls("UNAUTHENTICATED") == 2
    assert registry.get_sample_value(
        "ketenpoort_request_seconds_count", {"method": "RequestDisclosure"}
    ) == 2
    assert registry.get_sample_value(
        "ketenpoort_auth_failures_total", {"reason": "missing_token"}
    ) == 1

    # An authenticated call is counted once, by the servicer, as before.
    token = harness.token("police")
    assert await _request_disclosure(harness, token) == grpc.StatusCode.NOT_FOUND
    assert calls("NOT_FOUND") == 1
    assert calls("UNAUTHENTICATED") == 2
