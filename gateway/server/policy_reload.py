"""Moved to :mod:`gateway.runtime.policy_reload` (the gateway's background tasks live together
there); this name stays for code that imports it from here."""

from gateway.runtime.policy_reload import (
    FileStamp,
    PolicyApplier,
    PolicyLoader,
    PolicyReloader,
    ReloadOutcome,
    ReloadResult,
    SettledChange,
    Snapshot,
    describe_issue,
    policy_snapshot,
)

__all__ = [
    "FileStamp",
    "PolicyApplier",
    "PolicyLoader",
    "PolicyReloader",
    "ReloadOutcome",
    "ReloadResult",
    "SettledChange",
    "Snapshot",
    "describe_issue",
    "policy_snapshot",
]
