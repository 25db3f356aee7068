"""Closed-loop appends: N asyncio tasks in one event loop, each awaiting ``log.append(event)``
and appending the next event the moment its record is durable.

Besides the rate and the latency of an append, a run measures where the time went: the CPU
time of the event loop's thread and of the log's writer thread (from ``/proc``, per thread),
and how long the writer spent inside its batches (the ``on_batch`` hook's commit time).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from dataclasses import dataclass, field
from itertools import count

from loadgen import percentile

from gateway.broker.log_events import AuditEvent
from gateway.store import AuditLog, BatchStats

WRITER_THREAD = "audit-log-writer"


@dataclass
class BatchClock:
    """Fed by ``AuditLog(on_batch=...)`` in the writer thread."""

    batches: int = 0
    records: int = 0
    seconds: float = 0.0
    sizes: list[int] = field(default_factory=list)

    def __call__(self, stats: BatchStats) -> None:
        self.batches += 1
        self.records += stats.size
        self.seconds += stats.seconds
        self.sizes.append(stats.size)

    def reset(self) -> None:
        self.batches, self.records, self.seconds = 0, 0, 0.0
        self.sizes = []


@dataclass(frozen=True)
class AppendRun:
    writers: int
    seconds: float
    completed: int  # appends that returned within the measured window
    appended: int  # every append that returned, warm-up included
    errors: int
    p50_ms: float
    p99_ms: float
    batches: int
    batch_records: int
    batch_p50: float
    batch_max: int
    writer_batch_seconds: float
    delayed_batches: int
    loop_cpu_s: float | None
    writer_cpu_s: float | None
    first_error: str = ""

    @property
    def rate(self) -> float:
        return self.completed / self.seconds


def thread_cpu_seconds(native_id: int | None) -> float | None:
    """User plus system CPU time of one thread of this process, from /proc (Linux)."""
    if native_id is None:
        return None
    try:
        with open(f"/proc/self/task/{native_id}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _writer_native_id() -> int | None:
    for thread in threading.enumerate():
        if thread.name == WRITER_THREAD:
            return thread.native_id
    return None


async def run_appends(
    log: AuditLog,
    clock_of_batches: BatchClock,
    pool: list[AuditEvent],
    *,
    writers: int,
    seconds: float,
    warmup_s: float,
) -> AppendRun:
    """Warm up, then count the appends that complete within ``seconds``."""
    picks = count()
    appended = 0
    errors = 0
    first_error = ""

    async def drive(deadline: float, latencies: list[float] | None) -> None:
        nonlocal appended, errors, first_error
        clock = time.perf_counter
        size = len(pool)
        while True:
            began = clock()
            if began >= deadline:
                return
            try:
                await log.append(pool[next(picks) % size])
            except Exception as exc:  # counted and reported; the run goes on
                errors += 1
                first_error = first_error or f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(0.01)
                continue
            appended += 1
            ended = clock()
            if latencies is not None and ended <= deadline:
                latencies.append(ended - began)

    if warmup_s > 0:
        end = time.perf_counter() + warmup_s
        await asyncio.gather(*(drive(end, None) for _ in range(writers)))
    writer_id = _writer_native_id()
    loop_id = threading.get_native_id()
    clock_of_batches.reset()
    delayed = log.delayed_batches
    loop_cpu, writer_cpu = thread_cpu_seconds(loop_id), thread_cpu_seconds(writer_id)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    await asyncio.gather(*(drive(deadline, latencies) for _ in range(writers)))
    loop_after, writer_after = thread_cpu_seconds(loop_id), thread_cpu_seconds(writer_id)
    latencies.sort()
    sizes = sorted(clock_of_batches.sizes)
    return AppendRun(
        writers=writers,
        seconds=seconds,
        completed=len(latencies),
        appended=appended,
        errors=errors,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        batches=clock_of_batches.batches,
        batch_records=clock_of_batches.records,
        batch_p50=percentile(sizes, 50) if sizes else 0.0,
        batch_max=sizes[-1] if sizes else 0,
        writer_batch_seconds=clock_of_batches.seconds,
        delayed_batches=log.delayed_batches - delayed,
        loop_cpu_s=_delta(loop_cpu, loop_after),
        writer_cpu_s=_delta(writer_cpu, writer_after),
        first_error=first_error,
    )


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before
