"""Work that must finish once it has started, even when the caller stops waiting for it.

A gRPC handler is cancelled when its caller gives up (a deadline, a dropped connection). A
registration cancelled between committing the case and writing its accountability record
would leave a case the log does not account for, and a resend of it (same request id) would
find a first call that never finishes. Such work runs as its own task: the handler may be
cancelled, the task goes on to the end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["finish_running_work", "run_to_completion"]

log = logging.getLogger("ketenpoort.server")

T = TypeVar("T")
# asyncio keeps only weak references to tasks: these are held until they finish.
_running: set[asyncio.Task[Any]] = set()


async def run_to_completion(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to its end and return its result; cancelling the caller does not
    cancel it."""
    task = asyncio.ensure_future(work)
    _running.add(task)
    task.add_done_callback(_running.discard)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_report_abandoned)
        raise


async def finish_running_work(timeout_s: float) -> None:
    """Wait, at most ``timeout_s``, for work started on this event loop to finish: called on
    shutdown after the server stopped taking calls, before the log and the database close."""
    loop = asyncio.get_running_loop()
    pending = [t for t in _running if t.get_loop() is loop and not t.done()]
    if pending:
        await asyncio.wait(pending, timeout=timeout_s)


def _report_abandoned(task: asyncio.Task[Any]) -> None:
    # Nobody awaits the result any more: a failure would otherwise go unnoticed.
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        # The type only: an exception's text can carry request content.
        log.error("work of a call whose caller stopped waiting failed: %s", type(exc).__name__)
