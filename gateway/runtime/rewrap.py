"""Re-wraps the cases' data keys under the current key-encryption key while the gateway
serves (see ``gateway.store.rewrap``).

The first run starts with the gateway, then one every ``interval_s`` seconds (0 switches the
re-wrap off), and one at once when the current KEK changes, with one more ``key_check_s`` later
for data keys that requests in flight wrapped under the old key. The keys (key directory or
token) are looked at every ``key_check_s`` seconds (``KEY_CHECK_S``, or the interval when that
is shorter), and at once on ``wake()``. The looks go on with the re-wrap switched off: they are
how a serving gateway takes up a rotation of any of its keys (the log-signing and HPKE keys
too) when no request happens to look. Replicas that run at the same time pass over each other's
work, never undo it (compare-and-set per case). A run works batch by batch on a worker thread;
``stop`` lets it finish the batch at hand. When nothing is left to do a run is one count over
the table. After each run the pending gauge is set from that count, so every replica reports
the same database-wide figure. Data keys that cannot be re-wrapped and failed runs are logged
(case and key ids, error types; never key material) and counted; the next run takes up whatever
is left.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Protocol

from sqlalchemy import Engine

from gateway.runtime.periodic import PeriodicTask
from gateway.server.config import GatewayConfig
from gateway.server.metrics import Metrics
from gateway.store.errors import StoreError
from gateway.store.rewrap import (
    BatchOutcome,
    KekSource,
    Rewrapper,
    RewrapReport,
    RewrapStatus,
    data_keys_pending,
    rewrap_status,
)

KEY_CHECK_S = 5.0

log = logging.getLogger("ketenpoort.rewrap")


class WatchedKeks(KekSource, Protocol):
    """KEKs that can be read again from where they are kept (a ``LiveKeystore``)."""

    def refresh(self) -> bool: ...


class RewrapTask:
    def __init__(
        self,
        rewrapper: Rewrapper,
        engine: Engine,
        keys: WatchedKeks,
        metrics: Metrics,
        *,
        interval_s: float,
        key_check_s: float = KEY_CHECK_S,
    ) -> None:
        if interval_s < 0:
            raise ValueError("interval_s must be 0 (off) or more")
        if key_check_s <= 0:
            raise ValueError("key_check_s must be more than 0")
        self._rewrapper = rewrapper
        self._engine = engine
        self._keys = keys
        self._metrics = metrics
        self._interval = interval_s
        self._key_check = min(key_check_s, interval_s) if interval_s > 0 else key_check_s
        # The KEK the last run started toward; another current KEK starts a run at once.
        self._last_target = ""
        self._next_run = 0.0
        # A tick every look at the keys (never off: the looks go on with the re-wrap off);
        # its ``stopping`` is read by the worker thread between batches.
        self._task = PeriodicTask("re-wrap", self._tick, interval_s=self._key_check)

    def start(self) -> None:
        self._task.start()

    def wake(self) -> None:
        """Look at the keys now, and run at once if the current KEK changed (call on the
        event loop: after a rotation made in this process, say)."""
        self._task.wake()

    async def stop(self) -> None:
        """Stop after the batch being written, if any; no new run starts."""
        await self._task.stop()

    async def run_once(self) -> RewrapReport | None:
        """One run now; None when it failed or the task is stopping."""
        if self._task.stopping.is_set():
            return None
        target = self._last_target = self._keys.current_kek.kek_id
        try:
            # One scan when there is nothing to do, which is nearly always.
            pending = await asyncio.to_thread(data_keys_pending, self._engine, target)
            report = RewrapReport(target_kek_id=target)
            status = None
            if pending:
                report = await asyncio.to_thread(
                    self._rewrapper.run,
                    should_stop=self._task.stopping.is_set,
                    on_batch=self._batch_done,
                )
                status = await asyncio.to_thread(rewrap_status, self._engine, self._keys)
                pending = status.pending
        except Exception as exc:
            self._metrics.rewrap_error("run_failed")
            # A store error names identifiers at most; other errors only by their type.
            detail = str(exc) if isinstance(exc, StoreError) else ""
            cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else ""
            log.error("re-wrap run failed: %s %s (cause: %s)", type(exc).__name__, detail, cause)
            return None
        self._metrics.data_keys_pending_rewrap.set(pending)
        if status is not None:
            self._report(report, status)
        return report

    async def _tick(self) -> float:
        """Look at the keys; run when the KEK changed or a run is due. The seconds until the
        next look."""
        try:
            await asyncio.to_thread(self._keys.refresh)
        except Exception as exc:
            # The keys in force stay; the task must not end over a look that failed.
            log.error("re-wrap: looking at the keys failed: %s", type(exc).__name__)
        rotated = self._keys.current_kek.kek_id != self._last_target
        if self._interval > 0 and (rotated or time.monotonic() >= self._next_run):
            await self.run_once()
            # A request in flight at the rotation may still commit a data key it wrapped
            # under the old key after this run passed: one more run soon picks it up.
            self._next_run = time.monotonic() + (
                self._key_check if rotated else self._interval
            )
        if self._interval > 0:
            return min(self._key_check, max(0.0, self._next_run - time.monotonic()))
        return self._key_check

    def _batch_done(self, batch: BatchOutcome) -> None:
        # Called on the worker thread; counters and logging are thread-safe.
        if batch.rewrapped:
            self._metrics.data_keys_rewrapped_in_batch(batch.rewrapped)
        if not batch.failures:
            return
        reasons = Counter(f.reason.value for f in batch.failures)
        for reason, count in reasons.items():
            self._metrics.rewrap_error(reason, count)
        log.warning(
            "re-wrap: %d data keys left as they were (%s); first: case %s under %s",
            len(batch.failures),
            ", ".join(f"{r} {n}" for r, n in sorted(reasons.items())),
            batch.failures[0].case_id,
            batch.failures[0].kek_id or "no readable key id",
        )

    def _report(self, report: RewrapReport, status: RewrapStatus) -> None:
        if report.rewrapped or report.failed:
            log.info(
                "re-wrap: %d data keys re-wrapped under %s, %d passed over, %d left as they "
                "were; %d of %d live keys still to do",
                report.rewrapped,
                report.target_kek_id,
                report.passed_over,
                report.failed,
                status.pending,
                status.total,
            )
        if status.unknown_kek_ids:
            log.error(
                "re-wrap: data keys wrapped under key-encryption keys that are not loaded "
                "(%s): those cases cannot be read until the key is back",
                ", ".join(f"{k} {status.by_kek[k]}" for k in status.unknown_kek_ids),
            )


def start_rewrap(
    engine: Engine, keys: WatchedKeks, config: GatewayConfig, metrics: Metrics
) -> RewrapTask:
    """The gateway's re-wrap task on ``engine``, started: it looks at the keys, and re-wraps
    unless its interval is 0."""
    rewrapper = Rewrapper(engine, keys, batch_size=config.rewrap_batch_size)
    task = RewrapTask(rewrapper, engine, keys, metrics, interval_s=config.rewrap_interval_s)
    task.start()
    return task
