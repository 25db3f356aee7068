"""Bounds of the log positions (record seqs, tree sizes) a request may name.

The contract carries them as ``uint64``; both databases store them as signed 64-bit integers,
so a larger number would fail inside the driver. It is refused here, at the door.
"""

from __future__ import annotations

from gateway.broker.errors import InvalidRequest

MAX_LOG_POSITION = 2**63 - 1


def log_position(name: str, value: int) -> int:
    """``value`` unchanged, or ``InvalidRequest`` when no log can reach it."""
    if not 0 <= value <= MAX_LOG_POSITION:
        raise InvalidRequest(f"{name} must be between 0 and {MAX_LOG_POSITION}")
    return value
