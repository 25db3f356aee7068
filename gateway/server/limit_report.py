"""Calls turned away by the call limits, written to the log as one record per caller and window.

A call over its partner's limit costs no log record of its own: that is what lets a flood be
turned away cheaply. It is counted (``gateway.server.limits.LimitedCalls``), and every
``interval_s``, and when the gateway stops, this task closes the window and appends one record
of kind ``rate_limited`` for each caller that had calls turned away in it: the partner (empty
for callers whose certificate is registered to no partner, ``detail.caller = unknown``), the
window as ``occurred_at`` .. ``ended_at``, and in ``detail`` the number of calls, per reason,
and the operations they named. Never anything the calls carried.

A window that cannot be written (the database is away) is kept and added to the next one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from gateway.broker.ids import random_hex
from gateway.broker.log_events import MAX_DETAIL_VALUE, AuditEvent, RecordKind, detail_of
from gateway.runtime.periodic import PeriodicTask
from gateway.server.limits import UNKNOWN_CALLER, LimitedCalls, LimitedWindow
from gateway.server.refused_calls import refused_call_event

__all__ = ["OPERATION", "LimitReport", "limited_event"]

OPERATION = "ketenpoort call limits"
REFUSAL_CODE = "rate_limited"

log = logging.getLogger("ketenpoort.limits")


def limited_event(window: LimitedWindow, policy_version: str) -> AuditEvent:
    operations = ",".join(window.operations)
    if len(operations) > MAX_DETAIL_VALUE:
        operations = operations[: MAX_DETAIL_VALUE - 1] + "…"
    by_reason = {f"by_{reason.value}": n for reason, n in window.by_reason.items() if n}
    return refused_call_event(
        RecordKind.RATE_LIMITED,
        occurred_at=window.started_at,
        ended_at=window.ended_at,
        trace_id=random_hex(16),
        span_id=random_hex(8),
        name=OPERATION,
        partner_id="" if window.caller == UNKNOWN_CALLER else window.caller,
        role="",
        refusal_code=REFUSAL_CODE,
        policy_version=policy_version,
        detail=detail_of(
            caller="partner" if window.caller != UNKNOWN_CALLER else UNKNOWN_CALLER,
            calls=window.count,
            operations=operations,
            **by_reason,
        ),
    )


class LimitReport:
    def __init__(
        self,
        limited: LimitedCalls,
        append: Callable[[AuditEvent], Awaitable[object]],
        policy_version: Callable[[], str],
        clock: Callable[[], datetime],
        *,
        interval_s: float,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be more than 0")
        self._limited = limited
        self._append = append
        self._policy_version = policy_version
        self._clock = clock
        # A window is never cut off half-way: stopping lets the write in progress finish.
        self._task = PeriodicTask(
            "limit report", self._tick, interval_s=interval_s, first_delay_s=interval_s
        )
        self._lock = asyncio.Lock()

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        """End the timer and write the window in progress."""
        await self._task.stop()
        await self.flush()

    async def _tick(self) -> None:
        await self.flush()

    async def flush(self) -> int:
        """Close the window now and write its records; the number written."""
        async with self._lock:
            windows = self._limited.close(self._clock())
            version = self._policy_version()
            for done, window in enumerate(windows):
                try:
                    await self._append(limited_event(window, version))
                except Exception:
                    # Counts, never content; the window is written with the next one.
                    log.exception("could not record %d limited call(s); kept for the next "
                                  "window", sum(w.count for w in windows[done:]))
                    self._limited.restore(windows[done:])
                    return done
            return len(windows)
