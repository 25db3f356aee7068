"""Prometheus metrics. Labels name methods, outcomes, categories and partner types;
never a value, a subject or a secret. Each gateway owns its registry so that several
gateways (tests, replicas in one process) do not collide.

Every request updates several labelled series. Looking a labelled child up costs a few
times more than updating it, so the helpers below keep the children they have used: the
label sets are few and fixed (methods, status codes, outcomes, categories, partner types).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

# Reasons of ketenpoort_rewrap_errors_total (gateway.store.rewrap.FailureReason, and a run
# that failed as a whole).
REWRAP_ERROR_REASONS = ("malformed", "unknown_kek", "does_not_open", "run_failed")
# Reasons of ketenpoort_limited_calls_total (gateway.server.limits.LimitReason).
LIMIT_REASONS = ("rate", "concurrency")
# ketenpoort_source_circuit_state's values (adapters.circuit_breaker.BreakerState).
_CIRCUIT_STATES = {"closed": 0, "half_open": 1, "open": 2}
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "ketenpoort_requests_total",
            "gRPC requests by method and status code",
            ["method", "code"],
            registry=r,
        )
        self.latency = Histogram(
            "ketenpoort_request_seconds",
            "Request latency by method",
            ["method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "ketenpoort_field_decisions_total",
            "Per-field decisions by outcome and category",
            ["outcome", "category"],
            registry=r,
        )
        self.refusals = Counter(
            "ketenpoort_refusals_total",
            "Refused requests by reason",
            ["reason"],
            registry=r,
        )
        self.auth_failures = Counter(
            "ketenpoort_auth_failures_total",
            "Rejected authentications by reason",
            ["reason"],
            registry=r,
        )
        self.source_calls = Counter(
            "ketenpoort_source_calls_total",
            "Calls to partner sources by partner type and result: ok, timeout, circuit_open "
            "(not asked: the source's circuit breaker is open) or error",
            ["source", "result"],
            registry=r,
        )
        self.source_requests = Counter(
            "ketenpoort_source_requests_total",
            "Requests to partner sources by partner id and how they went out: sealed (to the "
            "partner's registered sealing key), clear_allowed (no key; clear allowed for the "
            "partner), clear_configured (seal_source_requests off) or no_sealing_key (no key "
            "and clear not allowed: the source was not asked)",
            ["partner", "sealing"],
            registry=r,
        )
        self.source_latency = Histogram(
            "ketenpoort_source_seconds",
            "Latency of calls to partner sources",
            ["source"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.source_circuit_state = Gauge(
            "ketenpoort_source_circuit_state",
            "State of the circuit breaker in front of each source, by partner id: 0 closed, "
            "1 half_open (one trial call), 2 open (not asked; its fields unavailable at once)",
            ["source"],
            registry=r,
        )
        self.source_timeouts = Counter(
            "ketenpoort_source_timeouts_total",
            "Calls to a source, by partner id, that ended at the source deadline without an "
            "answer",
            ["source"],
            registry=r,
        )
        self.log_append = Histogram(
            "ketenpoort_log_append_seconds",
            "Time from enqueue to durable commit of a log record",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.log_batch = Histogram(
            "ketenpoort_log_batch_records",
            "Records per log commit (group commit: many requests share one transaction)",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )
        self.log_commit = Histogram(
            "ketenpoort_log_commit_seconds",
            "Duration of one log batch transaction, including hashing and the durable commit",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.log_checkpoint_age = Gauge(
            "ketenpoort_log_checkpoint_age_seconds",
            "Seconds since the newest signed checkpoint of the log (made by any replica, as "
            "last seen by this one); records after it are chained but not yet signed",
            registry=r,
        )
        self.log_checkpoint_size = Gauge(
            "ketenpoort_log_checkpoint_tree_size",
            "Tree size of the newest signed checkpoint seen",
            registry=r,
        )
        self.log_verify_runs = Counter(
            "ketenpoort_log_verify_runs_total",
            "Periodic verifications of the log by result (ok, failed, error)",
            ["result"],
            registry=r,
        )
        self.log_verify_failures = Counter(
            "ketenpoort_log_verify_failures_total",
            "Verifications that found the log tampered with or broken; alert on any increase",
            registry=r,
        )
        self.policy_info = Info(
            "ketenpoort_policy",
            "Version of the policy in force",
            registry=r,
        )
        self.policy_reloads = Counter(
            "ketenpoort_policy_reloads_total",
            "Policy reloads by result: applied (a new version is in force), unchanged (same "
            "version) or rejected (invalid or unreadable; the version in force stays)",
            ["result"],
            registry=r,
        )
        self.registry_reloads = Counter(
            "ketenpoort_registry_reloads_total",
            "Partner registry reloads by result: applied, unchanged or rejected (a broken "
            "file; the registry in force stays)",
            ["result"],
            registry=r,
        )
        self.policy_loaded_at = Gauge(
            "ketenpoort_policy_last_load_timestamp_seconds",
            "Unix time of the last successful policy load (start, applied or unchanged reload)",
            registry=r,
        )
        self.policy_last_reload_ok = Gauge(
            "ketenpoort_policy_last_reload_successful",
            "1 when the last policy load succeeded, 0 after a rejected reload",
            registry=r,
        )
        self.up = Gauge("ketenpoort_up", "1 while the gateway serves", registry=r)
        self.cases_shredded = Counter(
            "ketenpoort_cases_shredded_total",
            "Cases whose data was shredded at the end of their retention period",
            registry=r,
        )
        self.retention_runs = Counter(
            "ketenpoort_retention_runs_total",
            "Retention runs by result: ok (every due case shredded), stopped (the gateway "
            "stopped mid-run) or failed (see the gateway log; the next run tries again)",
            ["result"],
            registry=r,
        )
        self.break_glass_reviews_open = Gauge(
            "ketenpoort_break_glass_reviews_open",
            "Break-glass disclosures the privacy officer has not reviewed yet, as counted at "
            "start and at each review list or close",
            registry=r,
        )
        self.data_keys_pending_rewrap = Gauge(
            "ketenpoort_data_keys_pending_rewrap",
            "Live cases whose data key is not yet wrapped under the current key-encryption "
            "key, as counted after each re-wrap run (the same database-wide count on every "
            "replica); the old key can be retired once this is 0",
            registry=r,
        )
        self.data_keys_rewrapped = Counter(
            "ketenpoort_data_keys_rewrapped_total",
            "Data keys this replica re-wrapped under the current key-encryption key",
            registry=r,
        )
        self.rewrap_errors = Counter(
            "ketenpoort_rewrap_errors_total",
            "Data keys a re-wrap run had to leave as they were, by reason: malformed, "
            "unknown_kek (names a key that is not loaded), does_not_open; and failed runs "
            "(run_failed, see the gateway log)",
            ["reason"],
            registry=r,
        )
        for reason in REWRAP_ERROR_REASONS:
            # Exported at 0 from the start, so that alerts see the series before a failure.
            self.rewrap_errors.labels(reason)

        self.limited_calls = Counter(
            "ketenpoort_limited_calls_total",
            "Calls turned away by this replica's call limits (RESOURCE_EXHAUSTED, before any "
            "work), by partner (a registered partner id, or unknown for every certificate "
            "registered to no partner) and reason (rate, concurrency)",
            ["partner", "reason"],
            registry=r,
        )
        for reason in LIMIT_REASONS:
            # Exported at 0 from the start, so that alerts see the series before a flood.
            self.limited_calls.labels("unknown", reason)
        self.request_timeouts = Counter(
            "ketenpoort_request_timeouts_total",
            "Calls closed (DEADLINE_EXCEEDED) because their request message did not arrive "
            "within request_timeout_s",
            registry=r,
        )

        self._children: dict[tuple[object, ...], Any] = {}

    def auth_failure(self, reason: str) -> None:
        self._child(self.auth_failures, reason).inc()

    def limited_call(self, partner: str, reason: str) -> None:
        """A call turned away by the call limits; ``partner`` is a registered partner id or
        "unknown", never anything the caller chose."""
        self._child(self.limited_calls, partner, reason).inc()

    def request_timeout(self) -> None:
        self.request_timeouts.inc()

    def refusal(self, reason: str) -> None:
        self._child(self.refusals, reason).inc()

    def field_decision(self, outcome: str, category: str) -> None:
        self._child(self.decisions, outcome, category).inc()

    def request_done(self, method: str, code: str, seconds: float) -> None:
        """One finished gRPC request: its status code and latency."""
        self._child(self.requests, method, code).inc()
        self._child(self.latency, method).observe(seconds)

    def source_call(self, source: str, result: str, seconds: float) -> None:
        """One call to a partner source: its result and latency."""
        self._child(self.source_calls, source, result).inc()
        self._child(self.source_latency, source).observe(seconds)

    def source_circuit(self, source: str, state: str) -> None:
        """The circuit breaker of ``source`` (a partner id) is now in ``state``."""
        self.source_circuit_state.labels(source).set(_CIRCUIT_STATES[state])
        # The source's timeouts are exported at 0 from its first state on, so that alerts see
        # the series before the first timeout.
        self._child(self.source_timeouts, source)

    def source_timeout(self, source: str) -> None:
        """A call to ``source`` (a partner id) ended at its deadline."""
        self._child(self.source_timeouts, source).inc()

    def source_request(self, partner: str, sealing: str) -> None:
        """One request to a partner's source and how it was sealed (or why not)."""
        self._child(self.source_requests, partner, sealing).inc()

    def policy_in_force(self, version: str) -> None:
        """The policy directory was read and `version` is in force (at start or on reload)."""
        self.policy_info.info({"version": version})
        self.policy_loaded_at.set_to_current_time()
        self.policy_last_reload_ok.set(1)

    def log_batch_committed(self, size: int, seconds: float, waits: tuple[float, ...]) -> None:
        """One committed log batch (called in the log writer thread)."""
        self.log_batch.observe(size)
        self.log_commit.observe(seconds)
        for wait in waits:
            self.log_append.observe(wait)

    def open_break_glass_reviews(self, count: int) -> None:
        """The number of break-glass disclosures still waiting for review."""
        self.break_glass_reviews_open.set(count)

    def retention_run(self, result: str) -> None:
        """One retention run ended: ok, stopped or failed."""
        self._child(self.retention_runs, result).inc()

    def case_shredded(self) -> None:
        """One case was shredded (counted as it happens, also in a run that fails later)."""
        self.cases_shredded.inc()

    def data_keys_rewrapped_in_batch(self, count: int) -> None:
        """A re-wrap batch committed; called on the re-wrap worker thread."""
        self.data_keys_rewrapped.inc(count)

    def rewrap_error(self, reason: str, count: int = 1) -> None:
        """Data keys left as they were, or a failed run; ``reason`` is one of
        REWRAP_ERROR_REASONS."""
        self._child(self.rewrap_errors, reason).inc(count)

    def policy_reload(self, result: str) -> None:
        """One reload attempt; `result` is applied, unchanged or rejected."""
        self._child(self.policy_reloads, result).inc()
        if result == "rejected":
            self.policy_last_reload_ok.set(0)

    def registry_reload(self, result: str) -> None:
        self._child(self.registry_reloads, result).inc()

    def _child(self, metric: Counter | Histogram, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            # Two threads may both get here; labels() hands both the same child.
            child = self._children[key] = metric.labels(*labels)
        return child
