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

A gateway run as several replicas is reached at several addresses (``GatewayAddresses``). A call
that ends UNAVAILABLE at one (connection refused, a replica draining for a restart) moves the
client on to the next address, whatever the call (``FailoverInterceptor`` on each address's
channel). A call that may be sent again after UNAVAILABLE (by the rules above) is sent to that
next address at once, without pausing and without counting as one of its attempts, until
every address was tried; only then does it pause as before. A call that may not be sent again
still fails, and the caller's next call goes to the next address.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from grpc import aio

__all__ = [
    "FailoverInterceptor",
    "GatewayAddresses",
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
log = logging.getLogger("ketenpoort.client")
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


class GatewayAddresses:
    """The addresses of one gateway's replicas (``host:port``), and the one calls go to now:
    the first, until a call there ends UNAVAILABLE; then the next, and so on round."""

    def __init__(self, addresses: str | Sequence[str]) -> None:
        listed = (addresses,) if isinstance(addresses, str) else tuple(addresses)
        if not listed or not all(isinstance(a, str) and a for a in listed):
            raise ValueError("give the gateway's address, or a sequence of its replicas' addresses")
        self.addresses: tuple[str, ...] = listed
        self._position = 0

    @property
    def position(self) -> int:
        """The index of the address calls go to now."""
        return self._position

    @property
    def current(self) -> str:
        return self.addresses[self._position]

    def failed(self, position: int) -> None:
        """A call to the address at ``position`` ended UNAVAILABLE: calls go to the next one.
        Many calls in flight may fail at the same address; only the first of them moves on
        (the others find the client at another address already)."""
        if position != self._position or len(self.addresses) == 1:
            return
        self._position = (position + 1) % len(self.addresses)
        log.info(
            "gateway at %s unavailable; calls go to %s", self.addresses[position], self.current
        )


if TYPE_CHECKING:
    _UnaryInterceptor = aio.UnaryUnaryClientInterceptor[Any, Any]
else:  # generic only in grpc-stubs
    _UnaryInterceptor = aio.UnaryUnaryClientInterceptor


class FailoverInterceptor(_UnaryInterceptor):
    """On the channel to the address at ``position``: a call there that ends UNAVAILABLE moves
    ``addresses`` on. The call itself is handed back unchanged (its answer or error)."""

    def __init__(self, addresses: GatewayAddresses, position: int) -> None:
        self._addresses = addresses
        self._position = position

    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: aio.ClientCallDetails, request: Any
    ) -> Any:
        # The continuation is a coroutine giving the call (grpc-stubs says the call itself).
        call = await continuation(client_call_details, request)
        try:
            await call
        except aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAVAILABLE:
                self._addresses.failed(self._position)
        return call


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
    failover: GatewayAddresses | None = None,
) -> R:
    """``call()``, made again after a resendable failure, at most ``attempts`` times in all,
    pausing ``first_pause_s`` and then twice as long each time. ``call`` must send the same
    request id every time. With ``failover``, ``call`` must send to ``failover.current``
    (see the module docstring)."""
    return await _again_after(_RESENDABLE, call, attempts, first_pause_s, sleep, failover)


async def retry_while_unavailable(
    call: Callable[[], Awaitable[R]],
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    first_pause_s: float = DEFAULT_FIRST_PAUSE_S,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    failover: GatewayAddresses | None = None,
) -> R:
    """``call()``, made again after UNAVAILABLE, at most ``attempts`` times in all, with the
    same pauses; for calls that are safe to repeat without a request id."""
    return await _again_after(_UNAVAILABLE, call, attempts, first_pause_s, sleep, failover)


async def retry_when_limited(
    call: Callable[[], Awaitable[R]],
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    first_pause_s: float = DEFAULT_FIRST_PAUSE_S,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    failover: GatewayAddresses | None = None,
) -> R:
    """``call()``, made again only after the call limits turned it away (nothing was done);
    for calls that change the case without a request id (a phase change, an intake decision),
    which must not be repeated after any other failure, not even at another address."""
    return await _again_after(frozenset(), call, attempts, first_pause_s, sleep, failover)


async def _again_after(
    codes: frozenset[grpc.StatusCode],
    call: Callable[[], Awaitable[R]],
    attempts: int,
    first_pause_s: float,
    sleep: Callable[[float], Awaitable[None]],
    failover: GatewayAddresses | None = None,
) -> R:
    if attempts < 1:
        raise ValueError("attempts must be 1 or more")
    pause = first_pause_s
    left = attempts
    tried: set[int] = set()
    while True:
        if failover is not None:
            tried.add(failover.position)
        left -= 1
        try:
            return await call()
        except aio.AioRpcError as exc:
            hint = retry_after_s(exc)
            if hint is not None and hint <= MAX_RETRY_AFTER_S:
                wait = max(hint, pause)
            elif exc.code() in codes:
                wait = pause
            else:
                raise
            if failover is not None and failover.position not in tried:
                # Moved on to an address this call has not tried: at once, and not counted.
                left += 1
                continue
            if left <= 0:
                raise
        await sleep(wait)
        pause *= 2
