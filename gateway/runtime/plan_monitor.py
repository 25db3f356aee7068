"""Runs the plan's monitoring while the gateway serves (see ``gateway.broker.plan_monitor``).

A run starts with the gateway, then one every ``interval_s`` seconds (0 switches the task
off), at the gateway's clock. A failed run is logged (error types only, never case data);
the next run takes up what it left, since notices are claimed one by one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime

from gateway.broker.plan_monitor import MonitorReport, PlanMonitor

log = logging.getLogger("ketenpoort.plan")


class PlanMonitorTask:
    def __init__(
        self, monitor: PlanMonitor, *, interval_s: float, clock: Callable[[], datetime]
    ) -> None:
        if interval_s < 0:
            raise ValueError("interval_s must be 0 (off) or more")
        self._monitor = monitor
        self._interval = interval_s
        self._clock = clock
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._interval > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            with suppress(asyncio.CancelledError):
                await task

    async def run_once(self) -> MonitorReport | None:
        """One run now; None when it failed."""
        try:
            report = await self._monitor.run_once(self._clock())
        except Exception as exc:
            cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else ""
            log.error("plan monitor run failed: %s (cause: %s)", type(exc).__name__, cause)
            return None
        if report.due or report.overdue:
            log.info("plan monitor: %d due, %d overdue told", report.due, report.overdue)
        return report

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            await self.run_once()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval)
