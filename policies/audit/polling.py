"""The callbacks-only trap: payments nobody polls, and polls that come too fast.

Vipps says not to rely on callbacks or webhooks alone, but to poll the payment as well (facts
§11.3, [SITE docs/technical-updates/2022-11]; Checkout: "delivery not guaranteed, so poll
too", facts §7). The audit remembers each payment created through the proxy and reports those
never polled within a window (`due`), once each. The polling guidelines also say how to poll:
"start polling 5 s after the request, then every 2 s" (facts §11.3, [KB
polling-guidelines.md]); `PollingTooFrequent` reports polls that come sooner.

A Checkout session is polled with `GET /checkout/v3/session/{reference}` or through ePayment's
`GET /epayment/v1/payments/{reference}` (Checkout payments are ePayment payments, facts §7),
so both count. A Recurring agreement drafted through the proxy is polled with GET agreement.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from policies.audit.state import Clock, PaymentKey, Store, payment_key
from policies.catalogue.operations import Operation
from policies.catalogue.spec import spec_of
from policies.core.jsonbody import JsonValue
from policies.core.model import Action, AuditedRequest, Condition, Finding, Source

__all__ = ["PollState", "PollingAudit", "PollingTooFrequent", "Unpolled"]

FIRST_POLL_AFTER = 5.0
POLL_INTERVAL = 2.0


@dataclass(frozen=True, slots=True)
class Unpolled:
    """A payment created through the proxy and never polled within the window."""

    api: str
    merchant_serial_number: str
    reference: str
    created_at: float
    age: float


@dataclass(slots=True)
class PollState:
    """When a payment was created (None: not through the proxy) and how it was polled."""

    api: str
    created_at: float | None = None
    last_poll: float | None = None
    polls: int = 0


class PollingAudit:
    """Payments created through the proxy, and when they were polled.

    `due` walks a queue in creation order, so each call costs only the payments it reports or
    passes; the queue is as bounded as the store (the oldest entries drop out first).
    """

    def __init__(
        self,
        clock: Clock,
        store: Store[PaymentKey, PollState],
        *,
        window_seconds: float = 300.0,
        max_queued: int = 100_000,
    ) -> None:
        if not window_seconds > 0:
            raise ValueError(f"window_seconds must be positive, not {window_seconds}")
        self._clock = clock
        self._store = store
        self.window_seconds = float(window_seconds)
        self._queue: deque[tuple[float, PaymentKey]] = deque(maxlen=max_queued)

    def get(self, key: PaymentKey) -> PollState | None:
        """What is known of the payment's polling (read it, do not change it)."""
        return self._store.get(key)

    def observe(
        self, request: AuditedRequest, status: int | None, response: JsonValue = None
    ) -> None:
        """Note a payment created (a 2xx answer to a create call) or polled (any forwarded poll)."""
        spec = spec_of(request.operation)
        if spec.awaits_polls:
            key = payment_key(request, response)
            if key is None or status is None or not 200 <= status < 300:
                return
            state = self._store.get(key)
            if state is not None and state.created_at is not None:
                return  # a retry of the create: the payment is the same
            now = self._clock()
            state = state or PollState(request.api)
            state.created_at = now
            self._store.put(key, state)
            self._queue.append((now, key))
        elif spec.polls:
            key = payment_key(request)
            if key is None:
                return
            state = self._store.get(key) or PollState(request.api)
            state.last_poll = self._clock()
            state.polls += 1
            self._store.put(key, state)

    def due(self, now: float | None = None) -> list[Unpolled]:
        """The payments created at least `window_seconds` ago and never polled, each once."""
        now = self._clock() if now is None else now
        found: list[Unpolled] = []
        queue = self._queue
        while queue and queue[0][0] + self.window_seconds <= now:
            created_at, key = queue.popleft()
            state = self._store.get(key)
            if state is not None and state.created_at == created_at and state.polls == 0:
                found.append(Unpolled(state.api, key[1], key[2], created_at, now - created_at))
        return found


class PollingTooFrequent:
    """Poll no sooner than 5 s after creating a payment, and then no more than every 2 s.

    From Vipps' polling guidelines: "start polling 5 s after the request, then every 2 s";
    a 429 means you poll wrongly (facts §11.3, [KB polling-guidelines.md]). Vipps does not
    refuse a single early poll, so the rule reports by default; its findings are not advisory,
    so `block` is a valid choice, and then the answer is a 429 with a Retry-After.
    """

    code: ClassVar[str] = "polling.too_frequent"
    default_action: ClassVar[Action] = Action.REPORT
    can_repair: ClassVar[bool] = False
    summary: ClassVar[str] = (
        "Poll a payment no sooner than 5 s after creating it, then at most every 2 s."
    )
    conditions: ClassVar[tuple[Condition, ...]] = (
        Condition(
            "too_soon",
            Action.REPORT,
            why="Vipps does not refuse a single early poll; only sustained polling meets 429",
        ),
    )

    def __init__(self, audit: PollingAudit, clock: Clock) -> None:
        self.audit = audit
        self._clock = clock

    def applies_to(self, operation: Operation) -> bool:
        return spec_of(operation).polls

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        key = payment_key(request)
        state = self.audit.get(key) if key is not None else None
        if state is None:
            return
        now = self._clock()
        if state.last_poll is not None:
            since, least, what = now - state.last_poll, POLL_INTERVAL, "the previous poll"
        elif state.created_at is not None:
            since, least, what = now - state.created_at, FIRST_POLL_AFTER, "the payment was created"
        else:
            return
        if since >= least:
            return
        yield Finding(
            self.code,
            Source.PATH,
            request.operation.params[0] if request.operation.params else "reference",
            f"polls {since:.1f} s after {what}",
            f"a first poll at least {FIRST_POLL_AFTER:g} s after creating the payment, then "
            f"at most one every {POLL_INTERVAL:g} s (Vipps' polling guidelines)",
            status=429,
            retry_after=least - since,
            condition="too_soon",
        )
