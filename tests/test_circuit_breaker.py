"""The circuit breaker's states and transitions, on an injected clock."""

from __future__ import annotations

import pytest

from adapters.circuit_breaker import BreakerSettings, BreakerState, CircuitBreaker, CircuitOpen


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Changes(list[tuple[str, BreakerState]]):
    def __call__(self, name: str, state: BreakerState) -> None:
        self.append((name, state))


def breaker(threshold: int = 3, open_for_s: float = 10.0) -> tuple[CircuitBreaker, Clock, Changes]:
    clock, changes = Clock(), Changes()
    b = CircuitBreaker(
        "police", BreakerSettings(threshold, open_for_s), clock=clock, on_change=changes
    )
    return b, clock, changes


def fail_times(b: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        b.allow()
        b.failed()


def test_closed_lets_every_call_through_and_a_success_resets_the_count() -> None:
    b, _, changes = breaker(threshold=3)
    fail_times(b, 2)
    b.allow()
    b.succeeded()
    fail_times(b, 2)
    assert b.state is BreakerState.CLOSED
    assert changes == []


def test_consecutive_failures_open_it_and_open_refuses_calls() -> None:
    b, clock, changes = breaker(threshold=3, open_for_s=10.0)
    fail_times(b, 3)
    assert b.state is BreakerState.OPEN
    assert changes == [("police", BreakerState.OPEN)]
    clock.now += 9.9
    with pytest.raises(CircuitOpen) as err:
        b.allow()
    assert err.value.name == "police"
    assert err.value.retry_in_s == pytest.approx(0.1)


def test_after_open_for_exactly_one_trial_goes_through_and_its_success_closes() -> None:
    b, clock, changes = breaker(threshold=1, open_for_s=5.0)
    fail_times(b, 1)
    clock.now += 5.0
    assert b.state is BreakerState.OPEN  # until a caller asks
    b.allow()  # the trial
    assert b.state is BreakerState.HALF_OPEN
    with pytest.raises(CircuitOpen):
        b.allow()  # a second caller while the trial is out
    b.succeeded()
    assert b.state is BreakerState.CLOSED
    b.allow()
    assert changes == [
        ("police", BreakerState.OPEN),
        ("police", BreakerState.HALF_OPEN),
        ("police", BreakerState.CLOSED),
    ]


def test_a_failed_trial_opens_it_again_for_another_period() -> None:
    b, clock, changes = breaker(threshold=2, open_for_s=5.0)
    fail_times(b, 2)
    clock.now += 5.0
    b.allow()
    b.failed()
    assert b.state is BreakerState.OPEN
    clock.now += 4.0
    with pytest.raises(CircuitOpen):
        b.allow()
    clock.now += 1.0
    b.allow()
    assert b.state is BreakerState.HALF_OPEN
    assert [s for _, s in changes] == [
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
    ]


def test_a_trial_never_reported_is_given_up_after_open_for() -> None:
    b, clock, _ = breaker(threshold=1, open_for_s=5.0)
    fail_times(b, 1)
    clock.now += 5.0
    b.allow()  # this trial's caller was cancelled and never reports
    clock.now += 4.0
    with pytest.raises(CircuitOpen):
        b.allow()
    clock.now += 1.0
    b.allow()  # the next caller becomes the trial
    b.succeeded()
    assert b.state is BreakerState.CLOSED


def test_late_outcomes_while_open_change_nothing() -> None:
    b, clock, changes = breaker(threshold=1, open_for_s=5.0)
    b.allow()
    b.allow()  # two calls in flight
    b.failed()  # the first opens it
    b.succeeded()  # the second answers late
    b.failed()
    assert b.state is BreakerState.OPEN
    assert changes == [("police", BreakerState.OPEN)]
    clock.now += 1.0
    with pytest.raises(CircuitOpen):
        b.allow()


def test_it_works_without_a_listener_and_with_default_settings() -> None:
    b = CircuitBreaker("csv")
    assert b.settings == BreakerSettings(failure_threshold=5, open_for_s=10.0)
    fail_times(b, 5)
    assert b.state is BreakerState.OPEN


@pytest.mark.parametrize(("threshold", "open_for_s"), [(0, 1.0), (1, 0.0), (1, -1.0)])
def test_nonsense_settings_are_refused(threshold: int, open_for_s: float) -> None:
    with pytest.raises(ValueError):
        BreakerSettings(threshold, open_for_s)
