"""Moved to :mod:`gateway.runtime.rewrap` (the gateway's background tasks live together
there); this name stays for code that imports it from here."""

from gateway.runtime.rewrap import (
    KEY_CHECK_S,
    RewrapTask,
    WatchedKeks,
    start_rewrap,
)

__all__ = [
    "KEY_CHECK_S",
    "RewrapTask",
    "WatchedKeks",
    "start_rewrap",
]
