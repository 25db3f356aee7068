"""cProfile for every thread of a process: the event loop, the executor threads that run
storage calls, and the accountability log's writer thread.

cProfile on its own sees only the thread that enabled it; here each new thread starts its
own profiler through ``threading.setprofile``, and the summary merges them. Time spent
blocked (waiting on a lock, a queue or the poller) is listed too, under the builtin that
blocks, so read ``tottime`` of such builtins as waiting, not work.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any


class ProcessProfiler:
    """``clock="cpu"`` counts each thread's own CPU time (where the work is); ``"wall"``
    counts elapsed time (where requests wait)."""

    def __init__(self, clock: str = "cpu") -> None:
        if clock not in ("cpu", "wall"):
            raise ValueError("clock must be 'cpu' or 'wall'")
        self._clock = clock
        self._profiles: list[tuple[str, cProfile.Profile]] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        threading.setprofile(self._start_in_thread)
        self._start_here()

    def _start_here(self) -> None:
        profile = (
            cProfile.Profile(time.thread_time_ns, 1e-9)
            if self._clock == "cpu"
            else cProfile.Profile()
        )
        with self._lock:
            self._profiles.append((threading.current_thread().name, profile))
        profile.enable()

    def _start_in_thread(self, _frame: FrameType, _event: str, _arg: Any) -> None:
        # Called once at the first event of a new thread; enabling replaces this hook with
        # the C profiler for that thread.
        sys.setprofile(None)
        self._start_here()

    def stop(self, path: Path, *, top: int = 40) -> str:
        """Write the merged statistics to ``path`` and return a text summary."""
        threading.setprofile(None)
        with self._lock:
            profiles = list(self._profiles)
        # Call after the work has stopped: reading a profile ends its open calls at the
        # current time, so a thread still running would be cut short mid-call.
        stats: pstats.Stats | None = None
        names: set[str] = set()
        for name, profile in profiles:
            profile.create_stats()
            if not getattr(profile, "stats", None):
                continue  # a thread that finished no call has nothing to add
            names.add(name)
            if stats is None:
                stats = pstats.Stats(profile)
            else:
                stats.add(profile)
        if stats is None:
            return "nothing was profiled\n"
        stats.dump_stats(str(path))
        out = io.StringIO()
        out.write(f"clock: {self._clock}; threads profiled: {', '.join(sorted(names))}\n")
        ordered = pstats.Stats(str(path), stream=out)
        ordered.sort_stats("tottime").print_stats(top)
        ordered.sort_stats("cumulative").print_stats(top)
        return out.getvalue()
