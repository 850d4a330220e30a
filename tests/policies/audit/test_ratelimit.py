"""Tests for the rate-limit guard: Vipps' per-payment limits, counted over a sliding window."""

from __future__ import annotations

from typing import Generic, TypeVar

import pytest

from policies.audit.ratelimit import (
    DEFAULT_LIMITS,
    Limit,
    RateLimitGuard,
    RateWindow,
    parse_limits,
    parse_retry_after,
)
from policies.audit.state import BoundedStore, Evictions
from policies.core.engine import PolicyEngine
from policies.core.errors import render_block
from policies.core.model import AuditedRequest, audited_request
from tests.policies.audit.test_state import FakeClock

K = TypeVar("K")
V = TypeVar("V")
SECRET = "sk-0123456789abcdef0123456789abcdef"


class DictStore(Generic[K, V]):
    """A plain-dict Store that shows what the guard keeps (no expiry, no cap)."""

    def __init__(self) -> None:
        self.items: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        return self.items.get(key)

    def put(self, key: K, value: V) -> None:
        self.items[key] = value

    def pop(self, key: K) -> V | None:
        return self.items.pop(key, None)

    def __len__(self) -> int:
        return len(self.items)

    def evictions(self) -> Evictions:
        return Evictions()


def request(
    method: str,
    path: str,
    body: bytes = b"",
    msn: str = "123456",
    subscription_key: str = SECRET,
    key: str | None = None,
) -> AuditedRequest:
    headers = [("Merchant-Serial-Number", msn), ("Ocp-Apim-Subscription-Key", subscription_key)]
    if key is not None:
        headers.append(("Idempotency-Key", key))
    return audited_request(method, path, headers, body)


def capture(reference: str = "acme-order-1234", msn: str = "123456") -> AuditedRequest:
    body = b'{"modificationAmount": {"value": 100, "currency": "NOK"}}'
    return request("POST", f"/epayment/v1/payments/{reference}/capture", body, msn=msn)


@pytest.fixture
def clock() -> FakeClock:
    """A fake monotonic clock."""
    return FakeClock(0.0)


@pytest.fixture
def guard(clock: FakeClock) -> RateLimitGuard:
    """The guard with Vipps' documented limits."""
    return RateLimitGuard(clock, BoundedStore(clock, max_entries=1000, ttl_seconds=60))


def forward(guard: RateLimitGuard, clock: FakeClock, req: AuditedRequest, at: list[float]) -> None:
    for moment in at:
        clock.now = moment
        assert list(guard.check(req)) == []
        guard.record(req)


def test_sixth_capture_in_a_minute_is_a_429(guard: RateLimitGuard, clock: FakeClock) -> None:
    """Five captures of one reference pass; the sixth within the minute waits for the first."""
    forward(guard, clock, capture(), [0, 10, 20, 30, 40])
    clock.now = 50
    [finding] = guard.check(capture())
    assert finding.rule == "rate_limit.exceeded"
    assert finding.status == 429
    assert finding.retry_after == pytest.approx(10)
    assert finding.problem == "would be call 6 within 60 s"
    assert finding.expected.startswith(
        "at most 5 calls per 60 s for the same reference and Merchant-Serial-Number"
    )
    assert finding.field == "reference + Merchant-Serial-Number"


def test_the_window_slides(guard: RateLimitGuard, clock: FakeClock) -> None:
    """Sixty seconds after the first capture the window admits again, then fills again."""
    forward(guard, clock, capture(), [0, 10, 20, 30, 40])
    forward(guard, clock, capture(), [60])
    clock.now = 61
    [finding] = guard.check(capture())
    assert finding.retry_after == pytest.approx(9)


def test_check_only_reads(guard: RateLimitGuard, clock: FakeClock) -> None:
    """Requests that were checked but not forwarded do not count."""
    for _ in range(20):
        assert list(guard.check(capture())) == []
    forward(guard, clock, capture(), [1, 2, 3, 4])
    assert list(guard.check(capture())) == []


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(capture(reference="acme-order-9999"), id="other-reference"),
        pytest.param(capture(msn="654321"), id="other-msn"),
        pytest.param(
            request("POST", "/epayment/v1/payments/acme-order-1234/refund", b"{}"), id="refund"
        ),
    ],
)
def test_limits_are_per_key(guard: RateLimitGuard, clock: FakeClock, other: AuditedRequest) -> None:
    """Another reference, merchant or operation has a window of its own."""
    forward(guard, clock, capture(), [0, 1, 2, 3, 4])
    assert list(guard.check(other)) == []


def test_reads_are_counted_per_subscription_key(guard: RateLimitGuard, clock: FakeClock) -> None:
    """GET payment allows 120 a minute per reference and subscription key."""
    read = request("GET", "/epayment/v1/payments/acme-order-1234")
    forward(guard, clock, read, [i * 0.25 for i in range(120)])
    assert len(list(guard.check(read))) == 1
    other_key = request("GET", "/epayment/v1/payments/acme-order-1234", subscription_key="sk-2")
    assert list(guard.check(other_key)) == []


def test_ecom_initiate_is_limited_by_body_order_id(guard: RateLimitGuard, clock: FakeClock) -> None:
    """eCom allows two initiates a minute for one orderId, taken from the body."""
    initiate = request("POST", "/ecomm/v2/payments", b'{"transaction": {"orderId": "o-1"}}')
    forward(guard, clock, initiate, [0, 1])
    assert len(list(guard.check(initiate))) == 1
    other = request("POST", "/ecomm/v2/payments", b'{"transaction": {"orderId": "o-2"}}')
    assert list(guard.check(other)) == []


