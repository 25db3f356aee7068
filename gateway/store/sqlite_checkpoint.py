"""WAL checkpoints for SQLite, run beside the accountability log writer instead of inside it.

SQLite normally checkpoints inside whichever commit pushes the write-ahead log past its
threshold, so every few thousand records one append waits for the whole database file to be
written and synced. Here the log writer's connection only checkpoints as a backstop, and a
thread of its own runs passive checkpoints shortly after batches commit; they copy committed
pages while the writer goes on appending, and never change what a commit makes durable.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine

# SQLite's own default threshold, in pages, restored on connections returned to the pool.
SQLITE_DEFAULT_AUTOCHECKPOINT = 1000
# The writer still checkpoints by itself if the background thread falls this far behind.
WRITER_AUTOCHECKPOINT_BACKSTOP = 20_000
DEFAULT_CHECKPOINT_INTERVAL_S = 0.2


def is_sqlite_file(engine: Engine) -> bool:
    database = engine.url.database
    return engine.dialect.name == "sqlite" and database not in (None, "", ":memory:")


def set_autocheckpoint(connection: Any, pages: int) -> None:
    cursor = connection.cursor()
    try:
        cursor.execute(f"PRAGMA wal_autocheckpoint = {int(pages)}")
    finally:
        cursor.close()


class WalCheckpointer:
    """A thread that runs ``PRAGMA wal_checkpoint(PASSIVE)`` after it is poked.

    Pokes arriving while it works or waits are merged, so it checkpoints at most once per
    ``interval`` seconds however fast batches commit.
    """

    def __init__(self, engine: Engine, *, interval: float = DEFAULT_CHECKPOINT_INTERVAL_S):
        self._engine = engine
        self._interval = interval
        self._poked = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.checkpoints = 0
        self.failures = 0

    def start(self) -> None:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(
                target=self._run, name="sqlite-wal-checkpoint", daemon=True
            )
            self._thread.start()

    def poke(self) -> None:
        self._poked.set()

    def close(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            self._poked.set()
            thread.join()

    def _run(self) -> None:
        connection: Any = None
        try:
            while True:
                self._poked.wait()
                if self._stopping.is_set():
                    return
                self._poked.clear()
                connection = self._checkpoint(connection)
                if self._stopping.wait(self._interval):
                    return
        finally:
            if connection is not None:
                connection.close()

    def _checkpoint(self, connection: Any) -> Any:
        try:
            if connection is None:
                connection = self._engine.raw_connection()
            cursor = connection.cursor()
            try:
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
                cursor.fetchall()
            finally:
                cursor.close()
            self.checkpoints += 1
            return connection
        except Exception:
            # Nothing is lost: the writer's backstop checkpoint still bounds the log.
            self.failures += 1
            if connection is not None:
                connection.invalidate()
                connection.close()
            return None
