"""Signed checkpoints for the log benchmark, when this version of the log makes them.

The log signs a Merkle checkpoint inside the writer's transaction when it is given a
``signer`` (``AuditLog(engine, signer=CheckpointSigner(...), checkpoint_every=...,
checkpoint_interval_s=...)``). The benchmark passes those arguments only when the
constructor has them, with a fresh Ed25519 key, so it measures the log as it stands.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, func, select

from gateway.store import AuditLog
from gateway.store.tables import log_checkpoints

CHECKPOINT_EVERY = 1000
# Long enough that checkpoints follow the record count, not the clock, within a point.
CHECKPOINT_INTERVAL_S = 60.0
BENCH_ORIGIN = "bench.ketenpoort.local/accountability-log"


@dataclass(frozen=True)
class CheckpointSetup:
    """The extra ``AuditLog`` arguments, or why there are none."""

    options: dict[str, Any] = field(default_factory=dict)
    reason: str = ""

    @property
    def enabled(self) -> bool:
        return "signer" in self.options

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"enabled": self.enabled}
        if self.enabled:
            out["every"] = self.options.get("checkpoint_every")
            out["signer"] = type(self.options["signer"]).__name__
        else:
            out["reason"] = self.reason
        return out


def checkpoint_setup() -> CheckpointSetup:
    params = inspect.signature(AuditLog).parameters
    if "signer" not in params:
        return CheckpointSetup(reason="AuditLog takes no signer in this version")
    # Imported here: the module exists only in versions whose log takes a signer.
    from gateway.store.checkpoints import CheckpointSigner

    options: dict[str, Any] = {
        "signer": CheckpointSigner(Ed25519PrivateKey.generate(), BENCH_ORIGIN)
    }
    if "checkpoint_every" in params:
        options["checkpoint_every"] = CHECKPOINT_EVERY
    if "checkpoint_interval_s" in params:
        options["checkpoint_interval_s"] = CHECKPOINT_INTERVAL_S
    return CheckpointSetup(options)


def checkpoints_in(engine: Engine) -> int:
    with engine.begin() as conn:
        return int(conn.execute(select(func.count()).select_from(log_checkpoints)).scalar_one())
