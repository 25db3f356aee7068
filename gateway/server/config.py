"""Gateway configuration: a TOML file, or the embedded default.

The embedded default serves on loopback with SQLite in a local data directory, the shipped
policies and development keys created on first start. Every limit has a named default.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from adapters.circuit_breaker import BreakerSettings
from gateway.crypto.provider_settings import KeyProviderSettings, settings_from_mapping
from gateway.formats.log_origin import DEFAULT_LOG_ORIGIN as DEFAULT_LOG_ORIGIN
from gateway.policyfiles import DEFAULT_MAX_POLICY_FILE_BYTES
from gateway.registry.entries import TOKEN_ALGORITHMS
from gateway.server.health_settings import HEALTH_KEYS, HealthSettings, health_from_mapping
from gateway.server.limit_settings import LimitSettings, limits_from_mapping
from gateway.server.logging_setup import LogSettings
from gateway.server.logging_setup import settings_from_mapping as log_settings_from_mapping
from gateway.server.metrics_address import (
    DEFAULT_METRICS_ADDRESS,
    MetricsAddressError,
    MetricsEndpoint,
    metrics_endpoint,
)
from gateway.server.source_breaker_settings import breaker_from_mapping, default_breaker_settings
from gateway.server.tracing_setup import TracingSettings
from gateway.server.tracing_setup import settings_from_mapping as tracing_from_mapping

_T = TypeVar("_T")

DEFAULT_LISTEN = "127.0.0.1:50651"
DEFAULT_AUDIENCE = "ketenpoort"
DEFAULT_MAX_MESSAGE_BYTES = 1 * 1024 * 1024
DEFAULT_SOURCE_DEADLINE_S = 2.0
# How often the policy directory is checked for changes; 0 switches watching off (SIGHUP and
# Gateway.reload_policy() still reload).
DEFAULT_POLICY_RELOAD_INTERVAL_S = 2.0
DEFAULT_TOKEN_LEEWAY_S = 30
# A token is good for one call, so it need not live long; partners mint one per call.
DEFAULT_MAX_TOKEN_LIFETIME_S = 600
DEFAULT_ALGORITHMS = ("EdDSA", "ES256")
# A signed checkpoint of the accountability log is made after this many records, or this many
# seconds after the last one when records arrived since.
DEFAULT_CHECKPOINT_EVERY_RECORDS = 1000
DEFAULT_CHECKPOINT_INTERVAL_S = 10.0
# Case data is shredded this many days after the case was closed (covenant: at most two years).
DEFAULT_RETENTION_DAYS_AFTER_CLOSURE = 730
# A case the ZVH declined at intake is shredded this many days after it was declined: it was
# never worked, so there is less reason to keep it (docs/case-lifecycle.md).
DEFAULT_DECLINED_RETENTION_DAYS = 90
# A hundred years: longer is no retention term (and past what a date can hold).
MAX_RETENTION_DAYS = 36_500
# How often an open WatchCaseEvents stream looks for events other replicas wrote.
DEFAULT_CASE_EVENT_POLL_S = 1.0
# How often the server runs retention and an incremental log verification; 0 switches off.
DEFAULT_RETENTION_INTERVAL_S = 3600.0
DEFAULT_AUDIT_VERIFY_INTERVAL_S = 600.0
# Partner systems that send registrations, case-file entries and source answers in clear keep
# working until this is switched on; sealed submissions are always accepted.
DEFAULT_REQUIRE_SEALED_SUBMISSIONS = False
# Partner systems that send no request nonce get answers sealed in format version 1 (bound to
# the disclosure, not to the request) until this is switched on.
DEFAULT_REQUIRE_REQUEST_NONCE = False
# What the gateway asks a partner's source system (the subject's identity, fields, purpose,
# recipient) is sealed to the partner's registered sealing key. A partner without one is not
# asked unless its [[sources]] entry says allow_clear_requests = true.
DEFAULT_SEAL_SOURCE_REQUESTS = True
# How often the server re-wraps data keys still under an older key-encryption key (0 = never;
# `ketenpoort keys rewrap` does it by hand), and how many cases one transaction re-wraps. A
# change of the current key is also looked for every few seconds and starts a run at once.
DEFAULT_REWRAP_INTERVAL_S = 60.0
# How often the plan's monitoring looks for actions due soon or overdue (0 = never), and how
# long before its deadline an action is told as due (gateway.broker.plan_monitor).
DEFAULT_PLAN_MONITOR_INTERVAL_S = 300.0
DEFAULT_ACTION_DUE_NOTICE_S = 2 * 24 * 3600.0
DEFAULT_REWRAP_BATCH_SIZE = 100
# How long a partner's request id of a registration or case-file entry is remembered: a resend
# within it gets the first call's answer, after it the id is free again.
DEFAULT_REQUEST_ID_RETENTION_S = 24 * 3600.0


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
    # Ask this source in clear while its partner has no registered sealing key, rather than
    # not at all (deprecated: the subject's identity then travels readable inside TLS).
    allow_clear_requests: bool = False
    # Accept this source's answers unsigned (deprecated): by default an answer counts only when
    # signed by a token key registered to the partner (docs/sealed-answers.md, "Signed source
    # answers"); a partner system that cannot sign yet is otherwise unavailable.
    allow_unsigned_answers: bool = False
    # This source's circuit breaker; None takes GatewayConfig.source_breaker.
    breaker: BreakerSettings | None = None


@dataclass(frozen=True)
class GatewayConfig:
    listen: str = DEFAULT_LISTEN
    database_url: str = ""
    policy_dir: Path = Path("policies")
    policy_reload_interval_s: float = DEFAULT_POLICY_RELOAD_INTERVAL_S
    # A larger policy file is refused unread (gateway.policyfiles).
    max_policy_file_bytes: int = DEFAULT_MAX_POLICY_FILE_BYTES
    keys_dir: Path = Path()
    data_dir: Path = Path()
    # The partner registry (one file per partner); None means DATA_DIR/registry.
    registry_dir: Path | None = None
    # Tokens must be bound to the mutual-TLS client certificate (RFC 8705); only the
    # loopback test modes without client certificates may switch this off.
    certificate_bound_tokens: bool = True
    tls_mode: TlsMode = TlsMode.MUTUAL
    audience: str = DEFAULT_AUDIENCE
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    token_leeway_s: int = DEFAULT_TOKEN_LEEWAY_S
    max_token_lifetime_s: int = DEFAULT_MAX_TOKEN_LIFETIME_S
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    source_deadline_s: float = DEFAULT_SOURCE_DEADLINE_S
    # Where the Prometheus endpoint listens ("" = off); gateway.server.metrics_address.
    metrics_address: str = DEFAULT_METRICS_ADDRESS
    # Deprecated: the endpoint's port (0 = off) in place of metrics_address's; None = not set.
    metrics_port: int | None = None
    sources: tuple[SourceEndpoint, ...] = field(default_factory=tuple)
    checkpoint_every_records: int = DEFAULT_CHECKPOINT_EVERY_RECORDS
    checkpoint_interval_s: float = DEFAULT_CHECKPOINT_INTERVAL_S
    log_origin: str = DEFAULT_LOG_ORIGIN
    retention_days_after_closure: int = DEFAULT_RETENTION_DAYS_AFTER_CLOSURE
    declined_retention_days: int = DEFAULT_DECLINED_RETENTION_DAYS
    case_event_poll_s: float = DEFAULT_CASE_EVENT_POLL_S
    retention_interval_s: float = DEFAULT_RETENTION_INTERVAL_S
    audit_verify_interval_s: float = DEFAULT_AUDIT_VERIFY_INTERVAL_S
    # Refuse registrations, case-file entries and source answers that are not sealed to the
    # gateway's key (FAILED_PRECONDITION; a clear source answer counts as no answer).
    require_sealed_submissions: bool = DEFAULT_REQUIRE_SEALED_SUBMISSIONS
    # Refuse RequestDisclosure and Triage without a request nonce (INVALID_ARGUMENT), so that
    # every answer is sealed bound to its request (docs/sealed-answers.md, "Format version 2").
    require_request_nonce: bool = DEFAULT_REQUIRE_REQUEST_NONCE
    # Seal requests to partners' source systems to the partner's registered sealing key (see
    # SourceEndpoint.allow_clear_requests); false asks every source in clear.
    seal_source_requests: bool = DEFAULT_SEAL_SOURCE_REQUESTS
    rewrap_interval_s: float = DEFAULT_REWRAP_INTERVAL_S
    rewrap_batch_size: int = DEFAULT_REWRAP_BATCH_SIZE
    plan_monitor_interval_s: float = DEFAULT_PLAN_MONITOR_INTERVAL_S
    action_due_notice_s: float = DEFAULT_ACTION_DUE_NOTICE_S
    request_id_retention_s: float = DEFAULT_REQUEST_ID_RETENTION_S
    # Where the log-signing, HPKE and key-encryption keys live: files in keys_dir (default)
    # or a PKCS#11 token ([key_provider] table; gateway.crypto.provider_settings).
    key_provider: KeyProviderSettings = field(default_factory=KeyProviderSettings)
    # Where every signed checkpoint is also kept, outside the database (one file per replica;
    # docs/accountability-log.md); None means `checkpoints` beside the key directory.
    checkpoint_dir: Path | None = None
    # This replica's name in its checkpoint file's name; "" means the host name.
    replica_id: str = ""

    @property
    def checkpoints_path(self) -> Path:
        if self.checkpoint_dir is not None:
            return self.checkpoint_dir
        return self.keys_dir.parent / "checkpoints"
    # Call limits per partner and connection limits ([limits] table; limit_settings).
    limits: LimitSettings = field(default_factory=LimitSettings)
    # The circuit breaker of every source without its own ([source_breaker] table).
    source_breaker: BreakerSettings = field(default_factory=default_breaker_settings)

    def breaker_for(self, partner_id: str) -> BreakerSettings:
        """The circuit breaker settings of ``partner_id``'s source."""
        for endpoint in self.sources:
            if endpoint.partner_id == partner_id and endpoint.breaker is not None:
                return endpoint.breaker
        return self.source_breaker
    # Probe port, readiness checks and drain (top-level keys; health_settings).
    health: HealthSettings = field(default_factory=HealthSettings)

    @property
    def metrics_endpoint(self) -> MetricsEndpoint | None:
        return metrics_endpoint(self.metrics_address, self.metrics_port)
    # The server log (log_format, log_level, log_repeat_window_s; logging_setup) and
    # OpenTelemetry traces ([tracing] table; tracing_setup).
    logging: LogSettings = field(default_factory=LogSettings)
    tracing: TracingSettings = field(default_factory=TracingSettings)

    @property
    def registry_path(self) -> Path:
        return self.registry_dir if self.registry_dir is not None else self.data_dir / "registry"

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
    """The policies shipped with this release: the copy an installed package carries
    (gateway/_shipped_policies, made by the build), else policies/ beside the source tree
    (a checkout or an editable install)."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "_shipped_policies"
    return packaged if packaged.is_dir() else package.parent / "policies"


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
    "max_policy_file_bytes",
    "keys_dir",
    "data_dir",
    "registry_dir",
    "certificate_bound_tokens",
    "tls_mode",
    "audience",
    "algorithms",
    "token_leeway_s",
    "max_token_lifetime_s",
    "max_message_bytes",
    "source_deadline_s",
    "metrics_address",
    "metrics_port",
    "sources",
    "checkpoint_every_records",
    "checkpoint_interval_s",
    "log_origin",
    "retention_days_after_closure",
    "declined_retention_days",
    "case_event_poll_s",
    "retention_interval_s",
    "audit_verify_interval_s",
    "require_sealed_submissions",
    "require_request_nonce",
    "seal_source_requests",
    "rewrap_interval_s",
    "rewrap_batch_size",
    "plan_monitor_interval_s",
    "action_due_notice_s",
    "request_id_retention_s",
    "key_provider",
    "checkpoint_dir",
    "replica_id",
    "limits",
    "source_breaker",
    *HEALTH_KEYS,
    "log_format",
    "log_level",
    "log_repeat_window_s",
    "tracing",
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
    data_dir = _path(raw.get("data_dir"), base, "data_dir") or default_data_dir()
    defaults = embedded_default(data_dir)
    algorithms_raw = raw.get("algorithms", DEFAULT_ALGORITHMS)
    if not isinstance(algorithms_raw, list | tuple) or not all(
        isinstance(a, str) for a in algorithms_raw
    ):
        raise ConfigError(f"algorithms must be a list of strings (got {algorithms_raw!r})")
    algorithms = tuple(algorithms_raw)
    if not algorithms or "none" in {a.lower() for a in algorithms}:
        raise ConfigError("algorithms must list signing algorithms; 'none' is never allowed")
    if not set(algorithms) <= set(TOKEN_ALGORITHMS):
        raise ConfigError(f"algorithms may name only {', '.join(TOKEN_ALGORITHMS)}")
    try:
        tls_mode = TlsMode(raw.get("tls_mode", TlsMode.MUTUAL))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"tls_mode must be one of {[m.value for m in TlsMode]}") from exc
    metrics_address, metrics_port = _metrics(raw)
    reload_interval = _non_negative_seconds(
        raw, "policy_reload_interval_s", DEFAULT_POLICY_RELOAD_INTERVAL_S
    )
    source_breaker = _breaker(
        raw.get("source_breaker", {}), default_breaker_settings(), "[source_breaker]"
    )
    return GatewayConfig(
        listen=_text(raw, "listen", DEFAULT_LISTEN),
        database_url=_text(raw, "database_url", defaults.database_url),
        policy_dir=_path(raw.get("policy_dir"), base, "policy_dir") or defaults.policy_dir,
        policy_reload_interval_s=reload_interval,
        keys_dir=_path(raw.get("keys_dir"), base, "keys_dir") or defaults.keys_dir,
        data_dir=data_dir,
        registry_dir=_path(raw.get("registry_dir"), base, "registry_dir"),
        certificate_bound_tokens=_bound_tokens(raw, tls_mode),
        tls_mode=tls_mode,
        audience=_text(raw, "audience", DEFAULT_AUDIENCE),
        algorithms=algorithms,
        token_leeway_s=_whole(raw, "token_leeway_s", DEFAULT_TOKEN_LEEWAY_S, least=0),
        max_token_lifetime_s=_positive_int(
            raw, "max_token_lifetime_s", DEFAULT_MAX_TOKEN_LIFETIME_S
        ),
        max_message_bytes=_positive_int(raw, "max_message_bytes", DEFAULT_MAX_MESSAGE_BYTES),
        max_policy_file_bytes=_positive_int(
            raw, "max_policy_file_bytes", DEFAULT_MAX_POLICY_FILE_BYTES
        ),
        source_deadline_s=_positive_seconds(raw, "source_deadline_s", DEFAULT_SOURCE_DEADLINE_S),
        metrics_address=metrics_address,
        metrics_port=metrics_port,
        sources=_sources(raw.get("sources", []), source_breaker),
        checkpoint_every_records=_positive_int(
            raw, "checkpoint_every_records", DEFAULT_CHECKPOINT_EVERY_RECORDS
        ),
        checkpoint_interval_s=_positive_seconds(
            raw, "checkpoint_interval_s", DEFAULT_CHECKPOINT_INTERVAL_S
        ),
        log_origin=_log_origin(raw.get("log_origin", DEFAULT_LOG_ORIGIN)),
        retention_days_after_closure=_positive_int(
            raw, "retention_days_after_closure", DEFAULT_RETENTION_DAYS_AFTER_CLOSURE,
            most=MAX_RETENTION_DAYS,
        ),
        declined_retention_days=_positive_int(
            raw, "declined_retention_days", DEFAULT_DECLINED_RETENTION_DAYS,
            most=MAX_RETENTION_DAYS,
        ),
        case_event_poll_s=_positive_seconds(raw, "case_event_poll_s", DEFAULT_CASE_EVENT_POLL_S),
        retention_interval_s=_non_negative_seconds(
            raw, "retention_interval_s", DEFAULT_RETENTION_INTERVAL_S
        ),
        audit_verify_interval_s=_non_negative_seconds(
            raw, "audit_verify_interval_s", DEFAULT_AUDIT_VERIFY_INTERVAL_S
        ),
        rewrap_interval_s=_non_negative_seconds(
            raw, "rewrap_interval_s", DEFAULT_REWRAP_INTERVAL_S
        ),
        rewrap_batch_size=_positive_int(raw, "rewrap_batch_size", DEFAULT_REWRAP_BATCH_SIZE),
        plan_monitor_interval_s=_non_negative_seconds(
            raw, "plan_monitor_interval_s", DEFAULT_PLAN_MONITOR_INTERVAL_S
        ),
        action_due_notice_s=_non_negative_seconds(
            raw, "action_due_notice_s", DEFAULT_ACTION_DUE_NOTICE_S
        ),
        request_id_retention_s=_positive_seconds(
            raw, "request_id_retention_s", DEFAULT_REQUEST_ID_RETENTION_S
        ),
        checkpoint_dir=_path(raw.get("checkpoint_dir"), base, "checkpoint_dir"),
        replica_id=_replica_id(raw.get("replica_id", "")),
        require_sealed_submissions=_bool(
            raw, "require_sealed_submissions", DEFAULT_REQUIRE_SEALED_SUBMISSIONS
        ),
        require_request_nonce=_bool(raw, "require_request_nonce", DEFAULT_REQUIRE_REQUEST_NONCE),
        seal_source_requests=_bool(raw, "seal_source_requests", DEFAULT_SEAL_SOURCE_REQUESTS),
        key_provider=_key_provider(raw.get("key_provider", {}), base),
        limits=_limits(raw.get("limits", {})),
        source_breaker=source_breaker,
        health=_health(raw),
        logging=_settings(log_settings_from_mapping, raw),
        tracing=_settings(tracing_from_mapping, raw.get("tracing", {})),
    )


def _health(raw: Mapping[str, Any]) -> HealthSettings:
    try:
        return health_from_mapping(raw)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _settings(parse: Callable[[Any], _T], raw: object) -> _T:
    try:
        return parse(raw)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _key_provider(value: object, base: Path) -> KeyProviderSettings:
    if not isinstance(value, Mapping):
        raise ConfigError("[key_provider] must be a table")
    try:
        return settings_from_mapping(value, base)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _limits(value: object) -> LimitSettings:
    if not isinstance(value, Mapping):
        raise ConfigError("[limits] must be a table")
    try:
        return limits_from_mapping(value)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _metrics(raw: Mapping[str, Any]) -> tuple[str, int | None]:
    """metrics_address, or the deprecated metrics_port (not both), checked."""
    address = raw.get("metrics_address", DEFAULT_METRICS_ADDRESS)
    port = raw.get("metrics_port")
    if "metrics_address" in raw and port is not None:
        raise ConfigError("set metrics_address only; metrics_port is its deprecated form")
    if not isinstance(address, str):
        raise ConfigError('metrics_address must be a string like "127.0.0.1:9464"')
    if port is False:
        port = 0
    if port is not None and (isinstance(port, bool) or not isinstance(port, int)):
        raise ConfigError("metrics_port must be a port number (0 = off)")
    try:
        metrics_endpoint(address, port)
    except MetricsAddressError as exc:
        raise ConfigError(str(exc)) from exc
    return address, port


def _bound_tokens(raw: Mapping[str, Any], tls_mode: TlsMode) -> bool:
    # Without client certificates there is nothing to bind to: single-use bearer tokens.
    value = raw.get("certificate_bound_tokens", tls_mode is TlsMode.MUTUAL)
    if not isinstance(value, bool):
        raise ConfigError("certificate_bound_tokens must be true or false")
    if value and tls_mode is not TlsMode.MUTUAL:
        raise ConfigError(
            "certificate_bound_tokens needs tls_mode = \"mtls\" (the token is bound to the "
            "client certificate); set it to false only for a loopback test setup"
        )
    return value


def _bool(raw: Mapping[str, Any], key: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false (got {value!r})")
    return value


def _path(value: object, base: Path, key: str) -> Path | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or "\0" in value:
        raise ConfigError(f"{key} must be a path, written as a string (got {value!r})")
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p)


# A replica's name is part of its checkpoint file's name: no separators, nothing hidden.
_REPLICA_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")


def _replica_id(value: object) -> str:
    if value == "":
        return ""
    if not isinstance(value, str) or not _REPLICA_ID.match(value):
        raise ConfigError(
            "replica_id must be 1-64 letters, digits, '.', '_' or '-', starting with a letter "
            f"or digit (got {value!r})"
        )
    return value


# Longer than any interval a gateway setting means (over 30 years), and a float comparison
# never meets an int of hundreds of digits unguarded.
_MAX_SECONDS = 1e9


def _non_negative_seconds(raw: Mapping[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    # TOML allows nan and inf; neither is a usable interval.
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not 0 <= value <= _MAX_SECONDS):
        raise ConfigError(f"{key} must be a number of seconds, 0 or more (got {value!r})")
    return float(value)


def _positive_seconds(raw: Mapping[str, Any], key: str, default: float) -> float:
    value = _non_negative_seconds(raw, key, default)
    if value == 0:
        raise ConfigError(f"{key} must be more than 0 seconds")
    return value


def _whole(raw: Mapping[str, Any], key: str, default: int, *, least: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigError(f"{key} must be a whole number, {least} or more (got {value!r})")
    return value


def _text(raw: Mapping[str, Any], key: str, default: str) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a string (got {value!r})")
    return value


def _port(value: object) -> int | None:
    if value is None or value is False or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ConfigError(f"metrics_port must be a port number, or 0 for none (got {value!r})")
    return value


def _sources(value: object, breaker: BreakerSettings) -> tuple[SourceEndpoint, ...]:
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise ConfigError("sources must be [[sources]] tables")
    return tuple(_source(item, breaker) for item in value)


def _positive_int(
    raw: Mapping[str, Any], key: str, default: int, *, most: int | None = None
) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key} must be a whole number, 1 or more (got {value!r})")
    if most is not None and value > most:
        raise ConfigError(f"{key} must be at most {most} (got {value!r})")
    return value


def _log_origin(value: object) -> str:
    # The origin is the first line of every signed checkpoint: one printable line.
    if not isinstance(value, str) or not value or not value.isprintable() or len(value) > 200:
        raise ConfigError("log_origin must be one printable line of at most 200 characters")
    return value


_SOURCE_KEYS = frozenset(
    {"partner", "address", "tls", "allow_clear_requests", "allow_unsigned_answers", "breaker"}
)


def _breaker(value: object, base: BreakerSettings, where: str) -> BreakerSettings:
    try:
        return breaker_from_mapping(value, base, where)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _source(item: Mapping[str, Any], breaker: BreakerSettings) -> SourceEndpoint:
    unknown = sorted(set(item) - _SOURCE_KEYS)
    if unknown:
        raise ConfigError(f"unknown key(s) in a [[sources]] entry: {', '.join(unknown)}")
    missing = [key for key in ("partner", "address") if key not in item]
    if missing:
        raise ConfigError(
            f"a [[sources]] entry needs 'partner' and 'address' (missing {missing[0]!r})"
        )
    return SourceEndpoint(
        partner_id=_text(item, "partner", ""),
        address=_text(item, "address", ""),
        tls=_bool(item, "tls", True),
        allow_clear_requests=_bool(item, "allow_clear_requests", False),
        allow_unsigned_answers=_bool(item, "allow_unsigned_answers", False),
        breaker=(
            _breaker(item["breaker"], breaker, f"the breaker of source {item['partner']!r}")
            if "breaker" in item
            else None
        ),
    )
