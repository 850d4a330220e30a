"""Payment-level audit: one object that owns the bounded state and the stateful rules on it.

The handler asks three things of it: `rules()` once at start-up (added to the engine's rules),
`record_forwarded(request)` when a request went to Vipps, and `observe(...)` with Vipps'
answer. `due_unpolled()` runs on a timer for the callbacks-only trap, `stats()` feeds the state
gauges. Everything is kept in `BoundedStore`s of at most `max_entries` entries each, for at
most `ttl_seconds` after the last write (rate windows and polls for less: they need less).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from policies.audit.idempotency import IdempotencyKeyReuse
from policies.audit.ledger import (
    CaptureWithinReserved,
    CurrencyMatches,
    PaymentLedger,
    PaymentRecord,
    RefundWithinCaptured,
)
from policies.audit.polling import PollingAudit, PollingTooFrequent, PollState, Unpolled
from policies.audit.ratelimit import DEFAULT_LIMITS, Limit, RateLimitGuard, RateWindow
from policies.audit.state import BoundedStore, Clock, PaymentKey, Store
from policies.core.jsonbody import JsonValue
from policies.core.model import AuditedRequest, Rule

__all__ = ["AuditStores", "ObserveResult", "PaymentAudit", "StoreStats", "in_process_stores"]

DEFAULT_MAX_ENTRIES = 100_000
DEFAULT_TTL_SECONDS = 7 * 24 * 3600.0
DEFAULT_POLL_WINDOW_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class ObserveResult:
    """What one upstream answer meant: a retry (same key, same body), or Vipps' own 429."""

    retry: bool = False
    upstream_rate_limited: bool = False


@dataclass(frozen=True, slots=True)
class StoreStats:
    """One store's size and evictions, for `vipps_proxy_state_entries{store}` and
    `vipps_proxy_state_evictions_total{store,reason}`."""

    entries: int
    evicted_by_cap: int
    evicted_by_expiry: int


@dataclass(frozen=True, slots=True)
class AuditStores:
    """The four stores the audit keeps its state in: in-process by default, or shared ones."""

    ledger: Store[PaymentKey, PaymentRecord]
    idempotency: Store[bytes, bytes]
    rate_limit: Store[bytes, RateWindow]
    polling: Store[PaymentKey, PollState]
    # Unique among the processes sharing the stores (empty for stores of this process alone).
    replica: str = ""


def in_process_stores(
    clock: Clock,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    ttl_seconds: float = DEFAULT_TTL_SECONDS,
    poll_window_seconds: float = DEFAULT_POLL_WINDOW_SECONDS,
    limits: Mapping[str, Limit] = DEFAULT_LIMITS,
) -> AuditStores:
    """Bounded stores in this process: each replica sees only the traffic through itself."""
    longest_window = max((limit.window_seconds for limit in limits.values()), default=60.0)
    # A window outlives its last request by the longest limit window: then it is empty.
    # A poll record must outlive the polling window, so that `due` still finds it.
    return AuditStores(
        ledger=BoundedStore(clock, max_entries=max_entries, ttl_seconds=ttl_seconds),
        idempotency=BoundedStore(clock, max_entries=max_entries, ttl_seconds=ttl_seconds),
        rate_limit=BoundedStore(
            clock, max_entries=max_entries, ttl_seconds=max(longest_window, 60.0)
        ),
        polling=BoundedStore(
            clock, max_entries=max_entries, ttl_seconds=2 * poll_window_seconds + 60.0
        ),
    )


class PaymentAudit:
    """The ledger, idempotency, rate-limit and polling audit, sharing one clock and one budget."""

    def __init__(
        self,
        clock: Clock,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        poll_window_seconds: float = DEFAULT_POLL_WINDOW_SECONDS,
        limits: Mapping[str, Limit] = DEFAULT_LIMITS,
        *,
        stores: AuditStores | None = None,
    ) -> None:
        self._clock = clock
        if stores is None:
            stores = in_process_stores(clock, max_entries, ttl_seconds, poll_window_seconds, limits)
        self._ledger_store = stores.ledger
        self._key_store = stores.idempotency
        self._rate_store = stores.rate_limit
        self._poll_store = stores.polling
        self.ledger = PaymentLedger(self._ledger_store, stores.replica)
        self.idempotency = IdempotencyKeyReuse(self._key_store)
        self.rate_limits = RateLimitGuard(clock, self._rate_store, limits)
        self.polling = PollingAudit(
            clock, self._poll_store, window_seconds=poll_window_seconds, max_queued=max_entries
        )
        self._rules: tuple[Rule, ...] = (
            CaptureWithinReserved(self.ledger),
            RefundWithinCaptured(self.ledger),
            CurrencyMatches(self.ledger),
            self.idempotency,
            self.rate_limits,
            PollingTooFrequent(self.polling, clock),
        )

    def rules(self) -> tuple[Rule, ...]:
        """The stateful rules, to be listed with the others in the engine."""
        return self._rules

    def record_forwarded(self, request: AuditedRequest) -> None:
        """Count a request sent to Vipps in its rate-limit windows (call it once per forward)."""
        self.rate_limits.record(request)

    def observe(
        self,
        request: AuditedRequest,
        status: int | None,
        response_json: JsonValue = None,
        *,
        retry_after: str | None = None,
    ) -> ObserveResult:
        """Learn from Vipps' answer to a forwarded request (never call it for a blocked one).

        `status` is None when no answer came (timeout, connection lost); `response_json` is the
        parsed answer body or None; `retry_after` is the answer's Retry-After header, if any.
        """
        retry = self.idempotency.observe(request)
        self.ledger.observe(request, status, response_json)
        self.polling.observe(request, status, response_json)
        if status != 429:
            return ObserveResult(retry=retry)
        self.rate_limits.record_upstream_429(request, retry_after)
        return ObserveResult(retry=retry, upstream_rate_limited=True)

    def due_unpolled(self, now: float | None = None) -> list[Unpolled]:
        """Payments created through the proxy and never polled within the window, each once."""
        return self.polling.due(now)

    def stats(self) -> Mapping[str, StoreStats]:
        """Entries and evictions of each store: `ledger`, `idempotency`, `rate_limit`, `polling`."""
        stores: dict[str, Store[Any, Any]] = {
            "ledger": self._ledger_store,
            "idempotency": self._key_store,
            "rate_limit": self._rate_store,
            "polling": self._poll_store,
        }
        stats = {}
        for name, store in stores.items():
            entries = len(store)  # first: counting sweeps out what has expired
            evicted = store.evictions()
            stats[name] = StoreStats(entries, evicted.by_cap, evicted.by_expiry)
        return MappingProxyType(stats)
