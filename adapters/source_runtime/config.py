"""The source runtime's configuration file, ``source.toml`` (docs/partners/source-runtime.md).

Relative paths are taken from the directory of the configuration file. Unknown keys are errors
(with "did you mean"), so a typo never silently leaves a default in force. ``[system]`` is passed
as it is to the adapter the mapping file's ``kind`` names; each adapter documents its keys.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.circuit_breaker import BreakerSettings

__all__ = [
    "ConfigError", "Deadlines", "GatewayAddress", "SourceConfig", "TlsFiles", "load_config",
]

DEFAULT_AUDIENCE = "ketenpoort"  # the gateway's token audience, as adapters.client names it

TOP_KEYS = ("partner_id", "listen", "gateway_id", "catalogue", "mapping", "metrics_address",
            "access_log", "accept_clear_requests", "keys", "tls", "gateway", "system",
            "deadlines", "breaker")
GATEWAY_KEYS = ("address", "role", "log_origin")
KEYS_KEYS = ("dir", "gateway_public_key")
TLS_KEYS = ("cert", "key", "ca")
DEADLINE_KEYS = ("default_s", "margin_s", "max_s")
BREAKER_KEYS = ("failure_threshold", "open_for_s")


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class TlsFiles:
    cert: Path  # the partner's TLS certificate the source serves with (PEM)
    key: Path  # its private key (PEM)
    ca: Path  # the CA whose certificates callers (the gateway) must present (PEM)


@dataclass(frozen=True)
class GatewayAddress:
    """Where the gateway's sealing keys are fetched (GetGatewayKeys), as this partner with a
    token of ``role``; taken only from the gateway's signed statement, verified against the
    gateway signing keys pinned in the key directory (``gateway/signing.pub.pem``) for the
    gateway whose accountability log is ``log_origin`` (empty: the default origin)."""

    address: str
    role: str
    log_origin: str = ""


@dataclass(frozen=True)
class Deadlines:
    """How long the system is given per call: the gateway's remaining time minus
    ``margin_s`` (time to seal and send the answer), at most ``max_s``; ``default_s`` when the
    gateway set no deadline."""

    default_s: float = 5.0
    margin_s: float = 0.05
    max_s: float = 30.0

    def for_call(self, time_remaining: float | None) -> float:
        if time_remaining is None:
            return min(self.default_s, self.max_s)
        return min(time_remaining - self.margin_s, self.max_s)


@dataclass(frozen=True)
class SourceConfig:
    path: Path
    partner_id: str
    listen: str
    key_dir: Path
    gateway_public_key: Path
    tls: TlsFiles
    catalogue: Path
    mapping: Path
    system: Mapping[str, Any] = field(default_factory=dict)
    gateway_id: str = DEFAULT_AUDIENCE
    deadlines: Deadlines = Deadlines()
    breaker: BreakerSettings = field(default_factory=BreakerSettings)
    metrics_address: str = ""
    access_log: Path | None = None  # None: JSON lines to standard error
    accept_clear_requests: bool = False
    gateway: GatewayAddress | None = None  # None: the key comes from gateway_public_key

    @property
    def base_dir(self) -> Path:
        return self.path.parent


def load_config(path: str | Path) -> SourceConfig:
    file = Path(path)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    try:
        return _parse(file, raw)
    except ConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from None


def _parse(file: Path, raw: dict[str, Any]) -> SourceConfig:
    base = file.parent
    _known("", raw, TOP_KEYS)
    partner_id = _str(raw, "partner_id", "")
    if not partner_id:
        raise ConfigError("partner_id is missing: the partner id the gateway knows you by")
    listen = _str(raw, "listen", "")
    if not listen:
        raise ConfigError("listen is missing: host:port to serve the gateway on")
    keys = _table(raw, "keys", KEYS_KEYS)
    if "dir" not in keys:
        raise ConfigError("[keys] dir is missing: the partner's key directory")
    key_dir = _path(base, _str(keys, "dir", "", "keys."))
    gateway_key = keys.get("gateway_public_key")
    gateway_public_key = (
        _path(base, _str(keys, "gateway_public_key", "", "keys."))
        if gateway_key is not None else key_dir / "gateway" / "hpke.pub.pem"
    )
    gateway_raw = _table(raw, "gateway", GATEWAY_KEYS)
    gateway: GatewayAddress | None = None
    if gateway_raw:
        if gateway_key is not None:
            raise ConfigError("give [gateway] address (fetch the gateway's keys) or "
                              "keys.gateway_public_key (a key file), not both")
        address = _str(gateway_raw, "address", "", "gateway.")
        role = _str(gateway_raw, "role", "", "gateway.")
        if not address or not role:
            raise ConfigError("[gateway] needs address and role (the role your tokens claim)")
        gateway = GatewayAddress(address, role, _str(gateway_raw, "log_origin", "", "gateway."))
    tls = _table(raw, "tls", TLS_KEYS)
    own = key_dir / "partners" / partner_id
    tls_files = TlsFiles(
        _path(base, _str(tls, "cert", "", "tls.")) if "cert" in tls else own / "tls.pem",
        _path(base, _str(tls, "key", "", "tls.")) if "key" in tls else own / "tls.key.pem",
        _path(base, _str(tls, "ca", "", "tls.")) if "ca" in tls else key_dir / "ca" / "ca.pem",
    )
    for name in ("catalogue", "mapping"):
        if not _str(raw, name, ""):
            raise ConfigError(f"{name} is missing: the {name} file's path")
    system = raw.get("system", {})
    if not isinstance(system, dict):
        raise ConfigError("[system] must be a table")
    deadlines_raw = _table(raw, "deadlines", DEADLINE_KEYS)
    deadlines = Deadlines(*(
        _positive(deadlines_raw, k, getattr(Deadlines(), k), "deadlines.",
                  zero_ok=k == "margin_s")
        for k in DEADLINE_KEYS
    ))
    breaker_raw = _table(raw, "breaker", BREAKER_KEYS)
    try:
        breaker = BreakerSettings(
            int(_positive(breaker_raw, "failure_threshold", 5, "breaker.")),
            _positive(breaker_raw, "open_for_s", 10.0, "breaker."),
        )
    except ValueError as exc:
        raise ConfigError(f"[breaker]: {exc}") from None
    access_log = _str(raw, "access_log", "")
    accept_clear = raw.get("accept_clear_requests", False)
    if not isinstance(accept_clear, bool):
        raise ConfigError("accept_clear_requests must be true or false")
    return SourceConfig(
        path=file,
        partner_id=partner_id,
        listen=listen,
        key_dir=key_dir,
        gateway_public_key=gateway_public_key,
        tls=tls_files,
        catalogue=_path(base, _str(raw, "catalogue", "")),
        mapping=_path(base, _str(raw, "mapping", "")),
        system=system,
        gateway_id=_str(raw, "gateway_id", DEFAULT_AUDIENCE),
        deadlines=deadlines,
        breaker=breaker,
        metrics_address=_str(raw, "metrics_address", ""),
        access_log=_path(base, access_log) if access_log else None,
        accept_clear_requests=accept_clear,
        gateway=gateway,
    )


def _known(prefix: str, table: Mapping[str, Any], allowed: Collection[str]) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
            hint = f", did you mean {close[0]!r}?" if close else f"; known: {', '.join(allowed)}"
            raise ConfigError(f"unknown key {prefix}{key!r}{hint}")


def _table(raw: Mapping[str, Any], name: str, allowed: Collection[str]) -> dict[str, Any]:
    table = raw.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"[{name}] must be a table")
    _known(f"{name}.", table, allowed)
    return table


def _str(raw: Mapping[str, Any], key: str, default: str, prefix: str = "") -> str:
    value = raw.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"{prefix}{key} must be text")
    return value


def _positive(raw: Mapping[str, Any], key: str, default: float, prefix: str,
              *, zero_ok: bool = False) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{prefix}{key} must be a number")
    if value < 0 or (value == 0 and not zero_ok):
        raise ConfigError(f"{prefix}{key} must be more than 0")
    return float(value)


def _path(base: Path, text: str) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path
