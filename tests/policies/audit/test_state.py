"""Tests for the bounded store and for how requests map to payments."""

from __future__ import annotations

import collections
import itertools
import tracemalloc

import pytest

from policies.audit.payment_audit import ObserveResult, PaymentAudit, StoreStats
from policies.audit.ratelimit import parse_limits
from policies.audit.state import (
    BoundedStore,
    Evictions,
    PaymentKey,
    Store,
    idempotency_key,
    payment_key,
)
from policies.core.jsonbody import JsonValue
from policies.core.model import AuditedRequest, audited_request


class FakeClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def store(clock: FakeClock, max_entries: int = 3, ttl: float = 10.0) -> BoundedStore[str, int]:
    return BoundedStore(clock, max_entries=max_entries, ttl_seconds=ttl)


def test_store_satisfies_the_protocol() -> None:
    """A BoundedStore can stand wherever a Store is expected."""
    backing: Store[str, int] = store(FakeClock())
    backing.put("a", 1)
    assert backing.get("a") == 1
    assert len(backing) == 1


def test_get_put_pop() -> None:
    """Values come back until popped; absent keys read as None."""
    s = store(FakeClock())
    s.put("a", 1)
    s.put("a", 2)
    assert s.get("a") == 2
    assert s.pop("a") == 2
    assert s.get("a") is None
    assert s.pop("a") is None
    assert s.evictions() == Evictions()


def test_entry_expires_after_its_ttl_and_is_counted() -> None:
    """An entry lives ttl seconds after its last write; reading it later counts an expiry."""
    clock = FakeClock()
    s = store(clock)
    s.put("a", 1)
    clock.advance(9.999)
    assert s.get("a") == 1
    clock.advance(0.001)
    assert s.get("a") is None
    assert s.evictions() == Evictions(by_cap=0, by_expiry=1)


def test_write_restarts_the_ttl() -> None:
    """Writing a key again makes it live another ttl."""
    clock = FakeClock()
    s = store(clock)
    s.put("a", 1)
    clock.advance(8)
    s.put("a", 2)
    clock.advance(8)
    assert s.get("a") == 2


def test_len_sweeps_expired_entries() -> None:
    """len() counts live entries only, and each expired one is counted once."""
    clock = FakeClock()
    s = store(clock, max_entries=100)
    for i in range(20):
        s.put(str(i), i)
    clock.advance(10)
    s.put("fresh", 1)
    assert len(s) == 1
    assert s.evictions() == Evictions(by_cap=0, by_expiry=20)


def test_pop_of_an_expired_entry_counts_an_expiry() -> None:
    """Popping an expired entry returns None and counts it as expired."""
    clock = FakeClock()
    s = store(clock)
    s.put("a", 1)
    clock.advance(11)
    assert s.pop("a") is None
    assert s.evictions().by_expiry == 1


def test_cap_evicts_the_oldest_written_first() -> None:
    """Past the cap the least recently written entry goes, and is counted as a cap eviction."""
    s = store(FakeClock(), max_entries=3)
    for key in ("a", "b", "c"):
        s.put(key, 0)
    s.put("a", 1)  # touching moves it to the newest end
    s.put("d", 0)
    assert s.get("b") is None
    assert [s.get(k) for k in ("a", "c", "d")] == [1, 0, 0]
    assert s.evictions() == Evictions(by_cap=1, by_expiry=0)


def test_reading_does_not_touch() -> None:
    """A read neither refreshes the ttl nor protects an entry from the cap."""
    s = store(FakeClock(), max_entries=2)
    s.put("a", 0)
    s.put("b", 0)
    assert s.get("a") == 0
    s.put("c", 0)
    assert s.get("a") is None


@pytest.mark.parametrize(
    ("max_entries", "ttl", "message"),
    [
        pytest.param(0, 1.0, "max_entries", id="no-room"),
        pytest.param(1, 0.0, "ttl_seconds", id="zero-ttl"),
        pytest.param(1, float("nan"), "ttl_seconds", id="nan-ttl"),
    ],
)
def test_bad_bounds_are_rejected(max_entries: int, ttl: float, message: str) -> None:
    """A store without room or without a positive ttl cannot be built."""
    with pytest.raises(ValueError, match=message):
        BoundedStore[str, int](FakeClock(), max_entries=max_entries, ttl_seconds=ttl)


