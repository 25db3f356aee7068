"""Random identifiers: trace and span ids, and the ids of cases, entries and disclosures.

Every draw from ``os.urandom`` is a system call that releases the interpreter lock, and on a
busy gateway another thread then takes it and the event loop waits to get it back. The ids
of one request took three such draws. Here the operating system's random bytes are drawn a
few kilobytes at a time and handed out in slices: the ids are just as unpredictable, and a
forked child starts with an empty buffer, so parent and child never hand out the same id.

Keys and nonces are not drawn from here; the crypto package takes those from the operating
system directly.
"""

from __future__ import annotations

import os
import threading

DEFAULT_BUFFER_BYTES = 4096
ID_BYTES = 16


class RandomBuffer:
    """Slices of ``os.urandom`` output, each handed out once; safe across threads and forks."""

    def __init__(self, size: int = DEFAULT_BUFFER_BYTES) -> None:
        if size < ID_BYTES:
            raise ValueError(f"the buffer holds at least {ID_BYTES} bytes")
        self._size = size
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        # A new lock too: a fork may have copied the old one while another thread held it.
        self._lock = threading.Lock()
        self._buffer = b""
        self._offset = 0

    def take(self, n: int) -> bytes:
        with self._lock:
            end = self._offset + n
            if end > len(self._buffer):
                self._buffer = os.urandom(max(self._size, n))
                self._offset, end = 0, n
            chunk = self._buffer[self._offset : end]
            self._offset = end
        return chunk


_random = RandomBuffer()


def random_hex(n_bytes: int) -> str:
    """``n_bytes`` random bytes as lowercase hex."""
    return _random.take(n_bytes).hex()


def new_id(prefix: str) -> str:
    """``prefix`` followed by 128 random bits in hex, e.g. ``d_5f0c…``."""
    return prefix + _random.take(ID_BYTES).hex()
