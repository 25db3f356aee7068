"""The ``[limits]`` table of the gateway configuration: call limits and connection limits.

::

    [limits]
    rate_per_s = 50.0            # per partner, per replica: calls a second on average
    burst = 100                  # calls at once after a quiet spell
    max_concurrent = 32          # calls in flight
    unknown_rate_per_s = 5.0     # every caller whose certificate is registered to no partner,
    unknown_burst = 20           # together
    unknown_max_concurrent = 8
    report_interval_s = 60.0     # one log record per caller of the calls turned away in this time
    max_concurrent_rpcs = 1000   # the whole server; beyond it RESOURCE_EXHAUSTED
    request_timeout_s = 10.0     # a call must send its request message within this time
    max_streams_per_connection = 100
    keepalive_time_s = 60.0      # the server pings a connection quiet this long ...
    keepalive_timeout_s = 20.0   # ... and closes it when the ping is not answered in time
    max_pings_without_data = 2
    max_connection_idle_s = 300.0          # a connection without calls is closed
    max_connection_age_s = 1800.0          # every connection is closed after this ...
    max_connection_age_grace_s = 30.0      # ... letting calls in flight finish this long
    handshake_timeout_s = 10.0
    max_health_watchers = 100
    max_case_watchers_per_partner = 4   # open WatchCaseEvents streams of one partner

    [limits.partners.police]     # one partner's own limit; unset keys take the values above
    rate_per_s = 200.0
    burst = 400

Every limit is enforced by each replica on its own: N replicas behind a balancer admit up to N
times the configured rate of a partner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.server.limits import UNKNOWN_CALLER, CallLimit

__all__ = ["LimitSettings", "limits_from_mapping"]

DEFAULT_PARTNER_LIMIT = CallLimit(rate_per_s=50.0, burst=100, max_concurrent=32)
DEFAULT_UNKNOWN_LIMIT = CallLimit(rate_per_s=5.0, burst=20, max_concurrent=8)
LIFTED_LIMIT = CallLimit(rate_per_s=1_000_000.0, burst=1_000_000, max_concurrent=1_000_000)
DEFAULT_REPORT_INTERVAL_S = 60.0
DEFAULT_MAX_CONCURRENT_RPCS = 1000
DEFAULT_REQUEST_TIMEOUT_S = 10.0
DEFAULT_MAX_STREAMS_PER_CONNECTION = 100
DEFAULT_KEEPALIVE_TIME_S = 60.0
DEFAULT_KEEPALIVE_TIMEOUT_S = 20.0
DEFAULT_MAX_PINGS_WITHOUT_DATA = 2
DEFAULT_MAX_CONNECTION_IDLE_S = 300.0
DEFAULT_MAX_CONNECTION_AGE_S = 1800.0
DEFAULT_MAX_CONNECTION_AGE_GRACE_S = 30.0
DEFAULT_HANDSHAKE_TIMEOUT_S = 10.0
DEFAULT_MAX_HEALTH_WATCHERS = 100
DEFAULT_MAX_CASE_WATCHERS_PER_PARTNER = 4


@dataclass(frozen=True)
class LimitSettings:
    partner: CallLimit = DEFAULT_PARTNER_LIMIT
    unknown: CallLimit = DEFAULT_UNKNOWN_LIMIT
    # (partner id, its own limit) pairs, sorted, where the covenant gives a partner more or
    # less; a tuple keeps the configuration hashable.
    partners: tuple[tuple[str, CallLimit], ...] = ()
    report_interval_s: float = DEFAULT_REPORT_INTERVAL_S
    max_concurrent_rpcs: int = DEFAULT_MAX_CONCURRENT_RPCS
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    max_streams_per_connection: int = DEFAULT_MAX_STREAMS_PER_CONNECTION
    keepalive_time_s: float = DEFAULT_KEEPALIVE_TIME_S
    keepalive_timeout_s: float = DEFAULT_KEEPALIVE_TIMEOUT_S
    max_pings_without_data: int = DEFAULT_MAX_PINGS_WITHOUT_DATA
    max_connection_idle_s: float = DEFAULT_MAX_CONNECTION_IDLE_S
    max_connection_age_s: float = DEFAULT_MAX_CONNECTION_AGE_S
    max_connection_age_grace_s: float = DEFAULT_MAX_CONNECTION_AGE_GRACE_S
    handshake_timeout_s: float = DEFAULT_HANDSHAKE_TIMEOUT_S
    max_health_watchers: int = DEFAULT_MAX_HEALTH_WATCHERS
    max_case_watchers_per_partner: int = DEFAULT_MAX_CASE_WATCHERS_PER_PARTNER

    @classmethod
    def lifted(cls) -> LimitSettings:
        """Call limits no load of one machine reaches, for benchmarks and for tests of other
        things; the connection limits stay as they are."""
        return cls(partner=LIFTED_LIMIT, unknown=LIFTED_LIMIT)

    def limit_of(self, caller: str) -> CallLimit:
        """The limit of a partner id, or of ``UNKNOWN_CALLER``."""
        if caller == UNKNOWN_CALLER:
            return self.unknown
        for partner_id, limit in self.partners:
            if partner_id == caller:
                return limit
        return self.partner

    def server_options(self) -> list[tuple[str, int]]:
        """grpc server options (channel arguments) that bound connections and streams."""
        return [
            ("grpc.max_concurrent_streams", self.max_streams_per_connection),
            ("grpc.keepalive_time_ms", _ms(self.keepalive_time_s)),
            ("grpc.keepalive_timeout_ms", _ms(self.keepalive_timeout_s)),
            ("grpc.http2.max_pings_without_data", self.max_pings_without_data),
            ("grpc.max_connection_idle_ms", _ms(self.max_connection_idle_s)),
            ("grpc.max_connection_age_ms", _ms(self.max_connection_age_s)),
            ("grpc.max_connection_age_grace_ms", _ms(self.max_connection_age_grace_s)),
            ("grpc.server_handshake_timeout_ms", _ms(self.handshake_timeout_s)),
        ]


# grpc takes channel arguments as C ints: every count and every time in milliseconds must fit.
_MAX_COUNT = 2**31 - 1
_MAX_SECONDS = _MAX_COUNT / 1000


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


_CALL_KEYS = ("rate_per_s", "burst", "max_concurrent")
_SECONDS = (
    "report_interval_s",
    "request_timeout_s",
    "keepalive_time_s",
    "keepalive_timeout_s",
    "max_connection_idle_s",
    "max_connection_age_s",
    "max_connection_age_grace_s",
    "handshake_timeout_s",
)
_COUNTS = (
    "max_concurrent_rpcs",
    "max_streams_per_connection",
    "max_health_watchers",
    "max_case_watchers_per_partner",
)
_KNOWN = frozenset(
    {*_CALL_KEYS, *(f"unknown_{k}" for k in _CALL_KEYS), *_SECONDS, *_COUNTS,
     "max_pings_without_data", "partners"}
)


def limits_from_mapping(raw: Mapping[str, Any]) -> LimitSettings:
    """The settings of a ``[limits]`` table; ValueError naming the first bad key."""
    if not isinstance(raw, Mapping):
        raise ValueError("[limits] must be a table")
    unknown = sorted(set(raw) - _KNOWN)
    if unknown:
        raise ValueError(f"unknown key(s) in [limits]: {', '.join(unknown)}")
    partner = _call_limit(raw, "", DEFAULT_PARTNER_LIMIT, "[limits]")
    partners_raw = raw.get("partners", {})
    if not isinstance(partners_raw, Mapping):
        raise ValueError("[limits.partners] must be a table of partner ids")
    partners: dict[str, CallLimit] = {}
    for partner_id, table in partners_raw.items():
        where = f"[limits.partners.{partner_id}]"
        if not isinstance(table, Mapping):
            raise ValueError(f"{where} must be a table")
        extra = sorted(set(table) - set(_CALL_KEYS))
        if extra:
            raise ValueError(f"unknown key(s) in {where}: {', '.join(extra)}")
        partners[str(partner_id)] = _call_limit(table, "", partner, where)
    pings = raw.get("max_pings_without_data", DEFAULT_MAX_PINGS_WITHOUT_DATA)
    if isinstance(pings, bool) or not isinstance(pings, int) or not 0 <= pings <= _MAX_COUNT:
        raise ValueError(f"max_pings_without_data must be a whole number from 0 to {_MAX_COUNT} "
                         f"(got {pings!r})")
    return LimitSettings(
        partner=partner,
        unknown=_call_limit(raw, "unknown_", DEFAULT_UNKNOWN_LIMIT, "[limits]"),
        partners=tuple(sorted(partners.items())),
        report_interval_s=_seconds(raw, "report_interval_s", DEFAULT_REPORT_INTERVAL_S),
        max_concurrent_rpcs=_count(raw, "max_concurrent_rpcs", DEFAULT_MAX_CONCURRENT_RPCS),
        request_timeout_s=_seconds(raw, "request_timeout_s", DEFAULT_REQUEST_TIMEOUT_S),
        max_streams_per_connection=_count(
            raw, "max_streams_per_connection", DEFAULT_MAX_STREAMS_PER_CONNECTION
        ),
        keepalive_time_s=_seconds(raw, "keepalive_time_s", DEFAULT_KEEPALIVE_TIME_S),
        keepalive_timeout_s=_seconds(raw, "keepalive_timeout_s", DEFAULT_KEEPALIVE_TIMEOUT_S),
        max_pings_without_data=pings,
        max_connection_idle_s=_seconds(
            raw, "max_connection_idle_s", DEFAULT_MAX_CONNECTION_IDLE_S
        ),
        max_connection_age_s=_seconds(raw, "max_connection_age_s", DEFAULT_MAX_CONNECTION_AGE_S),
        max_connection_age_grace_s=_seconds(
            raw, "max_connection_age_grace_s", DEFAULT_MAX_CONNECTION_AGE_GRACE_S
        ),
        handshake_timeout_s=_seconds(raw, "handshake_timeout_s", DEFAULT_HANDSHAKE_TIMEOUT_S),
        max_health_watchers=_count(raw, "max_health_watchers", DEFAULT_MAX_HEALTH_WATCHERS),
        max_case_watchers_per_partner=_count(
            raw, "max_case_watchers_per_partner", DEFAULT_MAX_CASE_WATCHERS_PER_PARTNER
        ),
    )


def _call_limit(raw: Mapping[str, Any], prefix: str, default: CallLimit, where: str) -> CallLimit:
    rate = raw.get(f"{prefix}rate_per_s", default.rate_per_s)
    if (isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= _MAX_COUNT):
        raise ValueError(f"{prefix}rate_per_s in {where} must be a number above 0 (got {rate!r})")
    return CallLimit(
        rate_per_s=float(rate),
        burst=_count(raw, f"{prefix}burst", default.burst, where),
        max_concurrent=_count(raw, f"{prefix}max_concurrent", default.max_concurrent, where),
    )


def _count(raw: Mapping[str, Any], key: str, default: int, where: str = "[limits]") -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_COUNT:
        raise ValueError(
            f"{key} in {where} must be a whole number from 1 to {_MAX_COUNT} (got {value!r})"
        )
    return value


def _seconds(raw: Mapping[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    # A chained comparison also refuses nan (every comparison with it is false) and needs no
    # float conversion, which a whole number of hundreds of digits would overflow.
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not 0 < value <= _MAX_SECONDS):
        raise ValueError(
            f"{key} in [limits] must be a number of seconds above 0 and at most "
            f"{_MAX_SECONDS:.0f} (got {value!r})"
        )
    return float(value)
