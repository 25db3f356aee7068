"""Moved to :mod:`gateway.runtime.log_watch` (the gateway's background tasks live together
there); this name stays for code that imports it from here."""

from gateway.runtime.log_watch import (
    ALARM_POLL_S,
    LogWatch,
)

__all__ = [
    "ALARM_POLL_S",
    "LogWatch",
]
