"""Runs retention while the gateway serves (see ``gateway.broker.retention``).

The first run starts with the gateway, then one every ``interval_s`` seconds (0 switches the
task off): a gateway restarted more often than the interval still shreds on time, and
replicas that run at the same moment shred each case once. A run works case by case on a
worker thread, at the gateway's clock; ``stop`` lets it finish the case at hand and waits for
that, so the database is never closed under a shredding. A failed run is logged (identifiers
and error types, never case data) and counted; the next run takes up what it left.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from gateway.broker.retention import Retention, RetentionOutcome, RetentionReport
from gateway.runtime.periodic import PeriodicTask
from gateway.server.config import GatewayConfig
from gateway.server.metrics import Metrics
from gateway.store.errors import StoreError
from gateway.store.retention import CaseShredder
from gateway.tlog.notes import format_time

OPERATION = "ketenpoort retention task"

log = logging.getLogger("ketenpoort.retention")


class RetentionTask:
    def __init__(
        self,
        retention: Retention,
        metrics: Metrics,
        *,
        interval_s: float,
        clock: Callable[[], datetime],
    ) -> None:
        if interval_s < 0:
            raise ValueError("interval_s must be 0 (off) or more")
        self._retention = retention
        self._metrics = metrics
        self._clock = clock
        # Its ``stopping`` is read by the worker thread between cases.
        self._task = PeriodicTask("retention", self._tick, interval_s=interval_s)

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        """Stop after the case being shredded, if any; no new run starts."""
        await self._task.stop()

    async def _tick(self) -> None:
        await self.run_once()

    async def run_once(self) -> RetentionReport | None:
        """One run now; None when it failed or the task is stopping."""
        if self._task.stopping.is_set():
            return None
        now = self._clock()
        try:
            report = await asyncio.to_thread(
                self._retention.run,
                now,
                should_stop=self._task.stopping.is_set,
                on_case=self._shredded,
            )
        except Exception as exc:
            self._metrics.retention_run("failed")
            # A store error names identifiers at most; other errors only by their type.
            detail = str(exc) if isinstance(exc, StoreError) else ""
            cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else ""
            log.error("retention run failed: %s %s (cause: %s)", type(exc).__name__, detail, cause)
            return None
        self._metrics.retention_run("stopped" if report.stopped else "ok")
        if report.cases or report.passed_over:
            log.info(
                "retention run: %d cases shredded, %d passed over (closed by %s)",
                len(report.cases),
                report.passed_over,
                format_time(report.cutoff),
            )
        if report.wal_cleared is False:
            log.warning(
                "retention: the SQLite write-ahead log could not be emptied (a reader held it); "
                "the shredded cases' zeroed pages reach the database file at a later checkpoint"
            )
        return report

    def _shredded(self, outcome: RetentionOutcome) -> None:
        # Called on the worker thread; counters and logging are thread-safe.
        self._metrics.case_shredded()
        log.info(
            "retention: case %s shredded (closed %s, %d entries deleted, log record %d)",
            outcome.case_id,
            format_time(outcome.closed_at),
            outcome.entries,
            outcome.log_seq,
        )


def start_retention(
    engine: Engine, config: GatewayConfig, metrics: Metrics, clock: Callable[[], datetime]
) -> RetentionTask:
    """The gateway's retention task on ``engine``, started (unless its interval is 0)."""
    retention = Retention(
        CaseShredder(engine),
        retention_days=config.retention_days_after_closure,
        declined_retention_days=config.declined_retention_days,
        operation=OPERATION,
    )
    task = RetentionTask(retention, metrics, interval_s=config.retention_interval_s, clock=clock)
    task.start()
    return task
