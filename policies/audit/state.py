"""The state the payment audit keeps: bounded, expiring stores, and the keys of payments in them.

Every piece of state the proxy keeps about payments (ledger, idempotency keys, request rates,
polls) lives in a `BoundedStore`: a map with a time to live per entry and a cap on the number
of entries, so memory stays flat however many payments pass through. The rules use it through
the small `Store` protocol, so a shared store can back them: `proxy.state_redis` (Redis, for
several replicas) does, over a snapshot of each request's payment.
`payment_key` says which payment a request is about, the same way for every rule.

Time is injected as a `Clock` (monotonic seconds), so tests drive it with a fake clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeAlias, TypeVar

from policies.catalogue.header_fields import MERCHANT_SERIAL_NUMBER
from policies.catalogue.operations import Operation
from policies.catalogue.spec import spec_of
from policies.core.jsonbody import JsonValue, Path
from policies.core.model import AuditedRequest

__all__ = [
    "BoundedStore",
    "Clock",
    "Evictions",
    "PaymentKey",
    "Store",
    "field_at",
    "idempotency_header",
    "idempotency_key",
    "merchant_serial_number",
    "payment_key",
]

Clock: TypeAlias = Callable[[], float]
"""Monotonic seconds, e.g. `time.monotonic`; tests pass a fake."""

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
K_contra = TypeVar("K_contra", contravariant=True)

# Expired entries removed per `get`/`put` besides the one touched: enough to keep up with any
# steady stream of writes, small enough that no single call pays for a burst of expiries.
_SWEEP_STEPS = 4


@dataclass(frozen=True, slots=True)
class Evictions:
    """How many entries a store dropped: to stay under its cap, and because they expired."""

    by_cap: int = 0
    by_expiry: int = 0


class Store(Protocol[K_contra, V]):
    """What the stateful rules need from a store; `BoundedStore` is the in-memory one.

    A value read with `get` is a snapshot: a caller that changes it must `put` it back, as it
    would with a shared store.
    """

    def get(self, key: K_contra) -> V | None:
        """The live value under `key`, or None (absent or expired)."""
        ...

    def put(self, key: K_contra, value: V) -> None:
        """Store `value`, making it the newest entry and restarting its time to live."""
        ...

    def pop(self, key: K_contra) -> V | None:
        """Remove and return the live value under `key`, or None."""
        ...

    def __len__(self) -> int:
        """The number of live entries."""
        ...

    def evictions(self) -> Evictions:
        """Entries dropped so far, by cap and by expiry."""
        ...


class BoundedStore(Generic[K, V]):
    """An in-memory map with a time to live per entry and a cap on the number of entries.

    Entries are kept in write order (a write moves the key to the newest end). Since every entry
    lives `ttl_seconds` after its last write and the clock is monotonic, write order is also
    expiry order: expired entries are always at the oldest end. That gives O(1) per operation:
    a read of an expired entry drops it (lazy expiry), each call also drops a few expired
    entries from the oldest end (incremental sweep), and a write past the cap drops the oldest
    entry. Each dropped entry is counted once, by cap or by expiry.
    """

    __slots__ = ("_by_cap", "_by_expiry", "_clock", "_items", "_max_entries", "_ttl")

    def __init__(self, clock: Clock, *, max_entries: int, ttl_seconds: float) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, not {max_entries}")
        if not ttl_seconds > 0:
            raise ValueError(f"ttl_seconds must be positive, not {ttl_seconds}")
        self._clock = clock
        self._max_entries = max_entries
        self._ttl = float(ttl_seconds)
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._by_cap = 0
        self._by_expiry = 0

    @property
    def max_entries(self) -> int:
        return self._max_entries

    @property
    def ttl_seconds(self) -> float:
        return self._ttl

    def get(self, key: K) -> V | None:
        now = self._clock()
        self._sweep(now, _SWEEP_STEPS)
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] <= now:
            del self._items[key]
            self._by_expiry += 1
            return None
        return item[1]

    def put(self, key: K, value: V) -> None:
        now = self._clock()
        self._sweep(now, _SWEEP_STEPS)
        items = self._items
        if key in items:
            items.move_to_end(key)
        items[key] = (now + self._ttl, value)
        if len(items) > self._max_entries:
            _, (expires_at, _) = items.popitem(last=False)
            if expires_at <= now:
                self._by_expiry += 1
            else:
                self._by_cap += 1

    def pop(self, key: K) -> V | None:
        item = self._items.pop(key, None)
        if item is None:
            return None
        if item[0] <= self._clock():
            self._by_expiry += 1
            return None
        return item[1]

    def __len__(self) -> int:
        # A full sweep: amortised O(1), since every entry is swept at most once.
        self._sweep(self._clock(), None)
        return len(self._items)

    def evictions(self) -> Evictions:
        return Evictions(self._by_cap, self._by_expiry)

    def _sweep(self, now: float, steps: int | None) -> None:
        """Drop expired entries from the oldest end: at most `steps` of them (None: all)."""
        items = self._items
        done = 0
        while items and (steps is None or done < steps):
            oldest = next(iter(items))
            if items[oldest][0] > now:
                return
            del items[oldest]
            self._by_expiry += 1
            done += 1

    def __repr__(self) -> str:
        return (
            f"BoundedStore(entries={len(self._items)}, max_entries={self._max_entries}, "
            f"ttl_seconds={self._ttl})"
        )


# --- Which payment a request is about ---------------------------------------------------------

PaymentKey: TypeAlias = tuple[str, str, str]
"""(api, Merchant-Serial-Number header or "", payment id); a Checkout payment is ePayment's."""


