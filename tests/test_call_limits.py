"""The call limiter and the tally of limited calls, on an injected clock (no gRPC, no I/O)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.server.limits import (
    MAX_OPERATIONS_PER_WINDOW,
    UNKNOWN_CALLER,
    CallLimit,
    CallLimiter,
    LimitedCalls,
    LimitReason,
    TokenBucket,
)

T0 = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_gives_its_burst_then_one_token_per_interval() -> None:
    bucket = TokenBucket(rate=10.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.1)
    assert bucket.take(0.05) == pytest.approx(0.05)  # half a token has come back
    assert bucket.take(0.1) == 0.0
    # A long quiet spell refills to the burst, never beyond.
    assert [bucket.take(100.0) for _ in range(4)][-1] == pytest.approx(0.1)


def test_a_clock_going_backwards_gives_no_tokens() -> None:
    bucket = TokenBucket(rate=1.0, burst=1, now=10.0)
    assert bucket.take(10.0) == 0.0
    assert bucket.take(5.0) > 0.0
    assert bucket.take(10.5) == pytest.approx(0.5)


def _limiter(clock: Clock, **limits: CallLimit) -> CallLimiter:
    default = CallLimit(rate_per_s=2.0, burst=4, max_concurrent=3)
    return CallLimiter(lambda key: limits.get(key, default), clock=clock)


def test_calls_over_the_rate_are_turned_away_with_the_time_to_wait() -> None:
    clock = Clock()
    limiter = _limiter(clock)
    admitted = 0
    for _ in range(4):
        assert limiter.admit("police") is None
        limiter.release("police")
        admitted += 1
    refused = limiter.admit("police")
    assert refused is not None and refused.reason is LimitReason.RATE
    assert refused.retry_after_s == pytest.approx(0.5)
    # Turned-away calls take no token: after the wait one call passes, and one only.
    clock.now += 0.5
    assert limiter.admit("police") is None
    limiter.release("police")
    assert limiter.admit("police") is not None
    # Over ten seconds, burst + rate * time calls pass, however many are tried.
    passed = 0
    for _ in range(1000):
        clock.now += 0.01
        if limiter.admit("police") is None:
            limiter.release("police")
            passed += 1
    assert passed == pytest.approx(20, abs=1)


def test_calls_in_flight_are_capped_and_a_place_frees_when_one_ends() -> None:
    clock = Clock()
    limiter = _limiter(clock)
    for _ in range(3):
        assert limiter.admit("ggz") is None
    refused = limiter.admit("ggz")
    assert refused is not None and refused.reason is LimitReason.CONCURRENCY
    assert refused.retry_after_s > 0
    assert limiter.in_flight("ggz") == 3
    limiter.release("ggz")
    assert limiter.admit("ggz") is None
    assert limiter.in_flight("ggz") == 3


def test_callers_have_their_own_limits() -> None:
    clock = Clock()
    limiter = _limiter(clock, unknown=CallLimit(rate_per_s=1.0, burst=1, max_concurrent=1))
    assert limiter.admit(UNKNOWN_CALLER) is None
    limiter.release(UNKNOWN_CALLER)
    assert limiter.admit(UNKNOWN_CALLER) is not None
    # Another caller's flood leaves police untouched.
    for _ in range(100):
        limiter.admit("ggz")
    assert limiter.admit("police") is None


@pytest.mark.parametrize(
    "rate, burst, concurrent",
    [(0.0, 1, 1), (-1.0, 1, 1), (float("nan"), 1, 1), (float("inf"), 1, 1), (1.0, 0, 1),
     (1.0, 1, 0)],
)
def test_a_limit_must_admit_something(rate: float, burst: int, concurrent: int) -> None:
    with pytest.raises(ValueError):
        CallLimit(rate_per_s=rate, burst=burst, max_concurrent=concurrent)


def test_limited_calls_are_counted_per_caller_and_window() -> None:
    tally = LimitedCalls(T0)
    for _ in range(500):
        tally.count("ggz", "ExchangeService/RequestDisclosure", LimitReason.RATE)
    tally.count("ggz", "ExchangeService/Triage", LimitReason.CONCURRENCY)
    tally.count(UNKNOWN_CALLER, "ExchangeService/RegisterCase", LimitReason.RATE)
    assert tally.pending() == 502

    first = tally.close(T0 + timedelta(seconds=60))
    assert [(w.caller, w.count) for w in first] == [("ggz", 501), (UNKNOWN_CALLER, 1)]
    ggz = first[0]
    assert (ggz.started_at, ggz.ended_at) == (T0, T0 + timedelta(seconds=60))
    assert ggz.by_reason == {LimitReason.CONCURRENCY: 1, LimitReason.RATE: 500}
    assert ggz.operations == ("ExchangeService/RequestDisclosure", "ExchangeService/Triage")

    # The next window starts where the last one ended; a quiet window has nothing to write.
    assert tally.close(T0 + timedelta(seconds=120)) == []
    tally.count("ggz", "ExchangeService/Triage", LimitReason.RATE)
    [second] = tally.close(T0 + timedelta(seconds=180))
    assert second.started_at == T0 + timedelta(seconds=120)


def test_a_window_that_could_not_be_written_goes_into_the_next() -> None:
    tally = LimitedCalls(T0)
    tally.count("ggz", "ExchangeService/Triage", LimitReason.RATE)
    unwritten = tally.close(T0 + timedelta(seconds=60))
    tally.count("ggz", "ExchangeService/RequestDisclosure", LimitReason.RATE)
    tally.restore(unwritten)
    [window] = tally.close(T0 + timedelta(seconds=120))
    assert window.count == 2
    assert window.started_at == T0  # the unwritten window's start is kept
    assert window.operations == ("ExchangeService/RequestDisclosure", "ExchangeService/Triage")


def test_a_window_names_a_bounded_number_of_operations() -> None:
    tally = LimitedCalls(T0)
    for n in range(MAX_OPERATIONS_PER_WINDOW * 3):
        tally.count("ggz", f"Service/Op{n:03d}", LimitReason.RATE)
    [window] = tally.close(T0 + timedelta(seconds=1))
    assert window.count == MAX_OPERATIONS_PER_WINDOW * 3
    assert len(window.operations) == MAX_OPERATIONS_PER_WINDOW


def test_the_limiter_is_separate_from_grpc_and_storage() -> None:
    # The operations issue's overload protection reuses it; a fresh interpreter shows what
    # importing it drags in.
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, gateway.server.limits; print(' '.join(sys.modules))"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout.split()
    assert not [m for m in loaded if m.split(".")[0] in {"grpc", "sqlalchemy", "psycopg"}]
