"""A circuit breaker in front of each configured source (adapters.circuit_breaker).

A source that hangs costs every request that asks it the whole source deadline. Once it has
not answered ``failure_threshold`` times in a row, its breaker opens: for ``open_for_s`` the
source is not asked and its fields are marked unavailable at once (``SourceCircuitOpen``), so
one hung partner system does not take the gateway's throughput with it. Then one trial call
goes through (half-open); its answer closes the breaker, its failure opens it again.

The breaker counts only calls that waited for nothing: the deadline passed or the source could
not be reached (``SourceNotAnswering``). A source that answers, even with a refusal or an
answer the gateway refuses (a certificate or signature it does not accept, a sealing key it
lacks), answered without making anyone wait: that is an operator's problem, named in its own
log line, and the next call should see the fix at once.

Published per source (by partner id, never anything about a person):
``ketenpoort_source_circuit_state`` and ``ketenpoort_source_timeouts_total``; the log gets one
line per change (the breaker opening, trying, closing; a source starting to time out and
answering again), never one per call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol, TypeVar

from adapters.circuit_breaker import BreakerSettings, BreakerState, CircuitBreaker, CircuitOpen
from gateway.broker.sources import (
    FetchContext,
    FetchResult,
    LookupResult,
    Source,
    SourceCircuitOpen,
    SourceNotAnswering,
    SourceTimedOut,
    Subject,
)

__all__ = ["GuardedSource", "SourceMetrics", "guard_sources"]

T = TypeVar("T")
log = logging.getLogger("ketenpoort.sources")

# The gRPC deadline ends a call to a hung source; this backstop, a little later, ends one whose
# transport ignores it. It stays inside the broker's own backstop (gateway.broker.fetching), so
# the breaker, not the broker, sees the timeout.
_BACKSTOP_GRACE_S = 0.1


class SourceMetrics(Protocol):
    """Where the breakers publish (gateway.server.metrics.Metrics)."""

    def source_circuit(self, source: str, state: BreakerState) -> None: ...

    def source_timeout(self, source: str) -> None: ...


class GuardedSource:
    """``inner`` (the source of partner ``partner_id``) behind a circuit breaker."""

    def __init__(
        self,
        inner: Source,
        partner_id: str,
        settings: BreakerSettings,
        metrics: SourceMetrics | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.partner_id = partner_id
        self._metrics = metrics
        self.breaker = CircuitBreaker(partner_id, settings, clock=clock, on_change=self._changed)
        self._timing_out = False
        if metrics is not None:
            metrics.source_circuit(partner_id, BreakerState.CLOSED)

    async def fetch(
        self, subject: Subject, fields: Sequence[str], ctx: FetchContext, *, timeout_s: float
    ) -> FetchResult:
        return await self._guarded(
            lambda: self.inner.fetch(subject, fields, ctx, timeout_s=timeout_s), timeout_s
        )

    async def lookup(self, subject: Subject, triage_id: str, *, timeout_s: float) -> LookupResult:
        return await self._guarded(
            lambda: self.inner.lookup(subject, triage_id, timeout_s=timeout_s), timeout_s
        )

    async def close(self) -> None:
        await self.inner.close()

    async def _guarded(self, call: Callable[[], Awaitable[T]], timeout_s: float) -> T:
        try:
            self.breaker.allow()
        except CircuitOpen as exc:
            raise SourceCircuitOpen(str(exc)) from None
        try:
            async with asyncio.timeout(timeout_s + _BACKSTOP_GRACE_S):
                result = await call()
        except (TimeoutError, SourceTimedOut) as exc:
            self._timed_out(timeout_s)
            self.breaker.failed()
            if isinstance(exc, SourceTimedOut):
                raise
            raise SourceTimedOut(f"no answer within {timeout_s}s") from None
        except SourceNotAnswering:
            self.breaker.failed()
            raise
        except Exception:
            # An answer, if not one the gateway takes: nobody waited for it.
            self._answered()
            self.breaker.succeeded()
            raise
        self._answered()
        self.breaker.succeeded()
        return result

    def _timed_out(self, timeout_s: float) -> None:
        if self._metrics is not None:
            self._metrics.source_timeout(self.partner_id)
        if not self._timing_out:
            self._timing_out = True
            log.warning(
                "the source of %s did not answer within %.1fs; until it answers again its "
                "timeouts are only counted (ketenpoort_source_timeouts_total)",
                self.partner_id, timeout_s,
            )

    def _answered(self) -> None:
        if self._timing_out:
            self._timing_out = False
            log.info("the source of %s answers again", self.partner_id)

    def _changed(self, partner_id: str, state: BreakerState) -> None:
        if self._metrics is not None:
            self._metrics.source_circuit(partner_id, state)
        settings = self.breaker.settings
        if state is BreakerState.OPEN:
            log.warning(
                "the circuit of %s's source is open: its fields are unavailable without asking "
                "it for %.1fs, then one trial call",
                partner_id, settings.open_for_s,
            )
        elif state is BreakerState.HALF_OPEN:
            log.info("the circuit of %s's source is half-open: one trial call", partner_id)
        else:
            log.info("the circuit of %s's source is closed: it answered its trial call", partner_id)


def guard_sources(
    sources: Mapping[str, Source],
    partner_ids: Mapping[str, str],
    settings: Callable[[str], BreakerSettings],
    metrics: SourceMetrics | None = None,
) -> dict[str, Source]:
    """Each source (by partner type) behind a breaker of its own, named by its partner id
    (``partner_ids``: partner type -> partner id) with ``settings(partner_id)``."""
    return {
        partner_type: GuardedSource(
            source, partner_ids[partner_type], settings(partner_ids[partner_type]), metrics
        )
        for partner_type, source in sources.items()
    }
