"""Keeps an eye on the accountability log while the gateway serves.

Every ``interval_s`` it verifies the records added since its last run (resuming from the
frontier it verified, so a run costs what was appended, not the whole log) together with every
checkpoint, and reads the newest checkpoint for the checkpoint-age metric: a replica sees the
checkpoints the others sign. A failed verification is logged with the record or checkpoint it
names (numbers, never content) and counted, so an alert can fire on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress

from gateway.server.metrics import Metrics
from gateway.store.audit_log import AuditLog, VerifiedPrefix, VerifyResult

log = logging.getLogger("ketenpoort.log_watch")


class LogWatch:
    def __init__(self, audit: AuditLog, metrics: Metrics, *, interval_s: float) -> None:
        self._audit = audit
        self._metrics = metrics
        self._interval = interval_s
        self._prefix = VerifiedPrefix()
        self._task: asyncio.Task[None] | None = None
        # The verification running in a worker thread, if any: a thread cannot be cancelled,
        # so stop() waits for it before the engine it reads from is disposed of.
        self._inflight: asyncio.Future[VerifyResult] | None = None
        self._checkpoint_at: float | None = None
        metrics.log_checkpoint_age.set_function(self._checkpoint_age)
        self.last_result: VerifyResult | None = None

    def start(self) -> None:
        if self._interval > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        inflight = self._inflight
        if inflight is not None:
            with suppress(Exception):
                await inflight

    async def check_now(self) -> VerifyResult | None:
        """Verify what was appended since the last check and refresh the checkpoint metrics."""
        try:
            self._inflight = asyncio.ensure_future(asyncio.to_thread(self._verify_and_refresh))
            result = await asyncio.shield(self._inflight)
        except Exception:
            log.exception("the accountability log could not be read for verification")
            self._metrics.log_verify_runs.labels("error").inc()
            return None
        self.last_result = result
        if result.ok:
            self._metrics.log_verify_runs.labels("ok").inc()
        else:
            self._metrics.log_verify_runs.labels("failed").inc()
            self._metrics.log_verify_failures.inc()
            log.error(
                "accountability log does not verify: seq=%s checkpoint=%s: %s",
                result.first_bad_seq,
                result.bad_checkpoint_size,
                result.reason,
            )
        return result

    async def _run(self) -> None:
        while True:
            await self.check_now()
            await asyncio.sleep(self._interval)

    def _verify_and_refresh(self) -> VerifyResult:
        result = self._audit.verify(resume=self._prefix)
        self._refresh_checkpoint()
        return result

    def _refresh_checkpoint(self) -> None:
        latest = self._audit.latest_checkpoint()
        if latest is not None:
            self._checkpoint_at = latest.created_at.timestamp()
            self._metrics.log_checkpoint_size.set(latest.tree_size)

    def _checkpoint_age(self) -> float:
        # This process's own newest checkpoint is known at once; others' at the next check.
        own = self._audit.last_checkpoint
        seen = [t for t in (self._checkpoint_at,) if t is not None]
        if own is not None:
            seen.append(own.created_at.timestamp())
        return time.time() - max(seen) if seen else float("nan")
