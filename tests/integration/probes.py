"""Reading a gateway's health the way an orchestrator does: the plain-HTTP probe port and
grpc.health.v1 Check over the gateway's own (mutual-TLS) port."""

from __future__ import annotations

import asyncio
import http.client

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
EXCHANGE = "ketenpoort.v1.ExchangeService"
ACCOUNTABILITY = "ketenpoort.v1.AccountabilityService"


def _get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8")
    finally:
        conn.close()


async def probe(port: int, path: str) -> tuple[int, str]:
    """(HTTP status, body) of ``GET path`` on the probe port."""
    return await asyncio.to_thread(_get, port, path)


async def check(channel: aio.Channel, service: str = "") -> int | grpc.StatusCode:
    """The status Check reports for ``service``, or the gRPC code it failed with."""
    stub = health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call]
    try:
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    except aio.AioRpcError as exc:
        return exc.code()
    return int(reply.status)
