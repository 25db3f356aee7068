"""A source that does not answer in time makes its fields unavailable, never the request
late: the broker's own deadline stops waiting for an adapter that ignores its deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence

from gateway.broker.fetching import fetch_all, lookup_all
from gateway.broker.sources import FetchContext, FetchResult, LookupResult, Subject

SUBJECT = Subject(bsn="111222333", name="Jan de Vries", date_of_birth="1984-03-07")
CTX = FetchContext("analysis_and_plan", "d_1", "police")
DEADLINE_S = 0.2


class Answering:
    """A partner adapter that answers at once."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = values

    async def fetch(
        self, subject: Subject, fields: Sequence[str], ctx: FetchContext, *, timeout_s: float
    ) -> FetchResult:
        return FetchResult({f: self.values[f] for f in fields if f in self.values})

    async def lookup(self, subject: Subject, triage_id: str, *, timeout_s: float) -> LookupResult:
        return LookupResult(known=True, role="client")

    async def close(self) -> None:
        return None


class Hanging:
    """A partner adapter that ignores the deadline it is given and never answers."""

    def __init__(self) -> None:
        self.cancelled = 0

    async def _forever(self) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    async def fetch(
        self, subject: Subject, fields: Sequence[str], ctx: FetchContext, *, timeout_s: float
    ) -> FetchResult:
        await self._forever()
        return FetchResult()

    async def lookup(self, subject: Subject, triage_id: str, *, timeout_s: float) -> LookupResult:
        await self._forever()
        return LookupResult(known=False)

    async def close(self) -> None:
        return None


async def test_a_single_hanging_source_is_given_up_on() -> None:
    hanging = Hanging()
    seen: list[tuple[str, str]] = []
    started = time.perf_counter()
    outcome = await fetch_all(
        {"police": hanging},
        {"police": ["police.incidents"]},
        SUBJECT,
        CTX,
        DEADLINE_S,
        lambda source, result, _s: seen.append((source, result)),
    )
    assert time.perf_counter() - started < DEADLINE_S + 2
    assert outcome.values == {} and outcome.unavailable == {"police"}
    assert seen == [("police", "timeout")]
    assert hanging.cancelled == 1
    # The request's own task is not left cancelled: it carries on.
    await asyncio.sleep(0)


async def test_a_hanging_source_does_not_hold_up_the_others() -> None:
    sources = {"ggz": Answering({"ggz.care_involved": "yes"}), "police": Hanging()}
    outcome = await fetch_all(
        sources,
        {"ggz": ["ggz.care_involved", "ggz.other"], "police": ["police.incidents"]},
        SUBJECT,
        CTX,
        DEADLINE_S,
    )
    assert outcome.values == {"ggz.care_involved": "yes"}
    assert outcome.unavailable == {"police"}
    answers = await lookup_all(sources, SUBJECT, "t_1", DEADLINE_S)
    assert answers["ggz"] == LookupResult(known=True, role="client")
    assert answers["police"] is None


async def test_a_missing_adapter_is_unavailable() -> None:
    outcome = await fetch_all({}, {"police": ["police.incidents"]}, SUBJECT, CTX, DEADLINE_S)
    assert outcome.unavailable == {"police"}
