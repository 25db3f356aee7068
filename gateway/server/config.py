"""Gateway configuration: a TOML file, or the embedded default.

The embedded default serves on loopback with SQLite in a local data directory, the shipped
policies and development keys created on first start. Every limit has a named default.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

DEFAULT_LISTEN = "127.0.0.1:50651"
DEFAULT_METRICS_PORT = 9651
DEFAULT_AUDIENCE = "ketenpoort"
DEFAULT_MAX_MESSAGE_BYTES = 1 * 1024 * 1024
DEFAULT_SOURCE_DEADLINE_S = 2.0
# How often the policy directory is checked for changes; 0 switches watching off (SIGHUP and
# Gateway.reload_policy() still reload).
DEFAULT_POLICY_RELOAD_INTERVAL_S = 2.0
DEFAULT_TOKEN_LEEWAY_S = 30
DEFAULT_MAX_TOKEN_LIFETIME_S = 3600
DEFAULT_ALGORITHMS = ("EdDSA", "ES256")
# A signed checkpoint of the accountability log is made after this many records, or this many
# seconds after the last one when records arrived since.
DEFAULT_CHECKPOINT_EVERY_RECORDS = 1000
DEFAULT_CHECKPOINT_INTERVAL_S = 10.0
# The checkpoint origin line: a name for this log, unique among the logs a verifier knows.
DEFAULT_LOG_ORIGIN = "ketenpoort.local/accountability-log"
# Case data is shredded this many days after the case was closed (covenant: at most two years).
DEFAULT_RETENTION_DAYS_AFTER_CLOSURE = 730
# How often the server runs retention and an incremental log verification; 0 switches off.
DEFAULT_RETENTION_INTERVAL_S = 3600.0
DEFAULT_AUDIT_VERIFY_INTERVAL_S = 600.0


class TlsMode(StrEnum):
    """How the gRPC port is protected."""

    INSECURE = "insecure"  # loopback tests only
    TLS = "tls"
    MUTUAL = "mtls"


@dataclass(frozen=True)
class SourceEndpoint:
    """Where the gateway reaches one partner's source system."""

    partner_id: str
    address: str
    tls: bool = True


@dataclass(frozen=True)
class GatewayConfig:
    listen: str = DEFAULT_LISTEN
    database_url: str = ""
    policy_dir: Path = Path("policies")
    policy_reload_interval_s: float = DEFAULT_POLICY_RELOAD_INTERVAL_S
    keys_dir: Path = Path()
    data_dir: Path = Path()
    tls_mode: TlsMode = TlsMode.MUTUAL
    audience: str = DEFAULT_AUDIENCE
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    token_leeway_s: int = DEFAULT_TOKEN_LEEWAY_S
    max_token_lifetime_s: int = DEFAULT_MAX_TOKEN_LIFETIME_S
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    source_deadline_s: float = DEFAULT_SOURCE_DEADLINE_S
    metrics_port: int | None = DEFAULT_METRICS_PORT
    sources: tuple[SourceEndpoint, ...] = field(default_factory=tuple)
    checkpoint_every_records: int = DEFAULT_CHECKPOINT_EVERY_RECORDS
    checkpoint_interval_s: float = DEFAULT_CHECKPOINT_INTERVAL_S
    log_origin: str = DEFAULT_LOG_ORIGIN
    retention_days_after_closure: int = DEFAULT_RETENTION_DAYS_AFTER_CLOSURE
    retention_interval_s: float = DEFAULT_RETENTION_INTERVAL_S
    audit_verify_interval_s: float = DEFAULT_AUDIT_VERIFY_INTERVAL_S

    def with_overrides(self, **changes: Any) -> GatewayConfig:
        return replace(self, **changes)


class ConfigError(ValueError):
    """The configuration file is unreadable or names an unknown setting."""


def default_data_dir() -> Path:
    """Outside any repository: $KETENPOORT_HOME, else the XDG data directory."""
    home = os.environ.get("KETENPOORT_HOME")
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "ketenpoort"


def shipped_policy_dir() -> Path:
    """The policies/ directory beside the installed source tree."""
    return Path(__file__).resolve().parents[2] / "policies"


def embedded_default(data_dir: Path | None = None) -> GatewayConfig:
    data = data_dir or default_data_dir()
    return GatewayConfig(
        database_url=f"sqlite:///{data / 'ketenpoort.db'}",
        policy_dir=shipped_policy_dir(),
        keys_dir=data / "keys",
        data_dir=data,
    )


_KNOWN_KEYS = {
    "listen",
    "database_url",
    "policy_dir",
    "policy_reload_interval_s",
    "keys_dir",
    "data_dir",
    "tls_mode",
    "audience",
    "algorithms",
    "token_leeway_s",
    "max_token_lifetime_s",
    "max_message_bytes",
    "source_deadline_s",
    "metrics_port",
    "sources",
    "checkpoint_every_records",
    "checkpoint_interval_s",
    "log_origin",
    "retention_days_after_closure",
    "retention_interval_s",
    "audit_verify_interval_s",
}


