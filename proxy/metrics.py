"""Every Prometheus metric the proxy exports, declared in one place.

Names and labels are a public contract (dashboards and alerts depend on them). Label values are
bounded: API and operation names from the catalogue, status codes, rule codes, and Vipps error
codes folded to `other` when they are not short numeric or dotted codes. Never references,
order IDs, phone numbers or free text.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from policies.audit.payment_audit import StoreStats
from policies.audit.ratelimit import RATE_LIMIT_RULE
from policies.core.model import Outcome
from proxy.audit import RequestFacts

# Payment calls take tens to hundreds of milliseconds at Vipps; the proxy's own share is far
# below a millisecond. The buckets resolve both ends.
_PROXY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip

# A state round trip on a local network takes well under a millisecond; the timeout is 50 ms.
_STATE_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
)  # fmt: skip

# Vipps error codes are short: ePayment "4040", eCom "81", Checkout "Validation-00001",
# Recurring "charge-amount-too-high". A long digit run is no code (it could be a phone number).
_ERROR_CODE = re.compile(r"^(?:\d{1,6}|[A-Za-z][A-Za-z0-9._-]{0,39})$")
ERROR_CODE_CAP = 100
# Methods a label names; any other is counted as `other`.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ProxyMetrics:
    """The proxy's metrics, registered on the registry given (a fresh one per test)."""

    def __init__(self, registry: CollectorRegistry, version: str = "0") -> None:
        self.registry = registry
        self.requests = Counter(
            "vipps_proxy_requests",
            "Requests handled, by the status the client received and what the proxy did.",
            ["api", "operation", "method", "code", "outcome"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "vipps_proxy_request_duration_seconds",
            "Whole request time at the proxy, from first byte in to response out.",
            ["api", "operation", "outcome"],
            buckets=_PROXY_BUCKETS,
            registry=registry,
        )
        self.upstream_duration = Histogram(
            "vipps_proxy_upstream_duration_seconds",
            "Round trip to the Vipps API only.",
            ["api", "operation"],
            buckets=_PROXY_BUCKETS,
            registry=registry,
        )
        self.upstream_errors = Counter(
            "vipps_proxy_upstream_errors",
            "Requests that got no HTTP response from the Vipps API, by reason.",
            ["api", "operation", "reason"],
            registry=registry,
        )
        self.vipps_errors = Counter(
            "vipps_proxy_vipps_errors",
            "Error responses (4xx/5xx) from the Vipps API, by the Vipps error code in the body.",
            ["api", "operation", "code", "error_code"],
            registry=registry,
        )
        self.policy_findings = Counter(
            "vipps_proxy_policy_findings",
            "Policy findings, by rule and what the proxy did about them.",
            ["api", "operation", "rule", "action"],
            registry=registry,
        )
        self.finding_outcomes = Counter(
            "vipps_proxy_finding_outcomes",
            "Forwarded requests with findings, per rule, by Vipps' answer: accepted (2xx),"
            " rejected (4xx), no_answer (5xx, timeout, connection error).",
            ["api", "operation", "rule", "vipps"],
            registry=registry,
        )
        self.rule_errors = Counter(
            "vipps_proxy_rule_errors",
            "Policy rules that raised instead of answering (always a proxy bug).",
            ["rule"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "vipps_proxy_rate_limited",
            "Requests answered 429 by the proxy before Vipps' documented per-payment limit.",
            ["api", "operation"],
            registry=registry,
        )
        self.upstream_rate_limited = Counter(
            "vipps_proxy_upstream_rate_limited",
            "429 answers from Vipps itself.",
            ["api", "operation"],
            registry=registry,
        )
        self.idempotent_retries = Counter(
            "vipps_proxy_idempotent_retries",
            "Retries: the same idempotency key with the same body, sent again.",
            ["api", "operation"],
            registry=registry,
        )
        self.payments_unpolled = Counter(
            "vipps_proxy_payments_unpolled",
            "Payments created through the proxy whose status was never polled within the window.",
            ["api"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "vipps_proxy_in_flight_requests",
            "Requests being handled right now.",
            registry=registry,
        )
        self.build_info = Gauge(
            "vipps_proxy_build_info",
            "Always 1; the labels say which build is running.",
            ["version", "python"],
            registry=registry,
        )
        self.build_info.labels(version=version, python=platform.python_version()).set(1)
        self.state_errors = Counter(
            "vipps_proxy_state_errors",
            "Shared-state round trips that failed or were skipped, so the payment-level rules"
            " ran without state (fail open); by store and reason.",
            ["store", "reason"],
            registry=registry,
        )
        self.state_duration = Histogram(
            "vipps_proxy_state_duration_seconds",
            "Round trips to the shared state (Redis), by operation.",
            ["operation"],
            buckets=_STATE_BUCKETS,
            registry=registry,
        )
        self._error_codes_seen: set[str] = set()
        # `labels()` validates and locks on every call; every request needs the same few
        # children again, so they are kept (their labels are bounded, so are these maps).
        self._request_series: dict[tuple[str, str, str, int, str], tuple[Counter, Histogram]] = {}
        self._upstream_series: dict[tuple[str, str], Histogram] = {}
        self._finding_series: dict[tuple[str, str, str, str], Counter] = {}

    def count_request(self, facts: RequestFacts) -> None:
        """Count one finished request in every metric it belongs to: requests and durations,
        upstream errors and Vipps' error codes, findings by action, rate limits, rule errors,
        and Vipps' grading of the rules that doubted it."""
        api, name, status, outcome = facts.api, facts.operation, facts.status, facts.outcome
        method = facts.method if facts.method in _METHODS else "other"
        requests, duration = self.request_series(api, name, method, status, outcome)
        requests.inc()
        duration.observe(facts.seconds)
        if facts.upstream_reason is not None:
            self.upstream_errors.labels(api, name, facts.upstream_reason).inc()
        else:
            if facts.upstream_seconds is not None:
                self.upstream_series(api, name).observe(facts.upstream_seconds)
            if outcome == "forwarded" and status >= 400:
                code = self.error_code_label(facts.vipps_error_code)
                self.vipps_errors.labels(api, name, str(status), code).inc()
        verdict = facts.verdict
        if verdict is None:
            return
        for decision in verdict.decisions:
            rule = decision.finding.rule
            self.finding_series(api, name, rule, decision.outcome.value).inc()
            if rule == RATE_LIMIT_RULE and decision.outcome is Outcome.BLOCKED:
                self.rate_limited.labels(api, name).inc()
        for failure in verdict.failures:
            self.rule_errors.labels(failure.rule).inc()
        if facts.graded is not None:
            # One count per rule, however many findings it made.
            for rule in verdict.rule_codes:
                self.finding_outcomes.labels(api, name, rule, facts.graded).inc()

    def request_series(
        self, api: str, operation: str, method: str, status: int, outcome: str
    ) -> tuple[Counter, Histogram]:
        """The `requests` counter and `request_duration` histogram children for one request."""
        key = (api, operation, method, status, outcome)
        series = self._request_series.get(key)
        if series is None:
            series = (
                self.requests.labels(api, operation, method, str(status), outcome),
                self.request_duration.labels(api, operation, outcome),
            )
            self._request_series[key] = series
        return series

    def upstream_series(self, api: str, operation: str) -> Histogram:
        """The `upstream_duration` histogram child of one operation."""
        key = (api, operation)
        series = self._upstream_series.get(key)
        if series is None:
            series = self._upstream_series[key] = self.upstream_duration.labels(api, operation)
        return series

    def finding_series(self, api: str, operation: str, rule: str, action: str) -> Counter:
        """The `policy_findings` counter child of one rule's finding on one operation."""
        key = (api, operation, rule, action)
        series = self._finding_series.get(key)
        if series is None:
            series = self._finding_series[key] = self.policy_findings.labels(*key)
        return series

    def error_code_label(self, code: str | None) -> str:
        """Bound a Vipps error code for a label: odd shapes and overflow fold to `other`."""
        if not code:
            return "none"
        if not _ERROR_CODE.match(code):
            return "other"
        if code not in self._error_codes_seen:
            if len(self._error_codes_seen) >= ERROR_CODE_CAP:
                return "other"
            self._error_codes_seen.add(code)
        return code


class StateCollector(Collector):
    """Size and evictions of the payment-audit state, read from the stores at scrape time."""

    def __init__(self, stats: Callable[[], Mapping[str, StoreStats]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        entries = GaugeMetricFamily(
            "vipps_proxy_state_entries", "Entries held per payment-audit store.", labels=["store"]
        )
        evictions = CounterMetricFamily(
            "vipps_proxy_state_evictions",
            "Entries dropped per store: by the size cap (oldest first) or by expiry.",
            labels=["store", "reason"],
        )
        for store, stats in self._stats().items():
            entries.add_metric([store], stats.entries)
            evictions.add_metric([store, "cap"], stats.evicted_by_cap)
            evictions.add_metric([store, "expiry"], stats.evicted_by_expiry)
        yield entries
        yield evictions