def test_recurring_create_charge_counts_per_idempotency_key(
    guard: RateLimitGuard, clock: FakeClock
) -> None:
    """Recurring counts charge creation per agreement and the charge its key stands for."""
    path = "/recurring/v3/agreements/agr_1/charges"
    forward(guard, clock, request("POST", path, b"{}", key="charge-1"), [0, 1])
    assert len(list(guard.check(request("POST", path, b"{}", key="charge-1")))) == 1
    assert list(guard.check(request("POST", path, b"{}", key="charge-2"))) == []


def test_vipps_own_429_holds_the_key_back(guard: RateLimitGuard, clock: FakeClock) -> None:
    """After Vipps answers 429 with Retry-After, the key waits that long even below the limit."""
    assert guard.record_upstream_429(capture(), "30") == 30
    clock.now = 10
    [finding] = guard.check(capture())
    assert finding.retry_after == pytest.approx(20)
    assert "answered 429" in finding.problem
    clock.now = 30
    assert list(guard.check(capture())) == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param("60", 60.0, id="seconds"),
        pytest.param(" 1.5 ", 1.5, id="fraction"),
        pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", None, id="http-date"),
        pytest.param("-1", None, id="negative"),
        pytest.param("inf", None, id="infinite"),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    """Delta-seconds are read; anything else is left to the caller."""
    assert parse_retry_after(header) == expected


def test_upstream_429_without_seconds_holds_nothing(guard: RateLimitGuard) -> None:
    """A 429 without a usable Retry-After is counted by the caller but holds nothing back."""
    assert guard.record_upstream_429(capture(), None) is None
    assert list(guard.check(capture())) == []


def test_subscription_key_is_never_kept(clock: FakeClock) -> None:
    """Only digests of the key material are stored, never the subscription key itself."""
    store: DictStore[bytes, RateWindow] = DictStore()
    guard = RateLimitGuard(clock, store)
    guard.record(request("GET", "/epayment/v1/payments/acme-order-1234"))
    guard.record_upstream_429(request("GET", "/ecomm/v2/payments/o-1/details"), "5")
    assert len(store) == 2
    for key in store.items:
        assert len(key) == 16
        assert SECRET.encode() not in key


def test_blocked_request_is_answered_with_429(guard: RateLimitGuard, clock: FakeClock) -> None:
    """Through the engine the block carries status 429 and the seconds to wait."""
    forward(guard, clock, capture(), [0, 1, 2, 3, 4])
    verdict = PolicyEngine([guard]).evaluate(capture())
    assert verdict.blocked
    findings = [d.finding for d in verdict.decisions]
    assert render_block(capture().operation, findings, instance="/x", trace_id="t").status == 429
    assert findings[0].retry_after == pytest.approx(56)


# --- Settings -------------------------------------------------------------------------------


def test_parse_limits_overrides_and_switches_off() -> None:
    """A setting changes one limit, keeps its key, and switches another off."""
    limits = parse_limits(" epayment.capture_payment=10/30 , ecom.initiate_payment=OFF,")
    assert limits["epayment.capture_payment"] == Limit(10, 30.0, ("payment", "msn"))
    assert "ecom.initiate_payment" not in limits
    assert limits["epayment.refund_payment"] == DEFAULT_LIMITS["epayment.refund_payment"]
    assert parse_limits("") == dict(DEFAULT_LIMITS)


def test_parse_limits_adds_an_undocumented_operation() -> None:
    """An operation Vipps documents no limit for is counted per payment and MSN."""
    limits = parse_limits("checkout.create_session=3/60")
    assert limits["checkout.create_session"] == Limit(3, 60.0, ("payment", "msn"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("epayment.capture_payment", "expected operation=requests/seconds", id="no-="),
        pytest.param("epayment.capture_payment=", "expected operation=", id="no-value"),
        pytest.param("=5/60", "expected operation=", id="no-name"),
        pytest.param("epayment.capture=5/60", "unknown operation 'epayment.capture'", id="unknown"),
        pytest.param("epayment.capture_payment=five/60", "expected operation=", id="not-a-number"),
        pytest.param("epayment.capture_payment=5", "expected operation=", id="no-window"),
        pytest.param("epayment.capture_payment=0/60", "at least 1", id="zero"),
        pytest.param("epayment.capture_payment=5/0", "positive", id="zero-window"),
        pytest.param("epayment.capture_payment=5/nan", "positive", id="nan-window"),
        pytest.param("epayment.capture_payment=5.5/60", "expected operation=", id="fraction"),
    ],
)
def test_parse_limits_rejects_bad_parts(text: str, message: str) -> None:
    """A bad part fails with a message that quotes it and says what is expected."""
    with pytest.raises(ValueError, match=message) as raised:
        parse_limits(f"ecom.capture_payment=5/60,{text}")
    assert str(raised.value).startswith(f"rate limit {text!r}: ")


def test_guard_describes_itself(guard: RateLimitGuard) -> None:
    """The guard applies only where a limit is set."""
    assert guard.applies_to(capture().operation)
    assert not guard.applies_to(request("POST", "/checkout/v3/session").operation)
