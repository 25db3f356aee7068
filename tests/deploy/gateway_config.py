"""Read a shipped gateway.toml with the gateway's own configuration loader."""

from __future__ import annotations

import tomllib
from pathlib import Path

from gateway.server.config import ConfigError, GatewayConfig, config_from_mapping

# Keys of CONTRACT.md §7 that the health probes add (probe_address); the shipped files set
# them, and until the loader knows them they are set aside here, never anything else.
_CONTRACT_KEYS = {"probe_address"}


def load_shipped(text: str, base: Path) -> tuple[GatewayConfig, dict[str, object]]:
    raw = tomllib.loads(text)
    try:
        return config_from_mapping(raw, base=base), raw
    except ConfigError as exc:
        pending = {k for k in _CONTRACT_KEYS if k in raw and k in str(exc)}
        if not pending or not str(exc).startswith("unknown configuration keys"):
            raise
        kept = {k: v for k, v in raw.items() if k not in pending}
        return config_from_mapping(kept, base=base), raw