def load_config(path: Path) -> GatewayConfig:
    """Read a TOML configuration; relative paths are taken from the file's directory."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return config_from_mapping(raw, base=path.parent)


def config_from_mapping(raw: Mapping[str, Any], base: Path) -> GatewayConfig:
    unknown = sorted(set(raw) - _KNOWN_KEYS)
    if unknown:
        raise ConfigError(f"unknown configuration keys: {', '.join(unknown)}")
    data_dir = _path(raw.get("data_dir"), base) or default_data_dir()
    defaults = embedded_default(data_dir)
    algorithms = tuple(raw.get("algorithms", DEFAULT_ALGORITHMS))
    if not algorithms or "none" in {a.lower() for a in algorithms}:
        raise ConfigError("algorithms must list signing algorithms; 'none' is never allowed")
    try:
        tls_mode = TlsMode(raw.get("tls_mode", TlsMode.MUTUAL))
    except ValueError as exc:
        raise ConfigError(f"tls_mode must be one of {[m.value for m in TlsMode]}") from exc
    metrics = raw.get("metrics_port", DEFAULT_METRICS_PORT)
    reload_interval = _non_negative_seconds(
        raw, "policy_reload_interval_s", DEFAULT_POLICY_RELOAD_INTERVAL_S
    )
    return GatewayConfig(
        listen=str(raw.get("listen", DEFAULT_LISTEN)),
        database_url=str(raw.get("database_url", defaults.database_url)),
        policy_dir=_path(raw.get("policy_dir"), base) or defaults.policy_dir,
        policy_reload_interval_s=reload_interval,
        keys_dir=_path(raw.get("keys_dir"), base) or defaults.keys_dir,
        data_dir=data_dir,
        tls_mode=tls_mode,
        audience=str(raw.get("audience", DEFAULT_AUDIENCE)),
        algorithms=algorithms,
        token_leeway_s=int(raw.get("token_leeway_s", DEFAULT_TOKEN_LEEWAY_S)),
        max_token_lifetime_s=int(raw.get("max_token_lifetime_s", DEFAULT_MAX_TOKEN_LIFETIME_S)),
        max_message_bytes=int(raw.get("max_message_bytes", DEFAULT_MAX_MESSAGE_BYTES)),
        source_deadline_s=float(raw.get("source_deadline_s", DEFAULT_SOURCE_DEADLINE_S)),
        metrics_port=None if metrics in (None, 0, False) else int(metrics),
        sources=tuple(_source(item) for item in raw.get("sources", [])),
        checkpoint_every_records=_positive_int(
            raw, "checkpoint_every_records", DEFAULT_CHECKPOINT_EVERY_RECORDS
        ),
        checkpoint_interval_s=_positive_seconds(
            raw, "checkpoint_interval_s", DEFAULT_CHECKPOINT_INTERVAL_S
        ),
        log_origin=_log_origin(raw.get("log_origin", DEFAULT_LOG_ORIGIN)),
        retention_days_after_closure=_positive_int(
            raw, "retention_days_after_closure", DEFAULT_RETENTION_DAYS_AFTER_CLOSURE
        ),
        retention_interval_s=_non_negative_seconds(
            raw, "retention_interval_s", DEFAULT_RETENTION_INTERVAL_S
        ),
        audit_verify_interval_s=_non_negative_seconds(
            raw, "audit_verify_interval_s", DEFAULT_AUDIT_VERIFY_INTERVAL_S
        ),
    )


def _path(value: object, base: Path) -> Path | None:
    if value is None or value == "":
        return None
    p = Path(str(value)).expanduser()
    return p if p.is_absolute() else (base / p)


def _non_negative_seconds(raw: Mapping[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    # TOML allows nan and inf; neither is a usable interval.
    if (isinstance(value, bool) or not isinstance(value, int | float) or value < 0
            or not math.isfinite(value)):
        raise ConfigError(f"{key} must be a number of seconds, 0 or more (got {value!r})")
    return float(value)


def _positive_seconds(raw: Mapping[str, Any], key: str, default: float) -> float:
    value = _non_negative_seconds(raw, key, default)
    if value == 0:
        raise ConfigError(f"{key} must be more than 0 seconds")
    return value


def _positive_int(raw: Mapping[str, Any], key: str, default: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key} must be a whole number, 1 or more (got {value!r})")
    return value


def _log_origin(value: object) -> str:
    # The origin is the first line of every signed checkpoint: one printable line.
    if not isinstance(value, str) or not value or not value.isprintable() or len(value) > 200:
        raise ConfigError("log_origin must be one printable line of at most 200 characters")
    return value


def _source(item: Mapping[str, Any]) -> SourceEndpoint:
    try:
        return SourceEndpoint(
            partner_id=str(item["partner"]),
            address=str(item["address"]),
            tls=bool(item.get("tls", True)),
        )
    except KeyError as exc:
        raise ConfigError(
            f"a [[sources]] entry needs 'partner' and 'address' (missing {exc})"
        ) from exc