@pytest.mark.slow
def test_memory_stays_flat_over_a_million_keys() -> None:
    """One million distinct keys through a 10,000-entry store use no more memory than 100,000."""
    s: BoundedStore[int, None] = BoundedStore(FakeClock(), max_entries=10_000, ttl_seconds=3600)

    def drive(start: int, stop: int) -> None:
        # map() keeps the loop in C, so tracemalloc's hooks are most of the cost.
        collections.deque(map(s.put, range(start, stop), itertools.repeat(None)), maxlen=0)

    tracemalloc.start()
    try:
        drive(0, 100_000)
        after_100k, _ = tracemalloc.get_traced_memory()
        drive(100_000, 1_000_000)
        after_1m, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(s) == 10_000
    assert s.evictions() == Evictions(by_cap=990_000, by_expiry=0)
    assert abs(after_1m - after_100k) < 64 * 1024, (after_100k, after_1m)


# --- Which payment a request is about ---------------------------------------------------------

MSN = [("Merchant-Serial-Number", "123456")]


@pytest.mark.parametrize(
    ("method", "path", "body", "response", "expected"),
    [
        pytest.param(
            "POST", "/epayment/v1/payments/ref-12345678/capture", b"{}", None,
            ("epayment", "123456", "ref-12345678"), id="epayment-path",
        ),
        pytest.param(
            "POST", "/epayment/v1/payments", b'{"reference": "ref-12345678"}', None,
            ("epayment", "123456", "ref-12345678"), id="epayment-create-body",
        ),
        pytest.param(
            "POST", "/checkout/v3/session", b'{"transaction": {"reference": "ref-12345678"}}',
            None, ("epayment", "123456", "ref-12345678"), id="checkout-is-epayment",
        ),
        pytest.param(
            "POST", "/ecomm/v2/payments", b'{"transaction": {"orderId": "o-1"}}', None,
            ("ecom", "123456", "o-1"), id="ecom-initiate-body",
        ),
        pytest.param(
            "POST", "/recurring/v3/agreements/agr_1/charges/chr_1/capture", b"{}", None,
            ("recurring", "123456", "agr_1/chr_1"), id="recurring-path",
        ),
        pytest.param(
            "POST", "/recurring/v3/agreements/agr_1/charges", b'{"orderId": "mine"}',
            {"chargeId": "chr_9"}, ("recurring", "123456", "agr_1/chr_9"),
            id="recurring-create-answer",
        ),
        pytest.param(
            "POST", "/recurring/v3/agreements/agr_1/charges", b'{"orderId": "mine"}', None,
            ("recurring", "123456", "agr_1/mine"), id="recurring-create-order-id",
        ),
        pytest.param(
            "GET", "/recurring/v3/charges/chr_1", b"", {"agreementId": "agr_1", "id": "chr_1"},
            ("recurring", "123456", "agr_1/chr_1"), id="recurring-charge-by-id",
        ),
        pytest.param(
            "POST", "/recurring/v3/agreements", b"{}", {"agreementId": "agr_1"},
            ("recurring", "123456", "agr_1"), id="recurring-draft-answer",
        ),
        pytest.param(
            "POST", "/epayment/v1/payments", b"{}", None, None, id="create-without-reference"
        ),
        pytest.param("GET", "/webhooks/v1/webhooks", b"", None, None, id="not-a-payment"),
    ],
)  # fmt: skip
def test_payment_key(
    method: str, path: str, body: bytes, response: JsonValue, expected: PaymentKey | None
) -> None:
    """Each API's payment id is found in the path, the body or the answer."""
    request = audited_request(method, path, MSN, body)
    assert payment_key(request, response) == expected


