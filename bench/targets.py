"""The processes under measurement: a partner source, the pass-through proxy and the gateway.

Each runs in its own process (started with ``spawn``) so that the load generator's GIL does
not slow it down. A process reports ``("ready", port)`` or ``("error", text)`` on its pipe,
then obeys commands until ``("stop",)``, answering ``("stopped", info)``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from passthrough import serve_passthrough
from profiling import ProcessProfiler
from sampling import Sampler
from tls_setup import BenchTls

from adapters.source_server import InMemoryBackend, SubjectRecord, serve_source

Command = tuple[Any, ...]
Handler = Callable[[Command], Awaitable[None]]


@dataclass(frozen=True)
class GatewaySpec:
    database_url: str
    keys_dir: Path
    source_address: str
    source_partner_type: str
    profile_path: Path | None = None
    # "sample" (sampling, all threads), "cpu" or "wall" (cProfile with that clock).
    profile_mode: str = "sample"
    # Mutual TLS with certificate-bound tokens (the production configuration), to the
    # clients and to the source; otherwise plaintext with unbound tokens.
    mutual_tls: bool = False
    # The replica's name: several gateway processes on one database each keep their own
    # checkpoint file, as production replicas do.
    replica_id: str = "r0"


def run_source(
    conn: Connection, records: list[dict[str, Any]], tls: BenchTls | None = None
) -> None:
    """A partner system serving the given records over the source contract."""
    asyncio.run(_guard(conn, _source_main(conn, records, tls)))


def run_proxy(conn: Connection, upstream_address: str, tls: BenchTls | None = None) -> None:
    asyncio.run(_guard(conn, _proxy_main(conn, upstream_address, tls)))


def run_gateway(conn: Connection, spec: GatewaySpec) -> None:
    asyncio.run(_guard(conn, _gateway_main(conn, spec)))


def record_to_dict(record: SubjectRecord) -> dict[str, Any]:
    return {"bsn": record.bsn, "role": record.role, "fields": dict(record.fields)}


def record_from_dict(data: Mapping[str, Any]) -> SubjectRecord:
    return SubjectRecord(bsn=str(data["bsn"]), role=str(data["role"]), fields=dict(data["fields"]))


def process_cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process, all threads, from /proc (Linux)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command name: state is field 3, utime 14 and stime 15 (1-based, man proc).
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


async def _guard(conn: Connection, main: Awaitable[None]) -> None:
    try:
        await main
    except Exception:
        conn.send(("error", traceback.format_exc()))
        raise


async def _serve_commands(conn: Connection, handle: Handler | None = None) -> None:
    """Obey commands until ("stop",)."""
    while True:
        command: Command = await asyncio.to_thread(conn.recv)
        if command[0] == "stop":
            return
        if handle is None:
            raise ValueError(f"unknown command {command[0]!r}")
        await handle(command)
        conn.send(("done",))


async def _source_main(
    conn: Connection, records: list[dict[str, Any]], tls: BenchTls | None
) -> None:
    backend = InMemoryBackend()
    for data in records:
        backend.add(record_from_dict(data))
    credentials = tls.source.credentials() if tls is not None else None
    running = await serve_source(backend, credentials=credentials, clear_answers=True)
    conn.send(("ready", running.port))

    async def handle(command: Command) -> None:
        if command[0] != "add_record":
            raise ValueError(f"unknown command {command[0]!r}")
        backend.add(record_from_dict(command[1]))

    await _serve_commands(conn, handle)
    fetches = len(running.servicer.seen)
    await running.stop(None)
    conn.send(("stopped", {"fetches": fetches}))


async def _proxy_main(conn: Connection, upstream_address: str, tls: BenchTls | None) -> None:
    server, upstream, port = await serve_passthrough(
        upstream_address,
        credentials=tls.gateway_side.credentials() if tls is not None else None,
        upstream_tls=tls.upstream if tls is not None else None,
    )
    conn.send(("ready", port))
    await _serve_commands(conn)
    await server.stop(None)
    await upstream.close(None)
    conn.send(("stopped", {}))


async def _gateway_main(conn: Connection, spec: GatewaySpec) -> None:
    profiler = None
    if spec.profile_path is not None and spec.profile_mode != "sample":
        profiler = ProcessProfiler(spec.profile_mode)
        profiler.start()
    # Imported here so that a gateway that does not import yet fails in this process,
    # with its traceback sent to the runner.
    from gateway.server.app import gateway_client_tls, start_gateway
    from gateway.server.config import GatewayConfig, TlsMode, shipped_policy_dir
    from gateway.server.limit_settings import LimitSettings
    from gateway.sources.grpc_source import GrpcSource

    config = GatewayConfig(
        listen="127.0.0.1:0",
        database_url=spec.database_url,
        policy_dir=shipped_policy_dir(),
        keys_dir=spec.keys_dir,
        # The partner registry is DATA_DIR/registry, written by the runner.
        data_dir=spec.keys_dir.parent,
        # The same transport as the direct and proxy targets: mutual TLS with tokens bound
        # to the client certificate (production), or plaintext, where tokens cannot be bound.
        tls_mode=TlsMode.MUTUAL if spec.mutual_tls else TlsMode.INSECURE,
        certificate_bound_tokens=spec.mutual_tls,
        metrics_port=None,
        replica_id=spec.replica_id,
        # The benchmark measures throughput, not the per-partner call limits.
        limits=LimitSettings.lifted(),
    )
    # The source answers in clear and is asked in clear, like the direct and proxy targets,
    # so that all three carry the same bytes.
    source = GrpcSource(
        spec.source_address,
        gateway_client_tls(spec.keys_dir) if spec.mutual_tls else None,
        clear_requests=True,
    )
    gateway = await start_gateway(config, sources={spec.source_partner_type: source})
    sampler = None
    if spec.profile_path is not None and spec.profile_mode == "sample":
        sampler = Sampler()
        sampler.start()
    conn.send(("ready", gateway.port))
    await _serve_commands(conn)
    info: dict[str, Any] = {
        "log_records": gateway.log.records_committed,
        "log_batches": gateway.log.batches_committed,
    }
    if gateway.admission is not None:
        info["token_claims"] = gateway.admission.claims_committed
        info["token_batches"] = gateway.admission.batches_committed
    await gateway.stop(grace=None)
    if sampler is not None and spec.profile_path is not None:
        info["profile"] = sampler.stop()
    if profiler is not None and spec.profile_path is not None:
        info["profile"] = profiler.stop(spec.profile_path)
    conn.send(("stopped", info))


class TargetProcess:
    """The runner's handle on one target process."""

    def __init__(self, name: str, process: BaseProcess, conn: Connection) -> None:
        self.name = name
        self.process = process
        self.conn = conn

    @classmethod
    def spawn(cls, name: str, entry: Callable[..., None], *args: Any) -> TargetProcess:
        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe()
        process = ctx.Process(target=entry, args=(theirs, *args), name=name, daemon=True)
        process.start()
        theirs.close()
        return cls(name, process, ours)

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    async def receive(self, timeout_s: float) -> Command:
        ready = await asyncio.to_thread(self.conn.poll, timeout_s)
        if not ready:
            raise TimeoutError(f"{self.name} did not answer within {timeout_s:.0f} s")
        message: Command = self.conn.recv()
        if message[0] == "error":
            raise RuntimeError(f"{self.name} failed:\n{message[1]}")
        return message

    async def ready(self, timeout_s: float = 120.0) -> int:
        message = await self.receive(timeout_s)
        if message[0] != "ready":
            raise RuntimeError(f"{self.name} sent {message[0]!r} before it was ready")
        return int(message[1])

    async def command(self, *command: Any, timeout_s: float = 30.0) -> None:
        self.conn.send(command)
        await self.receive(timeout_s)

    async def stop(self, timeout_s: float = 60.0) -> dict[str, Any]:
        self.conn.send(("stop",))
        message = await self.receive(timeout_s)
        await asyncio.to_thread(self.process.join, timeout_s)
        info: dict[str, Any] = message[1] if message[0] == "stopped" else {}
        return info

    def kill(self) -> None:
        """Last resort when the run failed: end this process (only this one)."""
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)

    def cpu_seconds(self) -> float | None:
        return process_cpu_seconds(self.pid)
