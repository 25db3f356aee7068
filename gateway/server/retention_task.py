"""Moved to :mod:`gateway.runtime.retention` (the gateway's background tasks live together
there); this name stays for code that imports it from here."""

from gateway.runtime.retention import (
    OPERATION,
    RetentionTask,
    start_retention,
)

__all__ = [
    "OPERATION",
    "RetentionTask",
    "start_retention",
]
