"""A circuit breaker: stop calling a system that keeps failing, and try it again now and then.

One implementation for both sides: the gateway wraps each source in one, so a hung source
costs its callers nothing once the breaker is open (its fields are marked unavailable at once
instead of after the source's deadline); the partner's source runtime wraps its own system in
one, so a system that is down is not asked again and again.

The breaker is pure bookkeeping (no asyncio, no I/O, no metrics): the caller asks ``allow()``
before a call and reports ``succeeded()`` or ``failed()`` after it. ``on_change`` lets each side
publish the state its own way (a gauge, a log line per transition).

States:
- closed: every call is made; ``failure_threshold`` consecutive failures open the breaker.
- open: no call is made (``allow()`` raises ``CircuitOpen``) until ``open_for_s`` has passed.
- half_open: exactly one trial call is let through; its success closes the breaker, its
  failure opens it again for another ``open_for_s``. A trial whose outcome is never reported
  (its caller was cancelled) is given up after ``open_for_s``, and the next caller becomes the
  trial, so a lost report cannot keep the breaker half-open for ever.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["BreakerSettings", "BreakerState", "CircuitBreaker", "CircuitOpen"]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class BreakerSettings:
    failure_threshold: int = 5  # consecutive failures that open it
    open_for_s: float = 10.0  # how long it stays open before one trial call (half-open)

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be 1 or more")
        if not self.open_for_s > 0:
            raise ValueError("open_for_s must be more than 0")


class CircuitOpen(Exception):
    """The breaker is open: the call must not be made (the system counts as unavailable)."""

    def __init__(self, name: str, retry_in_s: float) -> None:
        super().__init__(f"circuit {name!r} is open; next trial in {retry_in_s:.1f}s")
        self.name = name
        self.retry_in_s = retry_in_s


class CircuitBreaker:
    """See the module docstring. Safe to share between threads; ``on_change`` is called after
    the state changed, outside the breaker's lock, once per transition."""

    def __init__(
        self,
        name: str,
        settings: BreakerSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, BreakerState], None] | None = None,
    ) -> None:
        self.name = name
        self.settings = settings if settings is not None else BreakerSettings()
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        # When the breaker last opened (open) or when the trial was let through (half-open).
        self._since = 0.0
        self._trial_out = False

    @property
    def state(self) -> BreakerState:
        """The state now. An open breaker whose time is up stays open until the next
        ``allow()``, which lets the trial through and turns it half-open."""
        with self._lock:
            return self._state

    def allow(self) -> None:
        """Return if the call may be made; raise ``CircuitOpen`` if not."""
        changed: BreakerState | None = None
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return
            if self._state is BreakerState.OPEN:
                if not self._trial_due():
                    raise CircuitOpen(self.name, self._retry_in())
                self._state = changed = BreakerState.HALF_OPEN
                self._begin_trial()
            elif self._trial_out and not self._trial_due():
                raise CircuitOpen(self.name, self._retry_in())
            else:
                self._begin_trial()
        if changed is not None:
            self._notify(changed)

    def succeeded(self) -> None:
        """The call answered: the breaker closes (from half-open) or stays closed."""
        changed: BreakerState | None = None
        with self._lock:
            self._failures = 0
            # A late success while open (a call let through before it opened) proves little
            # about now: the breaker waits for its own trial.
            if self._state is BreakerState.HALF_OPEN:
                self._state = changed = BreakerState.CLOSED
                self._trial_out = False
        if changed is not None:
            self._notify(changed)

    def failed(self) -> None:
        """The call failed (timeout, unavailable): count it; the threshold or a failed trial
        opens the breaker."""
        changed: BreakerState | None = None
        with self._lock:
            if self._state is BreakerState.CLOSED:
                self._failures += 1
                if self._failures >= self.settings.failure_threshold:
                    changed = self._open()
            elif self._state is BreakerState.HALF_OPEN:
                changed = self._open()
            # Open already: a late failure of a call let through earlier changes nothing.
        if changed is not None:
            self._notify(changed)

    # -- internals, called with the lock held --

    def _open(self) -> BreakerState:
        self._state = BreakerState.OPEN
        self._since = self._clock()
        self._failures = 0
        self._trial_out = False
        return BreakerState.OPEN

    def _begin_trial(self) -> None:
        self._trial_out = True
        self._since = self._clock()

    def _trial_due(self) -> bool:
        return self._clock() - self._since >= self.settings.open_for_s

    def _retry_in(self) -> float:
        return max(0.0, self.settings.open_for_s - (self._clock() - self._since))

    def _notify(self, state: BreakerState) -> None:
        if self._on_change is not None:
            self._on_change(self.name, state)
