"""A server-log line at most once per window, with the count of what happened since.

What a caller can cause on every call (a malformed request, a refusal the log could not take
while the database is away) must not write a line, let alone a traceback, per call: a flood
would fill the operator's log. Each such event is counted here, and a line is due only when
the window since the last one has passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["DEFAULT_WINDOW_S", "LineWindow"]

DEFAULT_WINDOW_S = 60.0


class LineWindow:
    def __init__(
        self, window_s: float = DEFAULT_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window_s = window_s
        self._clock = clock
        self._unreported = 0
        self._last_line: float | None = None

    def count(self) -> int | None:
        """Count one event; the number to report (this one included) when a line is due,
        else None."""
        self._unreported += 1
        now = self._clock()
        if self._last_line is not None and now - self._last_line < self.window_s:
            return None
        due, self._unreported, self._last_line = self._unreported, 0, now
        return due
