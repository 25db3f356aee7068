"""The HTTP plumbing both demo systems share: a threaded server on 127.0.0.1 in a background
thread, bearer-token checking, request counting and controllable faults."""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["Faults", "LoopbackHttpServer", "Reply", "Request"]


@dataclass
class Faults:
    """How the server misbehaves, for tests and for showing the runtime's failure handling.

    ``only`` restricts the faults to requests whose path contains one of these words (a FHIR
    resource type, an API path segment); empty means every request."""

    delay_s: float = 0.0  # answer this much later
    status: int = 0  # answer every request with this HTTP status (e.g. 503) instead
    malformed: bool = False  # answer 200 with a body that is not JSON
    only: tuple[str, ...] = ()

    def applies(self, path: str) -> bool:
        return not self.only or any(word in path for word in self.only)


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query
    query: dict[str, list[str]]
    headers: dict[str, str]

    def one(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any  # JSON-serialisable, or bytes sent as they are
    content_type: str = "application/json"


@dataclass
class LoopbackHttpServer:
    """Serves ``handle(request) -> Reply`` on 127.0.0.1 (an ephemeral port unless ``port``).

    ``token``: when set, every request must carry ``Authorization: Bearer <token>`` (or the
    basic credentials in ``basic``), else 401. ``counts`` counts answered requests by the key
    ``count_key(request)`` returns (e.g. the FHIR resource type)."""

    handle: Callable[[Request], Reply]
    count_key: Callable[[Request], str]
    token: str | None = None
    basic: tuple[str, str] | None = None
    port: int = 0
    tls: ssl.SSLContext | None = None
    faults: Faults = field(default_factory=Faults)
    counts: Counter[str] = field(default_factory=Counter)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def address(self) -> str:
        if self._server is None:
            raise RuntimeError("the server is not started")
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> LoopbackHttpServer:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler_for(self))
        server.daemon_threads = True
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        self._server = server
        # A short poll interval: stop() returns promptly (tests start and stop many).
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                                        name="demo-system", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LoopbackHttpServer:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def count(self, request: Request) -> None:
        with self._lock:
            self.counts[self.count_key(request)] += 1

    def authorised(self, headers: dict[str, str]) -> bool:
        if self.token is None and self.basic is None:
            return True
        given = headers.get("authorization", "")
        if self.token is not None and given == f"Bearer {self.token}":
            return True
        if self.basic is not None:
            user, password = self.basic
            expected = base64.b64encode(f"{user}:{password}".encode()).decode()
            return given == f"Basic {expected}"
        return False


def _handler_for(owner: LoopbackHttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes: with Nagle's algorithm on, the body
        # waits for the client's delayed ACK (some 40 ms on Linux) on every kept-alive call.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            split = urlsplit(self.path)
            request = Request(
                method="GET",
                path=split.path,
                query=parse_qs(split.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
            )
            owner.count(request)
            faults = owner.faults
            if faults.applies(request.path):
                if faults.delay_s:
                    time.sleep(faults.delay_s)
                if faults.status:
                    self._send(Reply(faults.status, {"error": "injected fault"}))
                    return
            if not owner.authorised(request.headers):
                self._send(Reply(401, {"error": "unauthorised"}))
                return
            if faults.malformed and faults.applies(request.path):
                self._send(Reply(200, b'{"resourceType": "Bundle", "entry": [', ))
                return
            try:
                reply = owner.handle(request)
            except Exception:  # a demo system answers 500 rather than drop the connection
                reply = Reply(500, {"error": "internal error"})
            self._send(reply)

        def _send(self, reply: Reply) -> None:
            body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (its deadline passed): nothing to answer

        def log_message(self, format: str, *args: Any) -> None:
            pass  # request lines carry identifiers (a BSN in a query): never logged

    return Handler
