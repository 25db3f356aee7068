"""Settings of the gateway's health probes, readiness checks and drain (top-level keys of the
gateway's TOML file; docs/operations/health.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["HEALTH_KEYS", "HealthSettings", "health_from_mapping"]

# The probe port is off unless configured: in Kubernetes it must listen where the kubelet
# reaches it (the pod's address, "0.0.0.0:8081"), which only the operator knows.
DEFAULT_PROBE_ADDRESS = ""
# How often the readiness checks look at the database, the disk, the log writer and the keys.
DEFAULT_READINESS_INTERVAL_S = 2.0
# How long a stopping gateway keeps serving while reporting NOT_SERVING, so that load
# balancers and Kubernetes take it out of rotation before it stops accepting calls.
DEFAULT_DRAIN_S = 0.0
# Readiness fails when the data or checkpoint directory's file system has less free space.
DEFAULT_MIN_FREE_DISK_MB = 64

HEALTH_KEYS = frozenset({"probe_address", "readiness_interval_s", "drain_s", "min_free_disk_mb"})

_MAX_SECONDS = 86_400.0


@dataclass(frozen=True)
class HealthSettings:
    probe_address: str = DEFAULT_PROBE_ADDRESS
    readiness_interval_s: float = DEFAULT_READINESS_INTERVAL_S
    drain_s: float = DEFAULT_DRAIN_S
    min_free_disk_mb: int = DEFAULT_MIN_FREE_DISK_MB

    def __post_init__(self) -> None:
        if self.probe_address:
            host, _, port = self.probe_address.rpartition(":")
            if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
                raise ValueError(
                    "probe_address must be host:port, or \"\" for none "
                    f"(got {self.probe_address!r})"
                )
        if not 0 < self.readiness_interval_s <= _MAX_SECONDS:
            raise ValueError("readiness_interval_s must be more than 0 seconds")
        if not 0 <= self.drain_s <= _MAX_SECONDS:
            raise ValueError("drain_s must be 0 or more seconds")
        if self.min_free_disk_mb < 0:
            raise ValueError("min_free_disk_mb must be 0 (no check) or more")

    @property
    def probe_host_port(self) -> tuple[str, int]:
        host, _, port = self.probe_address.rpartition(":")
        return host.strip("[]"), int(port)


def health_from_mapping(raw: Mapping[str, Any]) -> HealthSettings:
    """The health settings among the top-level keys of ``raw``; ValueError names the key."""
    address = raw.get("probe_address", DEFAULT_PROBE_ADDRESS)
    if not isinstance(address, str):
        raise ValueError(f"probe_address must be a string host:port (got {address!r})")
    interval = _number(raw, "readiness_interval_s", DEFAULT_READINESS_INTERVAL_S)
    drain = _number(raw, "drain_s", DEFAULT_DRAIN_S)
    disk = raw.get("min_free_disk_mb", DEFAULT_MIN_FREE_DISK_MB)
    if isinstance(disk, bool) or not isinstance(disk, int):
        raise ValueError(f"min_free_disk_mb must be a whole number (got {disk!r})")
    return HealthSettings(address, interval, drain, disk)


def _number(raw: Mapping[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ValueError(f"{key} must be a number of seconds (got {value!r})")
    return float(value)