def test_payment_key_without_msn() -> None:
    """A request without a Merchant-Serial-Number header is keyed with an empty MSN."""
    request = audited_request("GET", "/ecomm/v2/payments/o-1/details", [])
    assert payment_key(request) == ("ecom", "", "o-1")


@pytest.mark.parametrize(
    ("path", "header", "expected"),
    [
        pytest.param("/epayment/v1/payments/r-12345678/capture", "Idempotency-Key", "k", id="ep"),
        pytest.param("/ecomm/v2/payments/o-1/capture", "X-Request-Id", "k", id="ecom"),
        pytest.param("/ecomm/v2/payments/o-1/capture", "Idempotency-Key", None, id="ecom-wrong"),
        pytest.param(
            "/recurring/v3/agreements/a/charges/c/capture", "Idempotency-Key", "k", id="rc"
        ),
    ],
)
def test_idempotency_key_follows_the_api(path: str, header: str, expected: str | None) -> None:
    """ePayment and Recurring use Idempotency-Key, eCom X-Request-Id."""
    request = audited_request("POST", path, [(header, " k ")], b"{}")
    assert idempotency_key(request) == expected


# --- The facade over all stores --------------------------------------------------------------


def create(reference: str) -> AuditedRequest:
    body = (
        b'{"amount": {"value": 50000, "currency": "NOK"}, "reference": "%s"}' % reference.encode()
    )
    headers = [*MSN, ("Idempotency-Key", f"create-{reference}")]
    return audited_request("POST", "/epayment/v1/payments", headers, body)


def test_audit_lists_its_rules() -> None:
    """The facade hands the engine every stateful rule, each with a distinct code."""
    codes = [rule.code for rule in PaymentAudit(FakeClock()).rules()]
    assert codes == [
        "ledger.capture_exceeds_reserved",
        "ledger.refund_exceeds_captured",
        "ledger.currency_mismatch",
        "idempotency.key_reused",
        "rate_limit.exceeded",
        "polling.too_frequent",
    ]


def test_audit_stats_count_entries_cap_and_expiry() -> None:
    """Stats show each store's entries, cap evictions and expiries."""
    clock = FakeClock()
    audit = PaymentAudit(clock, max_entries=2, ttl_seconds=10)
    for reference in ("acme-order-0001", "acme-order-0002", "acme-order-0003"):
        audit.record_forwarded(create(reference))
        audit.observe(create(reference), 201, {"reference": reference})
    assert audit.stats()["ledger"] == StoreStats(entries=2, evicted_by_cap=1, evicted_by_expiry=0)
    assert audit.stats()["idempotency"].evicted_by_cap == 1
    assert audit.stats()["rate_limit"].entries == 2
    clock.advance(10)
    assert audit.stats()["ledger"] == StoreStats(entries=0, evicted_by_cap=1, evicted_by_expiry=2)
    assert set(audit.stats()) == {"ledger", "idempotency", "rate_limit", "polling"}


def test_audit_observe_reports_retries_and_vipps_429() -> None:
    """observe() says when a request was a retry and when Vipps itself rate-limited it."""
    audit = PaymentAudit(FakeClock())
    request = create("acme-order-0001")
    assert audit.observe(request, None) == ObserveResult()
    assert audit.observe(request, 429, None, retry_after="30") == ObserveResult(
        retry=True, upstream_rate_limited=True
    )
    assert [f.retry_after for f in audit.rate_limits.check(request)] == [30.0]


def test_audit_due_unpolled_uses_the_window() -> None:
    """A payment created through the facade is due once its polling window has passed."""
    clock = FakeClock(0.0)
    audit = PaymentAudit(clock, poll_window_seconds=60)
    audit.observe(create("acme-order-0001"), 201, None)
    assert audit.due_unpolled(59.0) == []
    assert [u.reference for u in audit.due_unpolled(60.0)] == ["acme-order-0001"]


def test_audit_takes_limits_from_the_setting() -> None:
    """Limits parsed from the setting decide which operations the guard watches."""
    audit = PaymentAudit(FakeClock(), limits=parse_limits("epayment.create_payment=off"))
    assert not audit.rate_limits.applies_to(create("acme-order-0001").operation)
