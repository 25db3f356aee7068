"""The gateway's grpc.health.v1 service, served on the event loop.

grpc's thread-pool servicer (``grpc_health.v1.health.HealthServicer``) parks one executor
thread for as long as a ``Watch`` stream is open; on the asyncio server that pool is small
(min(32, CPUs + 4)), so a handful of watchers took every thread for good: calls stopped being
answered and SIGTERM no longer ended the process. This servicer runs ``Check``, ``List`` and
``Watch`` as coroutines, like grpc's ``health.aio`` servicer, and adds what the gateway needs:

- ``set(service, status)`` is an ordinary function, so any part of the gateway (start-up,
  graceful shutdown, the log watch reporting the accountability service NOT_SERVING) can set a
  status from synchronous code, or from a worker thread;
- at most ``max_watchers`` ``Watch`` streams are open at once; one more is answered
  RESOURCE_EXHAUSTED (``Check`` is never limited: orchestrators probe with it);
- ``enter_graceful_shutdown()`` reports NOT_SERVING for every service, tells each watcher so,
  and ends its stream, so a stopping gateway does not wait out its grace period for them.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

__all__ = ["DEFAULT_MAX_WATCHERS", "HealthService", "NOT_SERVING", "SERVING", "SERVICE_NAME"]

SERVICE_NAME = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
_SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
DEFAULT_MAX_WATCHERS = 100

# health_pb2.HealthCheckResponse.ServingStatus values (an int enum).
Status = int


class HealthService(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
    """grpc.health.v1.Health on the event loop it was created on (create it inside it)."""

    def __init__(self, *, max_watchers: int = DEFAULT_MAX_WATCHERS) -> None:
        if max_watchers < 0:
            raise ValueError("max_watchers must be 0 or more")
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._max_watchers = max_watchers
        self._status: dict[str, Status] = {"": SERVING}
        # One wake-up per open Watch stream; set whenever any status changes.
        self._watchers: set[asyncio.Event] = set()
        self._shutting_down = False

    def add_to_server(self, server: aio.Server) -> None:
        health_pb2_grpc.add_HealthServicer_to_server(self, server)

    @property
    def watchers(self) -> int:
        """Watch streams open now."""
        return len(self._watchers)

    def status(self, service: str = "") -> Status | None:
        return self._status.get(service)

    def set(self, service: str, status: Status) -> None:
        """Report ``status`` for ``service`` ("" is the server as a whole). Ignored once the
        gateway is shutting down: it stays NOT_SERVING. Safe to call from any thread."""
        if threading.get_ident() != self._thread:
            self._loop.call_soon_threadsafe(self.set, service, status)
            return
        if self._shutting_down:
            return
        self._status[service] = status
        self._wake_watchers()

    def enter_graceful_shutdown(self) -> None:
        """Every service NOT_SERVING from now on; watchers are told and their streams end."""
        if threading.get_ident() != self._thread:
            self._loop.call_soon_threadsafe(self.enter_graceful_shutdown)
            return
        for service in self._status:
            self._status[service] = NOT_SERVING
        self._shutting_down = True
        self._wake_watchers()

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: aio.ServicerContext[Any, Any]
    ) -> health_pb2.HealthCheckResponse:
        status = self._status.get(request.service)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return health_pb2.HealthCheckResponse(status=status)

    async def List(
        self, request: health_pb2.HealthListRequest, context: aio.ServicerContext[Any, Any]
    ) -> health_pb2.HealthListResponse:
        return health_pb2.HealthListResponse(
            statuses={
                service: health_pb2.HealthCheckResponse(status=status)
                for service, status in self._status.items()
            }
        )

    async def Watch(
        self, request: health_pb2.HealthCheckRequest, context: aio.ServicerContext[Any, Any]
    ) -> None:
        if len(self._watchers) >= self._max_watchers:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "too many health watchers on this gateway; poll with Check instead",
            )
        wake = asyncio.Event()
        self._watchers.add(wake)
        sent: Status | None = None
        try:
            while True:
                # Cleared before the status is read: a change after the read sets it again.
                wake.clear()
                status = self._status.get(request.service, _SERVICE_UNKNOWN)
                if status != sent:
                    await context.write(health_pb2.HealthCheckResponse(status=status))
                    sent = status
                if self._shutting_down:
                    return
                await wake.wait()
        finally:
            self._watchers.discard(wake)

    def _wake_watchers(self) -> None:
        for wake in self._watchers:
            wake.set()
