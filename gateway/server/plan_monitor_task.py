"""Moved to :mod:`gateway.runtime.plan_monitor` (the gateway's background tasks live together
there); this name stays for code that imports it from here."""

from gateway.runtime.plan_monitor import (
    PlanMonitorTask,
)

__all__ = [
    "PlanMonitorTask",
]
