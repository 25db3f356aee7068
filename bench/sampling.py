"""A sampling profiler for every thread of a process, in pure Python.

A background thread reads every other thread's stack (``sys._current_frames``) every
``interval_s`` and counts, per function, the samples in which it runs (self) and in which it
is on the stack (inclusive). Unlike cProfile it adds no cost per call, so call-heavy code
(SQLAlchemy, asyncio) is not overstated. A thread whose top frame is a known wait (the
poller, a queue, a lock, a pipe) is counted as idle and left out of the shares.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from types import FrameType

DEFAULT_INTERVAL_S = 0.001
# (file name ending, function) pairs whose frame on top of the stack means "waiting".
_IDLE = (
    ("selectors.py", "select"),
    ("threading.py", "wait"),
    ("queue.py", "get"),
    ("thread.py", "_worker"),
    ("connection.py", "_recv"),
    ("connection.py", "poll"),
    ("connection.py", "_poll"),
    # The log writer's loop is on top only while it waits for appends (or its commit delay);
    # with checkpoints on it waits in _next, which signs a due checkpoint between waits.
    ("audit_log.py", "_drain"),
    ("audit_log.py", "_next"),
)

Key = tuple[str, int, str]


class Sampler:
    def __init__(self, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self.self_counts: Counter[Key] = Counter()
        self.inclusive: Counter[Key] = Counter()
        self.busy: Counter[str] = Counter()  # thread name -> busy samples
        self.idle = 0

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        me = threading.get_ident()
        while not self._stop.wait(self._interval):
            names = {t.ident: t.name for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if ident != me:
                    self._sample(names.get(ident, "?"), frame)

    def _sample(self, thread: str, frame: FrameType) -> None:
        top = frame.f_code
        if any(top.co_filename.endswith(f) and top.co_name == n for f, n in _IDLE):
            self.idle += 1
            return
        self.busy[_group(thread)] += 1
        self.self_counts[_key(frame)] += 1
        seen: set[Key] = set()
        f: FrameType | None = frame
        while f is not None:
            key = _key(f)
            if key not in seen:
                seen.add(key)
                self.inclusive[key] += 1
            f = f.f_back

    def stop(self, *, top: int = 45) -> str:
        """Stop sampling and return the summary."""
        self._stop.set()
        self._thread.join()
        busy = sum(self.busy.values()) or 1
        lines = [
            f"samples: {busy} busy, {self.idle} idle; interval {self._interval * 1000:.1f} ms",
            "busy samples by thread: "
            + ", ".join(f"{n} {c / busy:.0%}" for n, c in self.busy.most_common()),
            "",
            f"{'self %':>7} {'incl %':>7}  function (self: running; incl: on the stack)",
        ]
        for title, counter in (("by self", self.self_counts), ("by inclusive", self.inclusive)):
            lines.append(f"-- {title}")
            for key, _count in counter.most_common(top):
                lines.append(
                    f"{self.self_counts[key] / busy:7.1%} {self.inclusive[key] / busy:7.1%}  "
                    f"{_where(key)}"
                )
        return "\n".join(lines) + "\n"


def _group(name: str) -> str:
    # Executor threads are numbered; one line for all of them reads better.
    return name.rstrip("0123456789").rstrip("_-") or name


def _key(frame: FrameType) -> Key:
    code = frame.f_code
    return (code.co_filename, code.co_firstlineno, code.co_name)


def _where(key: Key) -> str:
    filename, line, name = key
    for marker in ("/site-packages/", "/main/", "/lib/python3"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f"{name} ({filename}:{line})"

