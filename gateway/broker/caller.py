"""Who is calling and under which trace: plain data handed from the gRPC edge to the use cases."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.broker.ids import random_hex

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    partner_id: str
    partner_type: str
    role: str
    user_ref: str
    token_id: str
    expires_at: float


@dataclass(frozen=True)
class TraceContext:
    """W3C trace context: the caller's trace id when it sent one, and our own span id."""

    trace_id: str
    span_id: str
    parent_span_id: str = ""
    # The operation the span stands for, e.g. "ExchangeService/RequestDisclosure".
    operation: str = ""

    @classmethod
    def from_traceparent(cls, header: str | None, operation: str = "") -> TraceContext:
        match = _TRACEPARENT.match(header.strip().lower()) if header else None
        span = random_hex(8)
        if match and set(match.group(1)) != {"0"} and set(match.group(2)) != {"0"}:
            return cls(
                trace_id=match.group(1),
                span_id=span,
                parent_span_id=match.group(2),
                operation=operation,
            )
        return cls(trace_id=random_hex(16), span_id=span, operation=operation)
