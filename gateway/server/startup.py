"""What a gateway start has opened so far, closed again when a later step fails.

``start_gateway`` runs one builder per part (probes, policy, keys, stores, services, server,
background tasks). Each builder hands what it opened, with how to close it, to the
``Startup``; when a later step raises, everything opened is closed in reverse order (the
server stopped, tasks stopped, the log writer closed, the engine disposed, the keystore
closed, the probe port freed), so a failed start leaves no thread, task, connection or port
behind, and the error that stopped it is the one raised. Once the start completes the
gateway owns all of it (``Gateway.stop``).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType

__all__ = ["Startup"]

log = logging.getLogger("ketenpoort.server")

Closer = Callable[[], Awaitable[object] | object]


class Startup:
    def __init__(self) -> None:
        self._opened: list[tuple[str, Closer]] = []

    def opened(self, what: str, close: Closer) -> None:
        """``what`` is open now; ``close()`` (a function or a coroutine function) undoes it."""
        self._opened.append((what, close))

    async def unwind(self) -> None:
        """Close everything opened, newest first; a failing close is logged, the rest go on."""
        while self._opened:
            what, close = self._opened.pop()
            try:
                result = close()
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                log.error("after a failed start, closing %s failed too (%s)",
                          what, type(exc).__name__)

    async def __aenter__(self) -> Startup:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            await self.unwind()
        # A completed start hands everything over to the gateway.
        self._opened.clear()
