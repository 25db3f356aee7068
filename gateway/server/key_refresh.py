"""Moved to :mod:`gateway.runtime.key_refresh` (the gateway's background tasks live together
there); this name stays for code that imports it from here."""

from gateway.runtime.key_refresh import (
    follow_key_changes,
)

__all__ = [
    "follow_key_changes",
]
