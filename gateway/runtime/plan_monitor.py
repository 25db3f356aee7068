"""Runs the plan's monitoring while the gateway serves (see ``gateway.broker.plan_monitor``).

A run starts with the gateway, then one every ``interval_s`` seconds (0 switches the task
off), at the gateway's clock. A failed run is logged (error types only, never case data);
the next run takes up what it left, since notices are claimed one by one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from gateway.broker.plan_monitor import MonitorReport, PlanMonitor
from gateway.runtime.periodic import PeriodicTask

log = logging.getLogger("ketenpoort.plan")


class PlanMonitorTask:
    def __init__(
        self, monitor: PlanMonitor, *, interval_s: float, clock: Callable[[], datetime]
    ) -> None:
        if interval_s < 0:
            raise ValueError("interval_s must be 0 (off) or more")
        self._monitor = monitor
        self._clock = clock
        self._task = PeriodicTask("plan monitor", self._tick, interval_s=interval_s)

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        """No new run starts; the one in progress finishes."""
        await self._task.stop()

    async def _tick(self) -> None:
        await self.run_once()

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
