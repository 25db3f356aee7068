"""``serve_call`` for server-streaming RPCs: the same error table, counting and timing, around
an async iterator of responses."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import grpc
from grpc import aio

from gateway.broker.errors import BrokerError, Refused
from gateway.server.metrics import Metrics
from gateway.server.status import UNEXPECTED_MESSAGE, status_of, unexpected_error_status

log = logging.getLogger("ketenpoort.server")

R = TypeVar("R")


async def serve_stream(
    method: str,
    context: aio.ServicerContext[Any, Any],
    metrics: Metrics,
    work: Callable[[], AsyncIterator[R]],
) -> AsyncIterator[R]:
    """Stream ``work``'s responses: translate use-case errors, count the outcome, time it.

    An error after some responses left still ends the call with its status, so the client
    knows the stream is incomplete and can resume.
    """
    start = time.perf_counter()
    code = grpc.StatusCode.OK
    try:
        async for response in work():
            yield response
    except BrokerError as exc:
        code = status_of(exc)
        if isinstance(exc, Refused):
            metrics.refusal(exc.code)
        await context.abort(code, str(exc))
    except aio.AbortError:
        code = context.code() or grpc.StatusCode.UNKNOWN
        raise
    except (GeneratorExit, asyncio.CancelledError):
        # The client went away, or the server is stopping, mid-stream.
        code = grpc.StatusCode.CANCELLED
        raise
    except Exception as exc:
        code = unexpected_error_status(method, exc)
        if code is grpc.StatusCode.UNAVAILABLE:
            metrics.database_unavailable_call()
        await context.abort(code, UNEXPECTED_MESSAGE[code])
    finally:
        metrics.request_done(method, code.name, time.perf_counter() - start)
