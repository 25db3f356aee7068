"""A TCP proxy in front of PostgreSQL that the test can cut: to the gateway behind it, a
cut is the server going away (every connection reset, new ones refused until restored),
while the shared PostgreSQL server itself is never touched."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.engine import make_url


class DbProxy:
    def __init__(self, host: str, port: int) -> None:
        self._upstream = (host, port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.down = False
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def cut(self) -> None:
        """Reset every connection and refuse new ones, as a restarting server does."""
        self.down = True
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self.down = False

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.transport.abort()


@contextlib.asynccontextmanager
async def proxied(db_url: str) -> AsyncIterator[tuple[str, DbProxy]]:
    """``db_url`` (PostgreSQL) through a proxy of this test: (the URL to use, the proxy)."""
    url = make_url(db_url)
    proxy = DbProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    try:
        yield url.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False
        ), proxy
    finally:
        await proxy.stop()
