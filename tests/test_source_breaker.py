"""The gateway's circuit breaker in front of a source: which failures it counts, that an open
breaker answers at once without asking the source, the metrics and the log lines per change.

The sources behind it are small adapters of the Source protocol; the breaker, the metrics
registry and the log are the real ones. The clock of the breaker is injected."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest
from prometheus_client import generate_latest

from adapters.circuit_breaker import BreakerSettings, BreakerState
from gateway.broker.fetching import fetch_all
from gateway.broker.sources import (
    FetchContext,
    FetchResult,
    LookupResult,
    SourceCircuitOpen,
    SourceNotAnswering,
    SourceTimedOut,
    SourceUnavailable,
    Subject,
)
from gateway.server.metrics import Metrics
from gateway.sources.breaker import GuardedSource

SUBJECT = Subject(bsn="111222333", name="", date_of_birth="")
CTX = FetchContext("analysis_and_plan", "d_1", "police")
TIMEOUT_S = 0.05
FIELDS = ("police.incidents",)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Scripted:
    """A source that hangs, refuses, is unreachable or answers, as the test says; counts the
    calls that reached it."""

    def __init__(self) -> None:
        self.mode = "answer"
        self.calls = 0

    async def fetch(
        self, subject: Subject, fields: Sequence[str], ctx: FetchContext, *, timeout_s: float
    ) -> FetchResult:
        self.calls += 1
        if self.mode == "hang":
            await asyncio.Event().wait()  # ignores its deadline: the backstop ends it
        if self.mode == "deadline":
            raise SourceTimedOut("source call failed: DEADLINE_EXCEEDED")
        if self.mode == "unreachable":
            raise SourceNotAnswering("source call failed: UNAVAILABLE")
        if self.mode == "refuse":
            raise SourceUnavailable("source answer refused: OriginRefused")
        return FetchResult({"police.incidents": "2"})

    async def lookup(self, subject: Subject, triage_id: str, *, timeout_s: float) -> LookupResult:
        self.calls += 1
        if self.mode != "answer":
            raise SourceNotAnswering("source call failed: UNAVAILABLE")
        return LookupResult(True, "suspect")

    async def close(self) -> None:
        return None


def guarded(threshold: int = 3, open_for_s: float = 10.0) -> tuple[
    GuardedSource, Scripted, Clock, Metrics
]:
    inner, clock, metrics = Scripted(), Clock(), Metrics()
    source = GuardedSource(
        inner, "police", BreakerSettings(threshold, open_for_s), metrics, clock=clock
    )
    return source, inner, clock, metrics


def sample(metrics: Metrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name, {"source": "police"})
    assert value is not None, name
    return value


async def fetch(source: GuardedSource) -> FetchResult:
    return await source.fetch(SUBJECT, FIELDS, CTX, timeout_s=TIMEOUT_S)


async def test_timeouts_open_it_and_then_the_source_is_not_asked() -> None:
    source, inner, _, metrics = guarded(threshold=3)
    assert sample(metrics, "ketenpoort_source_circuit_state") == 0
    inner.mode = "hang"
    for _ in range(3):
        with pytest.raises(SourceTimedOut):
            await fetch(source)
    assert sample(metrics, "ketenpoort_source_timeouts_total") == 3
    assert source.breaker.state is BreakerState.OPEN
    assert sample(metrics, "ketenpoort_source_circuit_state") == 2

    with pytest.raises(SourceCircuitOpen):
        await fetch(source)
    with pytest.raises(SourceCircuitOpen):
        await source.lookup(SUBJECT, "t_1", timeout_s=TIMEOUT_S)
    assert inner.calls == 3  # the open breaker answered without asking
    assert sample(metrics, "ketenpoort_source_timeouts_total") == 3


async def test_an_unreachable_source_opens_it_too_and_a_trial_answer_closes_it() -> None:
    source, inner, clock, metrics = guarded(threshold=2, open_for_s=10.0)
    inner.mode = "unreachable"
    for _ in range(2):
        with pytest.raises(SourceNotAnswering):
            await fetch(source)
    assert source.breaker.state is BreakerState.OPEN
    inner.mode = "answer"
    clock.now += 10.0
    assert (await fetch(source)).values == {"police.incidents": "2"}  # the trial
    assert source.breaker.state is BreakerState.CLOSED
    assert sample(metrics, "ketenpoort_source_circuit_state") == 0
    assert sample(metrics, "ketenpoort_source_timeouts_total") == 0


async def test_answers_the_gateway_refuses_do_not_open_it() -> None:
    # A refused answer (a signature, a certificate) came at once: the operator's problem,
    # and the next call should see the fix at once.
    source, inner, _, _ = guarded(threshold=2)
    inner.mode = "refuse"
    for _ in range(5):
        with pytest.raises(SourceUnavailable) as err:
            await fetch(source)
        assert not isinstance(err.value, SourceCircuitOpen)
    assert source.breaker.state is BreakerState.CLOSED
    assert inner.calls == 5


async def test_one_log_line_per_change_not_per_call(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ketenpoort.sources")
    source, inner, clock, _ = guarded(threshold=3, open_for_s=10.0)
    inner.mode = "deadline"
    for _ in range(3):
        with pytest.raises(SourceTimedOut):
            await fetch(source)
    for _ in range(20):
        with pytest.raises(SourceCircuitOpen):
            await fetch(source)
    clock.now += 10.0
    inner.mode = "answer"
    await fetch(source)
    lines = [r.getMessage() for r in caplog.records if r.name == "ketenpoort.sources"]
    assert len(lines) == 5, lines
    assert "the source of police did not answer within" in lines[0]
    assert "is open" in lines[1]
    assert "half-open" in lines[2]
    assert "answers again" in lines[3]
    assert "is closed" in lines[4]
    # Partner ids and settings only: nothing of the subject.
    assert all(SUBJECT.bsn not in line for line in lines)


async def test_the_broker_marks_the_fields_of_an_open_source_unavailable_at_once() -> None:
    source, inner, _, metrics = guarded(threshold=1)
    inner.mode = "deadline"
    seen: list[tuple[str, str]] = []

    def observe(partner_type: str, result: str, _seconds: float) -> None:
        seen.append((partner_type, result))

    for _ in range(3):
        outcome = await fetch_all(
            {"police": source}, {"police": list(FIELDS)}, SUBJECT, CTX, 1.0, observe
        )
        assert outcome.values == {} and outcome.unavailable == {"police"}
    assert seen == [("police", "timeout"), ("police", "circuit_open"), ("police", "circuit_open")]
    assert inner.calls == 1
    exposed = generate_latest(metrics.registry).decode()
    assert 'ketenpoort_source_circuit_state{source="police"} 2.0' in exposed
