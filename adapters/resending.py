"""Resending registrations and case-file entries that may not have arrived.

The gateway does the work of a request id once per partner: a registration or case-file entry
resent with the request id of the first attempt gets the first attempt's answer and changes
nothing. So a call whose answer was lost (a deadline passed, the connection dropped, the
gateway was briefly unavailable or still finishing the first attempt) is sent again with the
same request id, a few times with a growing pause. Every other failure is the caller's: a
refusal, a malformed request, or a request id already used for another request
(ALREADY_EXISTS, ``request_id_reused``), which resending cannot fix.

Calls that change nothing but the log (disclosures, triage, the accountability service's
reads, the gateway's keys) are sent again after UNAVAILABLE only: the gateway could not be
reached, or its database was briefly away (a restart, a full disk), and did nothing the
caller was told of. A second attempt that succeeds is a second, logged disclosure.

Both kinds are also sent again after a call turned away by the gateway's call limits
(RESOURCE_EXHAUSTED with trailing metadata ``retry-after-ms``): such a call was turned away
before any work, so repeating it is always safe. The pause is the gateway's hint (or the
growing pause, if longer); a hint longer than ``MAX_RETRY_AFTER_S`` is the caller's to honour,
and the call fails with it at once. RESOURCE_EXHAUSTED without the hint (a message too large)
is never repeated.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from grpc import aio

__all__ = [
    "DEFAULT_ATTEMPTS",
    "DEFAULT_FIRST_PAUSE_S",
    "MAX_RETRY_AFTER_S",
    "retry_after_s",
    "is_resendable",
    "resend_until_answered",
    "retry_while_unavailable",
    "retry_when_limited",
]

R = TypeVar("R")
DEFAULT_ATTEMPTS = 3
DEFAULT_FIRST_PAUSE_S = 0.2
# The answer may have been lost after the gateway did the work, or the gateway could not be
# reached: either way the same request may be sent again. UNAVAILABLE includes the gateway's
# "request_in_progress" (the first attempt is still being finished).
_RESENDABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


_UNAVAILABLE = frozenset({grpc.StatusCode.UNAVAILABLE})
# The longest pause the client library waits out by itself on a call-limit hint.
MAX_RETRY_AFTER_S = 5.0
_RETRY_AFTER_KEY = "retry-after-ms"


def retry_after_s(exc: BaseException) -> float | None:
    """The gateway's hint, in seconds, for a call turned away by its call limits (nothing was
    done), or None for any other failure."""
    if not isinstance(exc, aio.AioRpcError) or exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
        return None
    trailing = exc.trailing_metadata()
    value = trailing.get(_RETRY_AFTER_KEY) if isinstance(trailing, aio.Metadata) else None
    if not isinstance(value, str) or not value.isdigit():
        return None
    return int(value) / 1000


def is_resendable(exc: BaseException) -> bool:
    """True for a failure after which the same request (same request id) may be sent again."""
    return isinstance(exc, aio.AioRpcError) and exc.code() in _RESENDABLE


async def resend_until_answered(
    call: Callable[[], Awaitable[R]],
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    first_pause_s: float = DEFAULT_FIRST_PAUSE_S,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> R:
    """``call()``, made again after a resendable failure, at most ``attempts`` times in all,
    pausing ``first_pause_s`` and then twice as long each time. ``call`` must send the same
    request id every time."""
    return await _again_after(_RESENDABLE, call, attempts, first_pause_s, sleep)


async def retry_while_unavailable(
    call: Callable[[], Awaitable[R]],
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    first_pause_s: float = DEFAULT_FIRST_PAUSE_S,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> R:
    """``call()``, made again after UNAVAILABLE, at most ``attempts`` times in all, with the
    same pauses; for calls that are safe to repeat without a request id."""
    return await _again_after(_UNAVAILABLE, call, attempts, first_pause_s, sleep)


async def retry_when_limited(
    call: Callable[[], Awaitable[R]],
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    first_pause_s: float = DEFAULT_FIRST_PAUSE_S,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> R:
    """``call()``, made again only after the call limits turned it away (nothing was done);
    for calls that change the case without a request id (a phase change, an intake decision),
    which must not be repeated after any other failure."""
    return await _again_after(frozenset(), call, attempts, first_pause_s, sleep)


async def _again_after(
    codes: frozenset[grpc.StatusCode],
    call: Callable[[], Awaitable[R]],
    attempts: int,
    first_pause_s: float,
    sleep: Callable[[float], Awaitable[None]],
) -> R:
    if attempts < 1:
        raise ValueError("attempts must be 1 or more")
    pause = first_pause_s
    for _ in range(attempts - 1):
        wait = pause
        try:
            return await call()
        except aio.AioRpcError as exc:
            hint = retry_after_s(exc)
            if hint is not None and hint <= MAX_RETRY_AFTER_S:
                wait = max(hint, pause)
            elif exc.code() not in codes:
                raise
        await sleep(wait)
        pause *= 2
    return await call()
