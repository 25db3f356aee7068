"""The source runtime's access log: one JSON line per call it answered.

What was asked and what went out, never a value and never an identifier's value: the
operation, the disclosure or triage id, purpose and recipient of a fetch, which kinds of
identifier came, the asked field ids, which were supplied and which were unavailable, and the
outcome. A partner accounts with it for what its system supplied to the gateway.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

__all__ = ["AccessLog"]

OUTCOMES = ("answered", "partial", "not_known", "known", "unavailable", "deadline",
            "circuit_open")


class AccessLog:
    """Appends JSON lines to ``path`` (opened once, line-buffered), or to standard error."""

    def __init__(self, path: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._own = path is not None
        self._out: IO[str] = (
            path.open("a", encoding="utf-8", buffering=1) if path is not None else sys.stderr
        )

    def record(
        self,
        *,
        operation: str,
        reference: str,
        outcome: str,
        identifiers: Iterable[str],
        fields: Iterable[str] = (),
        supplied: Iterable[str] = (),
        unavailable: Iterable[str] = (),
        purpose: str = "",
        recipient: str = "",
        duration_s: float = 0.0,
    ) -> None:
        entry: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "operation": operation,
            "reference": reference,
            "outcome": outcome,
            "identifiers": sorted(identifiers),
            "fields": sorted(fields),
            "supplied": sorted(supplied),
            "unavailable": sorted(unavailable),
            "duration_ms": round(duration_s * 1000, 1),
        }
        if purpose:
            entry["purpose"] = purpose
        if recipient:
            entry["recipient"] = recipient
        line = json.dumps(entry, separators=(",", ":"), sort_keys=True)
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()

    def close(self) -> None:
        if self._own:
            self._out.close()
