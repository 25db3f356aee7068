"""Moved to :mod:`gateway.runtime.registry_reload` (the gateway's background tasks live together
there); this name stays for code that imports it from here."""

from gateway.runtime.registry_reload import (
    RegistryReloader,
)

__all__ = [
    "RegistryReloader",
]
