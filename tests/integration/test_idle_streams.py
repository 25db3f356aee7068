"""Streams that never send their request are bounded and closed.

A caller opens many calls and never sends a request message: before, each stayed open for
good, unauthenticated and unlogged, and memory grew with them. Now a call counts against its
caller's cap of calls in flight from its first moment (the rest are refused at once), the
whole server admits at most ``max_concurrent_rpcs``, and a call whose request does not arrive
within ``request_timeout_s`` is closed. Other partners are answered meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc import aio

from adapters.channels import open_channel
from gateway.core import CompiledPolicy
from gateway.server.limit_settings import LimitSettings
from gateway.server.limits import CallLimit
from tests.integration.harness import Harness, running_harness
from tests.integration.helpers import register

REQUEST_TIMEOUT_S = 1.0
PARTNER = CallLimit(rate_per_s=1000.0, burst=1000, max_concurrent=8)
UNKNOWN = CallLimit(rate_per_s=1000.0, burst=1000, max_concurrent=4)
MAX_CONCURRENT_RPCS = 48
LIMITS = LimitSettings(
    partner=PARTNER,
    unknown=UNKNOWN,
    request_timeout_s=REQUEST_TIMEOUT_S,
    max_concurrent_rpcs=MAX_CONCURRENT_RPCS,
)
STREAMS_PER_CHANNEL = 50
# Far longer than the server's request timeout: a stream the server never closed ends here.
CLIENT_DEADLINE_S = 15.0
CLOSED_WITHIN_S = REQUEST_TIMEOUT_S + 4.0
DISCLOSURE = "/ketenpoort.v1.ExchangeService/RequestDisclosure"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"


@pytest.fixture
async def limited(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy
) -> AsyncIterator[Harness]:
    async with running_harness(
        db_url, dev_keys, shipped_policy, config_changes={"limits": LIMITS}
    ) as harness:
        yield harness


async def _never_sends() -> AsyncIterator[bytes]:
    await asyncio.Event().wait()
    yield b""  # pragma: no cover


async def _silent_calls(channel: aio.Channel, method: str, count: int) -> list[aio.AioRpcError]:
    """``count`` calls of ``method`` that never send their request; how each one ended."""
    call = channel.stream_unary(
        method, request_serializer=lambda b: b, response_deserializer=lambda b: b
    )

    async def one() -> aio.AioRpcError:
        with pytest.raises(aio.AioRpcError) as ended:
            await call(_never_sends(), timeout=CLIENT_DEADLINE_S)
        return ended.value

    return list(await asyncio.gather(*(one() for _ in range(count))))


def _closed_by_server(error: aio.AioRpcError) -> bool:
    return (
        error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        and f"no request message within {REQUEST_TIMEOUT_S:g} s" in (error.details() or "")
    )


async def test_silent_streams_are_capped_per_caller_and_closed(limited: Harness) -> None:
    harness = limited
    ggz = [harness.channel("ggz") for _ in range(3)]
    stranger = open_channel(harness.address, harness.new_client_certificate("ggz"))
    police = harness.client("police")
    try:
        started = time.monotonic()
        silent = asyncio.gather(
            *(_silent_calls(channel, DISCLOSURE, STREAMS_PER_CHANNEL) for channel in ggz),
            _silent_calls(stranger, DISCLOSURE, STREAMS_PER_CHANNEL),
        )
        await asyncio.sleep(0.3)
        # While the silent streams are open, another partner is served as usual.
        case_id = await asyncio.wait_for(register(police), timeout=5)
        assert case_id
        *of_ggz, of_stranger = await silent
        elapsed = time.monotonic() - started
    finally:
        await police.close()
        for channel in (*ggz, stranger):
            await channel.close()

    assert elapsed < CLOSED_WITHIN_S, elapsed
    metrics = harness.gateway.metrics
    all_closed = 0
    for ended, limit, label in (
        ([e for es in of_ggz for e in es], PARTNER, "ggz"),
        (of_stranger, UNKNOWN, "unknown"),
    ):
        closed = [e for e in ended if _closed_by_server(e)]
        turned_away = [e for e in ended if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED]
        # Only the caller's cap of them was open at once (the calls all start together;
        # a slow machine may let a late one in after the first were closed), and the
        # server closed those; the rest were turned away at once.
        assert limit.max_concurrent <= len(closed) < 2 * limit.max_concurrent, len(closed)
        assert len(closed) + len(turned_away) == len(ended), Counter(e.code() for e in ended)
        assert {dict(e.trailing_metadata() or ())["ketenpoort-reason"] for e in turned_away} == {
            "concurrency_limited"
        }
        limited = metrics.limited_calls.labels(label, "concurrency")._value.get()
        assert limited == len(turned_away)
        all_closed += len(closed)
    assert metrics.request_timeouts._value.get() == all_closed


async def test_silent_health_checks_are_capped_server_wide_and_closed(limited: Harness) -> None:
    harness = limited
    channels = [harness.channel("ggz") for _ in range(3)]
    try:
        started = time.monotonic()
        ended = [
            e
            for es in await asyncio.gather(
                *(_silent_calls(c, HEALTH_CHECK, STREAMS_PER_CHANNEL) for c in channels)
            )
            for e in es
        ]
        elapsed = time.monotonic() - started
        codes = Counter(e.code() for e in ended)
        # At most the server's cap were admitted, and it closed them; the rest were refused.
        closed = [e for e in ended if _closed_by_server(e)]
        assert 0 < len(closed) <= MAX_CONCURRENT_RPCS, codes
        assert codes[grpc.StatusCode.RESOURCE_EXHAUSTED] == len(ended) - len(closed), codes
        assert elapsed < CLOSED_WITHIN_S, elapsed
        # Once they are gone the gateway answers again.
        police = harness.client("police")
        async with police:
            assert await asyncio.wait_for(register(police), timeout=5)
    finally:
        for channel in channels:
            await channel.close()
