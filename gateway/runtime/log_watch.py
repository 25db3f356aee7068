"""Keeps an eye on the accountability log while the gateway serves.

Every ``interval_s`` it verifies the records added since its last run (resuming from the
frontier it verified, so a run costs what was appended, not the whole log) together with every
checkpoint, those in the database and those in the checkpoint files outside it, and reads the
newest checkpoint for the checkpoint-age metric: a replica sees the checkpoints the others
sign, and copies each one it verified into its own checkpoint file.

A failed verification is logged with the record or checkpoint it names (numbers, never
content) and counted, so an alert can fire on it, and raises the alarm
(:mod:`gateway.store.log_alarm`): a file beside the checkpoint files that survives a restart.
While it stands the gateway signs no checkpoint and reports the accountability service
NOT_SERVING (``on_state``); it stands until an operator clears it (``ketenpoort audit
acknowledge``), after which the next check verifies the whole log again before signing resumes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from gateway.runtime.periodic import PeriodicTask
from gateway.server.metrics import Metrics
from gateway.store.audit_log import AuditLog, VerifiedPrefix, VerifyResult
from gateway.store.checkpoint_file import TAIL_BYTES, CheckpointFile, read_notes
from gateway.store.log_alarm import Alarm, LogAlarm

log = logging.getLogger("ketenpoort.log_watch")

# While the alarm stands, how often the watch looks whether an operator cleared it.
ALARM_POLL_S = 2.0


class LogWatch:
    def __init__(
        self,
        audit: AuditLog,
        metrics: Metrics,
        *,
        interval_s: float,
        checkpoint_dir: Path | None = None,
        checkpoint_file: CheckpointFile | None = None,
    ) -> None:
        self._audit = audit
        self._metrics = metrics
        self._interval = interval_s
        self._prefix = VerifiedPrefix()
        # While the alarm stands the task ticks every ALARM_POLL_S to see it cleared; the log
        # is checked every interval_s (at once after a clearing).
        self._task = PeriodicTask(
            "log watch", self._tick, interval_s=interval_s, stop_mode="cancel"
        )
        self._next_check = 0.0
        # The verification running in a worker thread, if any: a thread cannot be cancelled,
        # so stop() waits for it before the engine it reads from is disposed of.
        self._inflight: asyncio.Future[VerifyResult] | None = None
        self._checkpoint_at: float | None = None
        self._dir = checkpoint_dir
        self._file = checkpoint_file
        self._alarm_file = LogAlarm(checkpoint_dir) if checkpoint_dir is not None else None
        self.alarm: Alarm | None = None
        self._on_state: Callable[[bool], None] | None = None
        metrics.log_checkpoint_age.set_function(self._checkpoint_age)
        self.last_result: VerifyResult | None = None
        if self._alarm_file is not None:
            standing = self._alarm_file.current()
            if standing is not None:
                self._enter_alarm(standing)

    @property
    def on_state(self) -> Callable[[bool], None] | None:
        return self._on_state

    @on_state.setter
    def on_state(self, report: Callable[[bool], None] | None) -> None:
        """``report(healthy)`` whenever the alarm is raised or cleared, and at once now."""
        self._on_state = report
        if report is not None:
            report(self.alarm is None)

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
        inflight = self._inflight
        if inflight is not None:
            with suppress(Exception):
                await inflight

    async def check_now(self) -> VerifyResult | None:
        """Verify what was appended since the last check and refresh the checkpoint metrics;
        raise the alarm when the log does not verify, clear it once an operator did."""
        if self.alarm is not None and not self._alarm_cleared():
            self._metrics.log_verify_runs.labels("failed").inc()
            self._metrics.log_verify_failures.inc()
            return self.last_result
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
            if self.alarm is not None:
                self._leave_alarm()
        else:
            self._metrics.log_verify_runs.labels("failed").inc()
            self._metrics.log_verify_failures.inc()
            log.error(
                "accountability log does not verify: seq=%s checkpoint=%s: %s",
                result.first_bad_seq,
                result.bad_checkpoint_size,
                result.reason,
            )
            self._raise_alarm(result)
        return result

    async def _tick(self) -> float | None:
        if self.alarm is None or self._alarm_cleared() or time.monotonic() >= self._next_check:
            await self.check_now()
            self._next_check = time.monotonic() + self._interval
        # Look for the operator's acknowledgement more often than the log is checked.
        return None if self.alarm is None else min(ALARM_POLL_S, self._interval)

    def _alarm_cleared(self) -> bool:
        return self._alarm_file is not None and self._alarm_file.current() is None

    def _raise_alarm(self, result: VerifyResult) -> None:
        if self._alarm_file is None:
            alarm = Alarm("", result.reason, result.first_bad_seq, result.bad_checkpoint_size)
        else:
            try:
                alarm = self._alarm_file.raise_(
                    result.reason, result.first_bad_seq, result.bad_checkpoint_size
                )
            except OSError:
                log.exception("the log alarm could not be written to %s", self._alarm_file.path)
                alarm = Alarm("", result.reason, result.first_bad_seq,
                              result.bad_checkpoint_size)
        self._enter_alarm(alarm)

    def _enter_alarm(self, alarm: Alarm) -> None:
        first = self.alarm is None
        self.alarm = alarm
        self._metrics.log_alarm.set(1)
        self._audit.suspend_checkpoints(f"the log failed the gateway's own check ({alarm.reason})")
        if first:
            log.error(
                "log alarm: checkpoint signing stopped and the accountability service reports "
                "NOT_SERVING until `ketenpoort audit acknowledge` (%s)",
                alarm.describe(),
            )
            if self._on_state is not None:
                self._on_state(False)

    def _leave_alarm(self) -> None:
        self.alarm = None
        self._metrics.log_alarm.set(0)
        self._audit.resume_checkpoints()
        log.warning("log alarm cleared by an operator and the log verifies: signing resumes")
        if self._on_state is not None:
            self._on_state(True)

    def _verify_and_refresh(self) -> VerifyResult:
        if self.alarm is not None:
            # Acknowledged: check the whole log again, not only what came since.
            self._prefix = VerifiedPrefix()
        notes = read_notes(self._dir, TAIL_BYTES) if self._dir is not None else []
        result = self._audit.verify(
            resume=self._prefix, external=notes, external_source="in the checkpoint file"
        )
        self._refresh_checkpoint(copy=result.ok)
        return result

    def _refresh_checkpoint(self, *, copy: bool) -> None:
        latest = self._audit.latest_checkpoint()
        if latest is not None:
            self._checkpoint_at = latest.created_at.timestamp()
            self._metrics.log_checkpoint_size.set(latest.tree_size)
            if copy and self._file is not None and latest.key_id:
                # Another replica (or a command) signed it; it verified: keep it here too.
                self._file.append(latest.note)

    def _checkpoint_age(self) -> float:
        # This process's own newest checkpoint is known at once; others' at the next check.
        own = self._audit.last_checkpoint
        seen = [t for t in (self._checkpoint_at,) if t is not None]
        if own is not None:
            seen.append(own.created_at.timestamp())
        return time.time() - max(seen) if seen else float("nan")
