"""The probe port: plain HTTP for orchestrators, with no TLS and no partner certificate.

``GET /livez``  200 ``ok`` while the gateway's event loop runs (``readiness.Liveness``), else
                503 with the reason.
``GET /readyz`` 200 ``ok`` while the replica is ready (``readiness.Readiness``), else 503 with
                one ``check: reason`` line per failing check.

It serves from a thread of its own, so an event loop that is busy, or wedged, still gets an
answer (a wedged one: a failing /livez) rather than a timeout. It reads state the gateway
keeps; a probe never touches the database. Nothing it answers names a person or a partner.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["ProbeServer"]


class ProbeServer:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        live: Callable[[], str | None],
        ready: Callable[[], tuple[str, ...]],
    ) -> None:
        """Bind now (OSError when the address is taken); serve from ``start()``.
        ``live()`` is None or why the process is not live; ``ready()`` the failing checks."""
        handler = _handler(live, ready)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="probe-server", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        """Stop serving and free the port."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._server.shutdown()
            thread.join()
        self._server.server_close()


def _handler(
    live: Callable[[], str | None], ready: Callable[[], tuple[str, ...]]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "ketenpoort-probe"
        sys_version = ""

        def do_GET(self) -> None:  # noqa: N802 (the http.server convention)
            path = self.path.split("?", 1)[0]
            if path == "/livez":
                problem = live()
                self._answer(200, ["ok"]) if problem is None else self._answer(503, [problem])
            elif path == "/readyz":
                problems = ready()
                self._answer(503, list(problems)) if problems else self._answer(200, ["ok"])
            else:
                self._answer(404, ["not found: the probe port answers /livez and /readyz"])

        def _answer(self, status: int, lines: list[str]) -> None:
            body = ("\n".join(lines) + "\n").encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            # Probes come every few seconds; they are not worth a log line each.
            return

    return Handler
