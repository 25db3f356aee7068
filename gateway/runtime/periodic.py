"""One periodic task: a coroutine run now (or after a first delay) and then every interval.

Every background task of the gateway is one of these, so they all start, wake and stop the
same way:

- ``interval_s`` 0 switches the task off (``start`` does nothing);
- ``tick`` may return the seconds until its next run (a task that looks more often while an
  alarm stands, say); None means ``interval_s``;
- ``wake()`` ends the wait at once (a rotation made in this process, say);
- a tick that raises is logged by the error's type only (a message may carry data) and the
  task goes on: one failed run must not end the task for good;
- ``stop()`` lets the tick in progress finish (``stop_mode="finish"``, for work that must not
  be cut half-way: a shredding, a batch of re-wraps) or cancels it (``"cancel"``, for ticks
  that only wait or read); either way no tick starts after it. ``stopping`` is a
  ``threading.Event``, so a tick that works on a worker thread can look at it between steps.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Literal

__all__ = ["PeriodicTask", "StopMode"]

log = logging.getLogger("ketenpoort.runtime")

StopMode = Literal["finish", "cancel"]
Tick = Callable[[], Awaitable[float | None]]


class PeriodicTask:
    def __init__(
        self,
        name: str,
        tick: Tick,
        *,
        interval_s: float,
        first_delay_s: float = 0.0,
        stop_mode: StopMode = "finish",
    ) -> None:
        if interval_s < 0 or first_delay_s < 0:
            raise ValueError(f"{name}: intervals must be 0 (off) or more")
        self.name = name
        self._tick = tick
        self.interval_s = interval_s
        self._first_delay = first_delay_s
        self._stop_mode = stop_mode
        # Read by worker threads between steps of a tick.
        self.stopping = threading.Event()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        # Ticks run so far (a test waits for a run by counting).
        self.ticks = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start on the running event loop, unless switched off or started already."""
        if self.interval_s <= 0 or self._task is not None or self.stopping.is_set():
            return
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=self.name)

    def wake(self) -> None:
        """Run the next tick now (call on the event loop)."""
        if self._wake is not None:
            self._wake.set()

    async def stop(self) -> None:
        """No tick starts from now on; the one in progress finishes or is cancelled."""
        self.stopping.set()
        task, self._task = self._task, None
        if task is None:
            return
        if self._stop_mode == "cancel":
            task.cancel()
        elif self._wake is not None:
            self._wake.set()
        with suppress(asyncio.CancelledError):
            await task

    async def _loop(self) -> None:
        assert self._wake is not None
        delay = self._first_delay
        while not self.stopping.is_set():
            if delay > 0:
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
            else:
                await asyncio.sleep(0)  # a tick due at once still lets the loop run between
            if self.stopping.is_set():
                return
            self._wake.clear()
            try:
                after = await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The error's type only: its message may carry what the tick worked on.
                log.error("%s: a run failed (%s); the next one is due as usual",
                          self.name, type(exc).__name__)
                after = None
            self.ticks += 1
            delay = self.interval_s if after is None else after
