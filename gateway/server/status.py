"""One table from use-case errors to gRPC status codes, applied at the edge."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc
from grpc import aio

from gateway.broker.errors import (
    AlreadyEnded,
    BrokerError,
    CaseNotFound,
    CaseShredded,
    GatewayKeyUnknown,
    HoldNotFound,
    InvalidRequest,
    NoZvhPartner,
    PersonNotFound,
    PersonStateConflict,
    PhaseMismatch,
    RecipientKeyMissing,
    Refused,
    RequestIdReused,
    RequestInProgress,
    SealingRequired,
    StateChanged,
)
from gateway.server.metrics import Metrics
from gateway.store.errors import DATABASE_UNAVAILABLE, database_unavailable

log = logging.getLogger("ketenpoort.server")

STATUS_OF: dict[type[BrokerError], grpc.StatusCode] = {
    InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    CaseNotFound: grpc.StatusCode.NOT_FOUND,
    PhaseMismatch: grpc.StatusCode.FAILED_PRECONDITION,
    CaseShredded: grpc.StatusCode.FAILED_PRECONDITION,
    Refused: grpc.StatusCode.PERMISSION_DENIED,
    RecipientKeyMissing: grpc.StatusCode.FAILED_PRECONDITION,
    AlreadyEnded: grpc.StatusCode.FAILED_PRECONDITION,
    StateChanged: grpc.StatusCode.FAILED_PRECONDITION,
    NoZvhPartner: grpc.StatusCode.FAILED_PRECONDITION,
    HoldNotFound: grpc.StatusCode.NOT_FOUND,
    PersonNotFound: grpc.StatusCode.NOT_FOUND,
    PersonStateConflict: grpc.StatusCode.FAILED_PRECONDITION,
    GatewayKeyUnknown: grpc.StatusCode.FAILED_PRECONDITION,
    SealingRequired: grpc.StatusCode.FAILED_PRECONDITION,
    # The request id names another call: resending cannot help (409 Conflict in HTTP terms).
    RequestIdReused: grpc.StatusCode.ALREADY_EXISTS,
    # The first call with the id is still under way: resending the same request will.
    RequestInProgress: grpc.StatusCode.UNAVAILABLE,
}
# Trailing-metadata key that carries BrokerError.reason, for clients that act on it.
REASON_METADATA_KEY = "ketenpoort-reason"

R = TypeVar("R")


def status_of(exc: BrokerError) -> grpc.StatusCode:
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return grpc.StatusCode.INTERNAL


async def serve_call(
    method: str,
    context: aio.ServicerContext[Any, Any],
    metrics: Metrics,
    work: Callable[[], Awaitable[R]],
) -> R:
    """Run one RPC: translate use-case errors, count the outcome, time it."""
    start = time.perf_counter()
    code = grpc.StatusCode.OK
    try:
        return await work()
    except BrokerError as exc:
        code = status_of(exc)
        if isinstance(exc, Refused):
            metrics.refusal(exc.code)
        if exc.reason:
            context.set_trailing_metadata(((REASON_METADATA_KEY, exc.reason),))
        await _abort(context, code, str(exc))
    except aio.AbortError:
        code = context.code() or grpc.StatusCode.UNKNOWN
        raise
    except Exception as exc:
        code = unexpected_error_status(method, exc)
        if code is grpc.StatusCode.UNAVAILABLE:
            metrics.database_unavailable_call()
        await _abort(context, code, UNEXPECTED_MESSAGE[code])
    finally:
        metrics.request_done(method, code.name, time.perf_counter() - start)


UNEXPECTED_MESSAGE = {
    grpc.StatusCode.UNAVAILABLE: DATABASE_UNAVAILABLE,
    grpc.StatusCode.INTERNAL: "internal error; see the gateway log",
}


def unexpected_error_status(method: str, exc: Exception) -> grpc.StatusCode:
    """The status of an error no use case raised on purpose, logged by its type only
    (exception text can carry request content): UNAVAILABLE when the database is briefly
    away (a client retries), INTERNAL for anything else."""
    if database_unavailable(exc):
        log.warning("database unavailable in %s: %s", method, type(exc).__name__)
        return grpc.StatusCode.UNAVAILABLE
    log.error("internal error in %s: %s", method, type(exc).__name__)
    return grpc.StatusCode.INTERNAL


async def _abort(
    context: aio.ServicerContext[Any, Any], code: grpc.StatusCode, msg: str
) -> NoReturn:
    await context.abort(code, msg)
    raise AssertionError("unreachable: abort raises")
