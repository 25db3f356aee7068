"""`ketenpoort serve` in a process of its own, for tests that need several gateways or a crash.

A gateway process reads a TOML file written here (the test's database, development keys,
no TLS on loopback, port 0, no metrics endpoint), announces its address on stdout and is
stopped with SIGTERM or killed with SIGKILL. Partner source systems run in the test's own
event loop and are named in the file; PostgreSQL databases of their own are made per test.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

from adapters.client import PartnerClient, PartnerCredentials
from adapters.gateway_keys import GatewayKeys
from adapters.source_requests import RequestOpening
from adapters.source_server import AnswerSealing, InMemoryBackend, RunningSource, serve_source
from gateway.cli.demo_data import SOURCE_RECORDS
from gateway.crypto.layout import GatewayKeyPaths
from gateway.server.config import shipped_policy_dir
from tests.conftest import pg_server_url
from tests.integration.harness import ROLES, SOURCE_PARTNERS, dev_registry

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
_ANNOUNCEMENT = re.compile(r"ketenpoort: serving on (\S+:\d+)")


@dataclass
class ServeProcess:
    """One running `ketenpoort serve`; its output is collected as it comes."""

    proc: subprocess.Popen[str]
    address: str = ""
    lines: list[str] = field(default_factory=list)
    _ready: threading.Event = field(default_factory=threading.Event)
    _reader: threading.Thread | None = None

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def client(self, keys: Path, partner: str, role: str | None = None) -> PartnerClient:
        creds = PartnerCredentials.from_key_dir(keys, partner, tls=False)
        return PartnerClient(self.address, creds, role=role or ROLES[partner])

    def stop(self) -> int:
        """SIGTERM: finish the calls in flight, commit the log, exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self._wait()

    def kill(self) -> int:
        """SIGKILL: no chance to finish anything."""
        if self.proc.poll() is None:
            self.proc.kill()
        return self._wait()

    def _wait(self) -> int:
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            # The output ends with the process; read it all before the pipe is closed.
            if self._reader is not None:
                self._reader.join(timeout=STOP_TIMEOUT_S)
            if self.proc.stdout is not None:
                self.proc.stdout.close()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            found = _ANNOUNCEMENT.search(line)
            if found and not self._ready.is_set():
                self.address = found.group(1)
                self._ready.set()
        self._ready.set()  # the process ended: whoever waits must look at it


def write_config(
    path: Path, *, database_url: str, keys: Path, data: Path, sources: Mapping[str, str]
) -> Path:
    """A gateway configuration file; ``sources`` maps partner id to a plaintext address.
    Without TLS there is no client certificate to bind tokens to: single-use bearer tokens."""
    dev_registry(keys, data / "registry")
    entries = "".join(
        f"\n[[sources]]\npartner = '{partner}'\naddress = '{address}'\ntls = false\n"
        for partner, address in sources.items()
    )
    path.write_text(
        "listen = '127.0.0.1:0'\n"
        f"database_url = '{database_url}'\n"
        f"policy_dir = '{shipped_policy_dir()}'\n"
        "policy_reload_interval_s = 0\n"
        f"keys_dir = '{keys}'\n"
        f"data_dir = '{data}'\n"
        f"checkpoint_dir = '{data / 'checkpoints'}'\n"
        "tls_mode = 'insecure'\n"
        "metrics_port = 0\n"
        # Generous: the sources share the test's event loop with the load.
        "source_deadline_s = 10.0\n" + entries
        # Tests of other things must not run into the call limits.
        + "\n[limits]\nrate_per_s = 1000000.0\nburst = 1000000\nmax_concurrent = 1000000\n",
        encoding="utf-8",
    )
    return path


def start_serve(config: Path, home: Path) -> ServeProcess:
    """Start `ketenpoort serve --config` and wait until it announces its address."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli.main", "serve", "--config", str(config)],
        env={**os.environ, "KETENPOORT_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    serving = ServeProcess(proc)
    serving._reader = threading.Thread(target=serving._read, name="serve-output", daemon=True)
    serving._reader.start()
    if not serving._ready.wait(START_TIMEOUT_S) or not serving.address:
        serving.kill()
        raise AssertionError(f"ketenpoort serve did not start:\n{serving.output}")
    return serving


@contextlib.asynccontextmanager
async def running_sources(keys: Path) -> AsyncIterator[dict[str, str]]:
    """A source system per source partner, in this event loop; partner id -> address. Each
    opens the gateway's sealed requests with its partner's private key from ``keys``, and seals
    and signs its answers (a gateway requires signed source answers)."""
    gateway_keys = GatewayKeys.from_public_key_file(GatewayKeyPaths.under(keys).hpke_pub)
    running: dict[str, RunningSource] = {}
    try:
        for partner, partner_type in SOURCE_PARTNERS.items():
            backend = InMemoryBackend()
            backend.add(SOURCE_RECORDS[partner_type])
            own = PartnerCredentials.from_key_dir(keys, partner, tls=False)
            running[partner] = await serve_source(
                backend,
                sealing=AnswerSealing.from_credentials(own, gateway_keys),
                requests=RequestOpening.from_credentials(own),
            )
        yield {partner: source.address for partner, source in running.items()}
    finally:
        for source in running.values():
            await source.stop(None)


def _libpq(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.contextmanager
def fresh_pg_database(prefix: str) -> Iterator[str]:
    """A PostgreSQL database of its own (``prefix`` + random), dropped afterwards; the test
    is skipped, with the reason, when no server answers."""
    server = pg_server_url()
    try:
        with psycopg.connect(_libpq(server), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        shown = server.render_as_string(hide_password=True)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        pytest.skip(f"PostgreSQL not reachable at {shown}: {first}")
    name = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(_libpq(server), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(server), autocommit=True) as conn:
            # A killed gateway's connections may linger on the server until noticed.
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
