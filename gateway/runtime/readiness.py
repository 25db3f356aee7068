"""Readiness and liveness of one gateway replica, kept apart on purpose.

Readiness says whether this replica should be sent calls: its database answers, it has room
on disk, its log writer takes appends, its keys and policy are loaded, it has finished
starting and is not draining. Each is a named check with a one-line reason when it fails (no
personal data, no driver text). The checks are looked at every ``interval_s`` on the event
loop (``ReadinessChecks``), never per request: a probe reads the last result. Readiness goes
to NOT_SERVING and back by itself as a database outage or a full disk comes and goes.

Liveness says only that the process still runs its event loop: a heartbeat on the loop
(``Liveness``) that a wedged loop stops. Nothing else is in it: in particular not the log
alarm. A log that fails its verification stops checkpoint signing and reports the
accountability service NOT_SERVING (``gateway.runtime.log_watch``), but every replica reads
the same log, so restarting or withdrawing them all would only stop the service.

``ServingReport`` turns both into grpc.health.v1 statuses: "" and every service NOT_SERVING
while not ready, the accountability service also while the log alarm stands; and the
``ketenpoort_ready`` gauge.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Protocol

from prometheus_client import Gauge
from sqlalchemy import Engine, text

from gateway.runtime.periodic import PeriodicTask
from gateway.server import health

__all__ = [
    "Liveness",
    "Readiness",
    "ReadinessChecks",
    "ServingReport",
]

log = logging.getLogger("ketenpoort.health")

STARTING = "the gateway is starting"
DRAINING = "the gateway is stopping (draining calls)"
# The loop ticks every HEARTBEAT_S; liveness fails when it has not for STALL_S.
HEARTBEAT_S = 1.0
STALL_S = 10.0
MB = 1024 * 1024


class Readiness:
    """Named checks, each passing (None) or failing with a one-line reason. ``on_change(ready)``
    is called when readiness flips. Reported from the event loop; read from any thread."""

    def __init__(self, on_change: Callable[[bool], None] | None = None) -> None:
        self._failing: dict[str, str] = {"started": STARTING}
        self._snapshot: tuple[str, ...] = self._lines()
        self._lock = threading.Lock()
        self.on_change = on_change

    @property
    def ready(self) -> bool:
        return not self._snapshot

    def problems(self) -> tuple[str, ...]:
        """One ``check: reason`` line per failing check, in a stable order."""
        return self._snapshot

    def report(self, check: str, problem: str | None) -> None:
        with self._lock:
            was = self._snapshot
            if problem is None:
                self._failing.pop(check, None)
            else:
                self._failing[check] = problem
            now = self._snapshot = self._lines()
        if now == was:
            return
        # Logged when the set of reasons changes, never per check: an outage is a few lines.
        if now and all(line.startswith("draining:") for line in now):
            log.info("not ready: %s", "; ".join(now))  # a stop, asked for
        elif now:
            log.warning("not ready: %s", "; ".join(now))
        else:
            log.info("ready")
        if bool(was) != bool(now) and self.on_change is not None:
            self.on_change(not now)

    def started(self) -> None:
        self.report("started", None)

    def drain(self) -> None:
        self.report("draining", DRAINING)

    def _lines(self) -> tuple[str, ...]:
        return tuple(f"{check}: {reason}" for check, reason in sorted(self._failing.items()))


class Liveness:
    """A heartbeat on the event loop; ``problem()`` names a loop that stopped beating."""

    def __init__(self, *, stall_s: float = STALL_S) -> None:
        self._stall = stall_s
        self._beat = time.monotonic()
        self.task = PeriodicTask(
            "liveness heartbeat", self._tick, interval_s=HEARTBEAT_S, stop_mode="cancel"
        )

    async def _tick(self) -> None:
        self._beat = time.monotonic()

    def problem(self) -> str | None:
        quiet = time.monotonic() - self._beat
        if quiet > self._stall:
            return f"the event loop has not run for {quiet:.0f} s"
        return None


class KeysInForce(Protocol):
    def signing_keys(self) -> object: ...

    def hpke_keys(self) -> object: ...


class LogWriter(Protocol):
    def writer_problem(self, hold_s: float) -> str | None: ...


class ReadinessChecks:
    """Looks at every readiness check now and every ``interval_s``."""

    def __init__(
        self,
        readiness: Readiness,
        *,
        engine: Engine,
        log_writer: LogWriter,
        keys: KeysInForce,
        policy_version: Callable[[], str],
        disk: Mapping[str, Path],
        min_free_mb: int,
        interval_s: float,
    ) -> None:
        self._readiness = readiness
        self._engine = engine
        self._log = log_writer
        self._keys = keys
        self._policy_version = policy_version
        self._disk = dict(disk)
        self._min_free = min_free_mb * MB
        # A ping that has not answered in this time counts as a database away; a failed
        # commit keeps the log writer not ready for this long unless one succeeds.
        self._db_timeout = max(1.0, min(5.0, 2 * interval_s))
        self._hold = max(5.0, 2 * interval_s)
        self._ping: asyncio.Future[None] | None = None
        self.task = PeriodicTask("readiness checks", self.check_now, interval_s=interval_s)

    async def check_now(self) -> None:
        r = self._readiness
        r.report("database", await self._database())
        r.report("disk", await asyncio.to_thread(self._disk_problem))
        r.report("log_writer", self._log.writer_problem(self._hold))
        r.report("keys", self._keys_problem())
        r.report("policy", None if self._policy_version() else "no policy is loaded")

    async def stop(self) -> None:
        await self.task.stop()
        ping, self._ping = self._ping, None
        if ping is not None:
            # A thread cannot be cancelled: the engine must outlive the ping it runs.
            with suppress(Exception):
                await asyncio.wait_for(asyncio.shield(ping), timeout=self._db_timeout)

    async def _database(self) -> str | None:
        if self._ping is None or self._ping.done():
            self._ping = asyncio.ensure_future(asyncio.to_thread(_ping, self._engine))
        try:
            await asyncio.wait_for(asyncio.shield(self._ping), timeout=self._db_timeout)
        except TimeoutError:
            return f"no answer within {self._db_timeout:g} s"
        except Exception as exc:
            # The error's type only: a driver's message names hosts and users.
            return f"not reachable ({type(exc).__name__})"
        return None

    def _disk_problem(self) -> str | None:
        if self._min_free <= 0:
            return None
        short = []
        for what, path in sorted(self._disk.items()):
            free = _free_bytes(path)
            if free is not None and free < self._min_free:
                short.append(f"{free // MB} MB free for the {what}")
        if short:
            return f"{', '.join(short)} (at least {self._min_free // MB} MB needed)"
        return None

    def _keys_problem(self) -> str | None:
        try:
            self._keys.signing_keys()
            self._keys.hpke_keys()
        except Exception as exc:
            return f"the gateway's keys are not loaded ({type(exc).__name__})"
        return None


def _ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _free_bytes(path: Path) -> int | None:
    # The nearest directory that exists: the checkpoint directory is made at the first write.
    for candidate in (path, *path.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


class ServingReport:
    """Publishes readiness and the log alarm as grpc.health.v1 statuses and ketenpoort_ready.
    Callable from any thread (``HealthService.set`` is)."""

    def __init__(
        self,
        servicer: health.HealthService,
        services: Sequence[str],
        accountability: str,
        gauge: Gauge,
    ) -> None:
        self._servicer = servicer
        self._services = ("", *services)
        self._accountability = accountability
        self._gauge = gauge
        self._ready = False
        self._log_ok = True
        self._publish()

    def ready(self, ready: bool) -> None:
        self._ready = ready
        self._publish()

    def log_ok(self, ok: bool) -> None:
        """The log watch's state: False while the log alarm stands."""
        self._log_ok = ok
        self._publish()

    def _publish(self) -> None:
        self._gauge.set(1 if self._ready else 0)
        for name in self._services:
            serving = self._ready and (self._log_ok or name != self._accountability)
            self._servicer.set(name, health.SERVING if serving else health.NOT_SERVING)
