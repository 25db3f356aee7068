"""Call limits per caller: a token bucket (rate and burst) and a cap on calls in flight.

The gateway admits a partner's call only while the partner has a token in its bucket and fewer
than its cap of calls in flight; otherwise the call is turned away before any work is done
(no token verification, no log record of its own, no handler). Callers whose client
certificate is registered to no partner share one key (``UNKNOWN_CALLER``), so they cannot
flood the log with authentication refusals either. The limits are kept per process: each
replica enforces the configured limit on its own.

Calls turned away are not written one by one: ``LimitedCalls`` counts them per caller, and
the gateway writes one record per caller and window (see ``gateway.server.limit_report``).

This module is pure: no gRPC, no I/O, the clock is passed in (``time.monotonic`` for the
limiter; the window's wall-clock times come from the caller).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

__all__ = [
    "UNKNOWN_CALLER",
    "CallLimit",
    "CallLimiter",
    "LimitReason",
    "Limited",
    "LimitedCalls",
    "LimitedWindow",
    "TokenBucket",
]

# The key of every caller whose certificate is registered to no partner.
UNKNOWN_CALLER = "unknown"
# A window lists at most this many operation names (the gateway serves fewer).
MAX_OPERATIONS_PER_WINDOW = 32


class LimitReason(StrEnum):
    """Why a call was turned away; metric label values."""

    RATE = "rate"
    CONCURRENCY = "concurrency"


@dataclass(frozen=True)
class CallLimit:
    """One caller's limit: ``rate_per_s`` calls a second on average, up to ``burst`` at once
    after a quiet spell, and at most ``max_concurrent`` calls in flight."""

    rate_per_s: float
    burst: int
    max_concurrent: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate_per_s) and self.rate_per_s > 0):
            raise ValueError("rate_per_s must be a number above 0")
        if self.burst < 1:
            raise ValueError("burst must be 1 or more")
        if self.max_concurrent < 1:
            raise ValueError("max_concurrent must be 1 or more")


@dataclass(frozen=True)
class Limited:
    """A call turned away: why, and how long until a call of this caller would pass."""

    reason: LimitReason
    retry_after_s: float


class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` a second; a call takes one."""

    __slots__ = ("rate", "burst", "_tokens", "_at")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._at = now

    def take(self, now: float) -> float:
        """Take a token: 0.0 when one was there, else the seconds until one will be (and
        nothing is taken)."""
        tokens = min(self.burst, self._tokens + max(0.0, now - self._at) * self.rate)
        self._at = max(self._at, now)
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return 0.0
        self._tokens = tokens
        return (1.0 - tokens) / self.rate


class _Caller:
    __slots__ = ("limit", "bucket", "in_flight")

    def __init__(self, limit: CallLimit, now: float) -> None:
        self.limit = limit
        self.bucket = TokenBucket(limit.rate_per_s, limit.burst, now)
        self.in_flight = 0


class CallLimiter:
    """Admits or turns away calls per caller key (a partner id or ``UNKNOWN_CALLER``).

    ``limit_of(key)`` gives a caller's limit; it is asked once per key (the configuration
    does not change while serving). The keys are few: the partners ever registered, and
    ``UNKNOWN_CALLER``. Single-threaded: call it from the event loop only.
    """

    def __init__(
        self,
        limit_of: Callable[[str], CallLimit],
        *,
        clock: Callable[[], float] = time.monotonic,
        concurrency_retry_s: float = 0.05,
    ) -> None:
        self._limit_of = limit_of
        self._clock = clock
        self._concurrency_retry_s = concurrency_retry_s
        self._callers: dict[str, _Caller] = {}

    def admit(self, key: str) -> Limited | None:
        """None when the call may go ahead (then ``release(key)`` once it has ended), else
        why not. A call turned away takes nothing: neither a token nor a place."""
        caller = self._callers.get(key)
        now = self._clock()
        if caller is None:
            caller = self._callers[key] = _Caller(self._limit_of(key), now)
        if caller.in_flight >= caller.limit.max_concurrent:
            # A place frees when a call ends, which cannot be foreseen: a short pause.
            return Limited(LimitReason.CONCURRENCY, self._concurrency_retry_s)
        wait = caller.bucket.take(now)
        if wait > 0.0:
            return Limited(LimitReason.RATE, wait)
        caller.in_flight += 1
        return None

    def release(self, key: str) -> None:
        caller = self._callers.get(key)
        if caller is not None and caller.in_flight > 0:
            caller.in_flight -= 1

    def in_flight(self, key: str) -> int:
        caller = self._callers.get(key)
        return caller.in_flight if caller is not None else 0


@dataclass(frozen=True)
class LimitedWindow:
    """The calls of one caller turned away between ``started_at`` and ``ended_at``."""

    caller: str
    started_at: datetime
    ended_at: datetime
    count: int
    by_reason: Mapping[LimitReason, int]
    operations: tuple[str, ...]  # sorted operation names, e.g. "ExchangeService/Triage"


@dataclass
class _Tally:
    count: int = 0
    by_reason: dict[LimitReason, int] = field(default_factory=dict)
    operations: set[str] = field(default_factory=set)


class LimitedCalls:
    """Counts calls turned away, per caller, until the window is closed.

    ``count`` is called for every turned-away call (a few dictionary updates); ``close`` ends
    the window at ``now`` and returns one ``LimitedWindow`` per caller that had any, and the
    next window starts there. ``restore`` puts windows back that could not be written, so
    their counts go into the next ones.
    """

    def __init__(self, started_at: datetime) -> None:
        self._started_at = started_at
        self._tallies: dict[str, _Tally] = {}
        # Windows handed back by restore(): their own start times are kept.
        self._carried: dict[str, datetime] = {}

    @property
    def started_at(self) -> datetime:
        return self._started_at

    def pending(self) -> int:
        """Calls counted in the window so far."""
        return sum(t.count for t in self._tallies.values())

    def count(self, caller: str, operation: str, reason: LimitReason) -> None:
        tally = self._tallies.get(caller)
        if tally is None:
            tally = self._tallies[caller] = _Tally()
        tally.count += 1
        tally.by_reason[reason] = tally.by_reason.get(reason, 0) + 1
        if len(tally.operations) < MAX_OPERATIONS_PER_WINDOW:
            tally.operations.add(operation)

    def close(self, now: datetime) -> list[LimitedWindow]:
        windows = [
            LimitedWindow(
                caller=caller,
                started_at=self._carried.get(caller, self._started_at),
                ended_at=max(now, self._started_at),
                count=tally.count,
                by_reason=dict(sorted(tally.by_reason.items())),
                operations=tuple(sorted(tally.operations)),
            )
            for caller, tally in sorted(self._tallies.items())
        ]
        self._tallies = {}
        self._carried = {}
        self._started_at = max(now, self._started_at)
        return windows

    def restore(self, windows: Iterable[LimitedWindow]) -> None:
        for window in windows:
            tally = self._tallies.setdefault(window.caller, _Tally())
            tally.count += window.count
            for reason, n in window.by_reason.items():
                tally.by_reason[reason] = tally.by_reason.get(reason, 0) + n
            merged = sorted(tally.operations | set(window.operations))
            tally.operations = set(merged[:MAX_OPERATIONS_PER_WINDOW])
            earlier = self._carried.get(window.caller, window.started_at)
            self._carried[window.caller] = min(earlier, window.started_at)
