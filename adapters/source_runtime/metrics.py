"""The source runtime's Prometheus metrics, on a registry of its own (never the process default,
so a runtime embedded in another process publishes nothing twice). Labels are operations,
outcomes and catalogue field ids: never personal data."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from adapters.circuit_breaker import BreakerState

__all__ = ["SourceMetrics"]

_STATE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class SourceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.calls = Counter(
            "ketenpoort_source_runtime_calls_total",
            "Calls the gateway made, by operation and outcome",
            ["operation", "outcome"], registry=self.registry,
        )
        self.unavailable_fields = Counter(
            "ketenpoort_source_runtime_unavailable_fields_total",
            "Asked fields answered as unavailable (a failed field group, a value that did not "
            "convert), by field id",
            ["field"], registry=self.registry,
        )
        self.system_seconds = Histogram(
            "ketenpoort_source_runtime_system_seconds",
            "Time the partner's system took to answer, by operation",
            ["operation"], registry=self.registry,
        )
        self.circuit_state = Gauge(
            "ketenpoort_source_runtime_circuit_state",
            "The breaker around the partner's system: 0 closed, 1 half-open, 2 open",
            registry=self.registry,
        )

    def breaker_changed(self, _name: str, state: BreakerState) -> None:
        self.circuit_state.set(_STATE[state])

    def serve(self, address: str) -> None:
        """Publish on ``host:port`` over plain HTTP (bind it to a local or monitoring-only
        interface)."""
        host, _, port = address.rpartition(":")
        start_http_server(int(port), addr=host or "127.0.0.1", registry=self.registry)
