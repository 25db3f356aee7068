"""Closed-loop load: N asyncio workers, each sending its next request when the last returns."""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

Call = Callable[[], Awaitable[object]]
ERROR_BACKOFF_S = 0.01


@dataclass(frozen=True)
class RunStats:
    """One measured run of one target."""

    target: str
    seconds: float
    completed: int
    errors: int
    rate: float
    p50_ms: float
    p99_ms: float
    first_error: str = ""

    def as_dict(self) -> dict[str, float | int | str]:
        out: dict[str, float | int | str] = {
            "rate": round(self.rate, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "completed": self.completed,
            "errors": self.errors,
        }
        if self.first_error:
            out["first_error"] = self.first_error
        return out


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (q in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


async def run_load(
    target: str,
    call: Call,
    *,
    concurrency: int,
    seconds: float,
    warmup_s: float,
    on_measure: Callable[[], None] | None = None,
) -> RunStats:
    """Warm up for ``warmup_s``, then count the calls that complete within ``seconds``.
    ``on_measure`` is called when the measured part begins."""
    if warmup_s > 0:
        await _drive(call, concurrency, time.perf_counter() + warmup_s)
    if on_measure is not None:
        on_measure()
    start = time.perf_counter()
    deadline = start + seconds
    latencies, errors, first_error = await _drive(call, concurrency, deadline)
    latencies.sort()
    return RunStats(
        target=target,
        seconds=seconds,
        completed=len(latencies),
        errors=errors,
        rate=len(latencies) / seconds,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        first_error=first_error,
    )


async def _drive(
    call: Call, concurrency: int, deadline: float
) -> tuple[list[float], int, str]:
    latencies: list[float] = []
    errors = 0
    first_error = ""

    async def worker() -> None:
        nonlocal errors, first_error
        clock = time.perf_counter
        while True:
            began = clock()
            if began >= deadline:
                return
            try:
                await call()
            except Exception as exc:  # every failure counts; the first one is reported
                errors += 1
                if not first_error:
                    first_error = f"{type(exc).__name__}: {_brief(exc)}"
                # A target that fails fast would otherwise spin this loop.
                await asyncio.sleep(ERROR_BACKOFF_S)
                continue
            ended = clock()
            if ended <= deadline:
                latencies.append(ended - began)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors, first_error


def _brief(exc: Exception) -> str:
    details = getattr(exc, "details", None)
    if callable(details):
        return str(details())[:200]
    return str(exc)[:200]


def median_of(runs: Sequence[RunStats]) -> dict[str, float | int | list[float]]:
    """Median across rounds of rate, p50 and p99, with the per-round rates for spread."""
    return {
        "rate": round(statistics.median(r.rate for r in runs), 1),
        "p50_ms": round(statistics.median(r.p50_ms for r in runs), 3),
        "p99_ms": round(statistics.median(r.p99_ms for r in runs), 3),
        "errors": sum(r.errors for r in runs),
        "rate_per_round": [round(r.rate, 1) for r in runs],
    }
