"""A partner's source system in a process of its own, so that a test can hang it (SIGSTOP)
without hanging itself, and let it go again (SIGCONT).

``python -m tests.integration.source_process KEYS PARTNER`` serves PARTNER's demo records from
an InMemoryBackend as the harness's sources do: mutual TLS with the partner's certificate,
requests opened with its private sealing key, answers sealed to the gateway's key and signed
with its token key. It prints ``source serving on HOST:PORT`` and serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc

from adapters.client import PartnerCredentials
from adapters.gateway_keys import GatewayKeys
from adapters.source_requests import RequestOpening
from adapters.source_server import AnswerSealing, InMemoryBackend, serve_source
from gateway.cli.demo_data import SOURCE_RECORDS
from gateway.crypto.layout import GatewayKeyPaths
from tests.integration.harness import SOURCE_PARTNERS

_ANNOUNCEMENT = "source serving on "
START_TIMEOUT_S = 60.0
_REPO = Path(__file__).resolve().parents[2]


async def _serve(keys: Path, partner: str) -> None:
    backend = InMemoryBackend()
    backend.add(SOURCE_RECORDS[SOURCE_PARTNERS[partner]])
    own = PartnerCredentials.from_key_dir(keys, partner)
    assert own.tls is not None and own.tls.key_pem and own.tls.cert_pem
    gateway_keys = GatewayKeys.from_public_key_file(GatewayKeyPaths.under(keys).hpke_pub)
    running = await serve_source(
        backend,
        credentials=grpc.ssl_server_credentials(
            [(own.tls.key_pem, own.tls.cert_pem)],
            root_certificates=own.tls.ca_pem,
            require_client_auth=True,
        ),
        sealing=AnswerSealing.from_credentials(own, gateway_keys),
        requests=RequestOpening.from_credentials(own),
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print(f"{_ANNOUNCEMENT}{running.address}", flush=True)
    await stop.wait()
    await running.stop(None)


@dataclass
class SourceProcess:
    proc: subprocess.Popen[str]
    address: str

    def hang(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)


@contextlib.contextmanager
def source_process(keys: Path, partner: str) -> Iterator[SourceProcess]:
    """``partner``'s source system in a child process, stopped (and resumed first, should the
    test have left it hung) on exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.source_process", str(keys), partner],
        cwd=_REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        # The first line is the announcement; a process that dies first ends the read.
        ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT_S)
        line = proc.stdout.readline() if ready else ""
        if not line.startswith(_ANNOUNCEMENT):
            raise AssertionError(f"the source of {partner} did not start: {line!r}")
        yield SourceProcess(proc, line[len(_ANNOUNCEMENT):].strip())
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        try:
            proc.wait(timeout=START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


if __name__ == "__main__":
    asyncio.run(_serve(Path(sys.argv[1]), sys.argv[2]))
