"""A PostgreSQL restart under calls writes a handful of lines, not one per failed call.

The gateway reaches the shared PostgreSQL through a proxy of the test's (tests.integration.
db_proxy): cutting the proxy is, to the gateway, the server restarting; the server itself is
never touched."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from gateway.core import CompiledPolicy
from tests.integration.db_proxy import DbProxy, proxied
from tests.integration.harness import Harness, running_harness
from tests.integration.helpers import register, to_case_meeting
from tests.integration.log_capture import captured_log

CALLS = 12


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def behind_proxy(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy
) -> AsyncIterator[tuple[Harness, DbProxy]]:
    async with proxied(db_url) as (url, proxy):
        async with running_harness(url, dev_keys, shipped_policy) as harness:
            yield harness, proxy
            proxy.restore()


def _written(lines: list[dict[str, object]]) -> list[dict[str, object]]:
    """The lines a gateway at its default level (INFO) writes."""
    return [line for line in lines if line["level"] != "DEBUG"]


async def _calls(harness: Harness, case_id: str) -> list[grpc.StatusCode]:
    codes = []
    for i in range(CALLS):
        client = harness.client("police" if i % 2 else "zvh")
        try:
            await client.request_disclosure(case_id, "analysis_and_plan", "case_meeting",
                                            timeout=20)
            codes.append(grpc.StatusCode.OK)
        except grpc.aio.AioRpcError as exc:
            codes.append(exc.code())
    return codes


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_database_outage_writes_few_lines(
    behind_proxy: tuple[Harness, DbProxy],
) -> None:
    harness, proxy = behind_proxy
    police, director = harness.client("police"), harness.client("zvh")
    case_id = await register(police)
    await to_case_meeting(director, case_id)
    clock = Clock()
    with captured_log(window_s=30.0, clock=clock) as captured:
        proxy.cut()
        codes = await _calls(harness, case_id)
        during = _written(captured.others())
        # Later in the outage, past the window: the same lines again, with their counts.
        clock.now += 31.0
        await _calls(harness, case_id)
        proxy.restore()
        for _ in range(50):
            try:
                await police.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
                break
            except grpc.aio.AioRpcError as exc:
                assert exc.code() is grpc.StatusCode.UNAVAILABLE
                await asyncio.sleep(0.2)
        else:
            raise AssertionError("the gateway did not recover when the database came back")
    assert set(codes) == {grpc.StatusCode.UNAVAILABLE}, codes
    # One request line per call (the access log) ...
    assert len(captured.requests("ExchangeService/RequestDisclosure")) >= 2 * CALLS
    # ... and for the failures behind them a line per distinct error, not per call.
    distinct = {(line["logger"], line["level"], line["message"]) for line in during}
    assert len(during) == len(distinct), during
    assert len(during) <= 8, during
    later = [line for line in _written(captured.others())[len(during):] if "suppressed" in line]
    assert later, "the repeated lines come back with the count held back"
    assert sum(int(str(line["suppressed"])) for line in later) >= CALLS - len(during)
