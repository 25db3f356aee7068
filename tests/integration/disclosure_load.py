"""Disclosure load from partner clients while a test disturbs the gateway's storage, and a
bounded wait for a condition (a hang guard, never a speed check)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

import grpc

from gateway.api.v1 import exchange_pb2, exchange_pb2_grpc
from gateway.broker.log_events import RecordKind
from tests.integration.harness import Harness
from tests.integration.log_accounting import PHASE, PURPOSE, Answer

ALLOWED = {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}
# Polls of a condition before the test gives up on it (a hang, not a speed check).
MAX_POLLS = 1200
POLL_S = 0.05


class DisclosureLoad:
    """Raw RequestDisclosure calls (no retries) from partner clients (one task per worker) until
    stopped; every status code and every answer kept."""

    def __init__(self, harness: Harness, case_id: str) -> None:
        self.harness = harness
        self.request = exchange_pb2.DisclosureRequest(case_id=case_id, purpose=PURPOSE, phase=PHASE)
        self.codes: Counter[grpc.StatusCode] = Counter()
        self.details: set[str] = set()
        self.answers: list[Answer] = []
        self.stop = asyncio.Event()

    async def worker(self) -> None:
        async with self.harness.client("police") as police:
            channel = self.harness.channel("police")
            stub = exchange_pb2_grpc.ExchangeServiceStub(channel)  # type: ignore[no-untyped-call]
            try:
                while not self.stop.is_set():
                    try:
                        answer = await stub.RequestDisclosure(
                            self.request, metadata=police.metadata(), timeout=15
                        )
                    except grpc.aio.AioRpcError as exc:
                        self.codes[exc.code()] += 1
                        self.details.add(exc.details() or "")
                        await asyncio.sleep(0.02)
                    else:
                        self.codes[grpc.StatusCode.OK] += 1
                        self.answers.append(
                            Answer(RecordKind.DISCLOSURE, answer.disclosure_id, answer.log_seq)
                        )
            finally:
                await channel.close()


async def until(what: str, condition: Callable[[], Coroutine[Any, Any, bool]]) -> None:
    for _ in range(MAX_POLLS):
        if await condition():
            return
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"never: {what}")
