"""The circuit breaker settings of the gateway configuration: a default for every source in
the ``[source_breaker]`` table, and a source's own in its ``[[sources]]`` entry.

::

    [source_breaker]
    failure_threshold = 5   # calls in a row that timed out or could not reach the source
    open_for_s = 10.0       # then its fields are unavailable without asking it, this long

    [[sources]]
    partner = "police"
    address = "police-source.example:443"
    breaker = { failure_threshold = 3, open_for_s = 30.0 }   # unset keys take the default

See gateway.sources.breaker and docs/operations/configure.md ("Source circuit breakers").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.circuit_breaker import BreakerSettings

__all__ = ["breaker_from_mapping", "default_breaker_settings"]

_KEYS = frozenset({"failure_threshold", "open_for_s"})
# A threshold beyond this never opens in practice; an open time beyond a day is a mistake.
_MAX_THRESHOLD = 1_000_000
_MAX_OPEN_FOR_S = 86_400.0


def default_breaker_settings() -> BreakerSettings:
    """The breaker of a source nobody configured one for (5 failures, 10 s open)."""
    return BreakerSettings()


def breaker_from_mapping(raw: object, base: BreakerSettings, where: str) -> BreakerSettings:
    """The settings of a breaker table (``where`` names it in errors), with ``base`` for the
    keys it leaves out; ValueError naming the first bad key."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be a table")
    table: Mapping[str, Any] = raw
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ValueError(f"unknown key(s) in {where}: {', '.join(unknown)}")
    threshold = table.get("failure_threshold", base.failure_threshold)
    if (isinstance(threshold, bool) or not isinstance(threshold, int)
            or not 1 <= threshold <= _MAX_THRESHOLD):
        raise ValueError(
            f"{where} failure_threshold must be a whole number from 1 to {_MAX_THRESHOLD} "
            f"(got {threshold!r})"
        )
    open_for = table.get("open_for_s", base.open_for_s)
    # TOML allows nan and inf; neither is a usable time.
    if (isinstance(open_for, bool) or not isinstance(open_for, int | float)
            or not 0 < open_for <= _MAX_OPEN_FOR_S):
        raise ValueError(
            f"{where} open_for_s must be a number of seconds, more than 0 and at most "
            f"{_MAX_OPEN_FOR_S:.0f} (got {open_for!r})"
        )
    return BreakerSettings(failure_threshold=threshold, open_for_s=float(open_for))