def merchant_serial_number(request: AuditedRequest) -> str:
    """The `Merchant-Serial-Number` header, or "" when absent."""
    return (request.headers.get(MERCHANT_SERIAL_NUMBER) or "").strip()


def idempotency_header(operation: Operation) -> str | None:
    """The API's idempotency header: ePayment, Recurring `Idempotency-Key`; eCom `X-Request-Id`.

    Facts §2.2 ([EP #/components/parameters/Idempotency-Key], [EC .../capture/post/parameters],
    [RC #/components/parameters/Idempotency-Key]).
    """
    return spec_of(operation).headers.idempotency_header


def idempotency_key(request: AuditedRequest) -> str | None:
    """The idempotency key the request carries, or None."""
    name = idempotency_header(request.operation)
    if name is None:
        return None
    return (request.headers.get(name) or "").strip() or None


def field_at(value: JsonValue, path: Path) -> JsonValue:
    """The value at `path` of a parsed response, or None when a step is absent."""
    for step in path:
        if not isinstance(value, dict) or not isinstance(step, str):
            return None
        value = value.get(step)
    return value


def payment_key(request: AuditedRequest, response: JsonValue = None) -> PaymentKey | None:
    """Which payment a request is about, or None.

    ePayment and Checkout `reference`, eCom `orderId`, Recurring `agreementId/chargeId` (the
    agreement alone for agreement calls), taken from the path; from the body, or the answer,
    for a call that creates the payment. `response` may also be one charge of a list. Without
    a response the key is derived once per request, however many rules ask.
    """
    if response is not None:
        return _payment_key(request, response)
    derived = request.derived
    if _PAYMENT_KEY not in derived:
        derived[_PAYMENT_KEY] = _payment_key(request, None)
    key: PaymentKey | None = derived[_PAYMENT_KEY]
    return key


_PAYMENT_KEY = "payment_key"


def _payment_key(request: AuditedRequest, response: JsonValue) -> PaymentKey | None:
    op, params = request.operation, request.path_params
    created_id = spec_of(op).created_id
    pid: JsonValue = params.get("reference") or params.get("orderId")
    if op.api == "recurring":
        agreement = params.get("agreementId") or field_at(response, ("agreementId",))
        charge = (
            params.get("chargeId")
            or field_at(response, ("chargeId",))
            or field_at(response, ("id",))
            or (request.field(created_id) if created_id is not None else None)
        )
        if op.name in ("draft_agreement", "get_agreement"):
            pid = agreement
        elif isinstance(agreement, str) and isinstance(charge, str):
            pid = f"{agreement}/{charge}"
    elif created_id is not None:
        pid = request.field(created_id)
    if not isinstance(pid, str) or not pid:
        return None
    return ("epayment" if op.api == "checkout" else op.api, merchant_serial_number(request), pid)
