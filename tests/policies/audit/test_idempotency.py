"""Tests for idempotency keys: a key reused with a different body is the conflict Vipps answers."""

from __future__ import annotations

import pytest

from policies.audit.idempotency import IdempotencyKeyReuse, body_digest, key_scope
from policies.audit.state import BoundedStore
from policies.catalogue.operations import find
from policies.core.engine import PolicyEngine
from policies.core.errors import render_block
from policies.core.model import AuditedRequest, audited_request
from tests.policies.audit.test_state import FakeClock

CAPTURE = {
    "epayment": ("/epayment/v1/payments/acme-order-1234/capture", "Idempotency-Key"),
    "ecom": ("/ecomm/v2/payments/acme-order-1234/capture", "X-Request-Id"),
    "recurring": ("/recurring/v3/agreements/agr_1/charges/chr_1/capture", "Idempotency-Key"),
}
FIRST = b'{"modificationAmount": {"value": 30000, "currency": "NOK"}}'
OTHER = b'{"modificationAmount": {"value": 40000, "currency": "NOK"}}'


def capture(
    api: str = "epayment",
    body: bytes = FIRST,
    key: str | None = "key-1",
    msn: str = "123456",
    path: str | None = None,
) -> AuditedRequest:
    default_path, header = CAPTURE[api]
    headers = [("Merchant-Serial-Number", msn)] + ([(header, key)] if key is not None else [])
    return audited_request("POST", path or default_path, headers, body)


@pytest.fixture
def clock() -> FakeClock:
    """A fake monotonic clock."""
    return FakeClock()


@pytest.fixture
def rule(clock: FakeClock) -> IdempotencyKeyReuse:
    """The rule over a store that forgets keys after an hour."""
    return IdempotencyKeyReuse(BoundedStore(clock, max_entries=100, ttl_seconds=3600))


@pytest.mark.parametrize(
    ("api", "status", "answer"),
    [
        pytest.param("epayment", 409, "409 Conflict", id="epayment-409"),
        pytest.param("recurring", 409, "409 Conflict", id="recurring-409"),
        pytest.param("ecom", 400, "error 93", id="ecom-error-93"),
    ],
)
def test_same_key_with_another_body_is_a_conflict(
    rule: IdempotencyKeyReuse, api: str, status: int, answer: str
) -> None:
    """The status is the one Vipps answers: 409, or 400 with error 93 in eCom."""
    rule.observe(capture(api))
    [finding] = rule.check(capture(api, OTHER))
    assert finding.rule == "idempotency.key_reused"
    assert finding.status == status
    assert finding.field == CAPTURE[api][1]
    assert finding.value == "key-1"
    assert answer in finding.expected


def test_same_key_and_body_is_a_counted_retry(rule: IdempotencyKeyReuse) -> None:
    """A retry passes, and each resend of the same key and body is recognised as a retry."""
    assert rule.observe(capture()) is False
    assert list(rule.check(capture())) == []
    assert rule.observe(capture()) is True
    assert rule.observe(capture()) is True


@pytest.mark.parametrize(
    "second",
    [
        pytest.param(capture(body=OTHER, key="key-2"), id="other-key"),
        pytest.param(capture(body=OTHER, msn="654321"), id="other-msn"),
        pytest.param(
            capture(body=OTHER, path="/epayment/v1/payments/acme-order-9999/capture"),
            id="other-payment",
        ),
        pytest.param(
            audited_request(
                "POST",
                "/epayment/v1/payments/acme-order-1234/refund",
                [("Merchant-Serial-Number", "123456"), ("Idempotency-Key", "key-1")],
                OTHER,
            ),
            id="other-operation",
        ),
        pytest.param(capture(body=OTHER, key=None), id="no-key"),
    ],
)
def test_a_key_is_scoped_to_operation_payment_and_msn(
    rule: IdempotencyKeyReuse, second: AuditedRequest
) -> None:
    """Another key, merchant, payment or operation is a different request, not a reuse."""
    rule.observe(capture())
    assert list(rule.check(second)) == []


def test_the_key_stays_bound_to_the_first_body(rule: IdempotencyKeyReuse) -> None:
    """A conflicting request that was forwarded anyway does not rebind the key."""
    rule.observe(capture())
    assert rule.observe(capture(body=OTHER)) is False
    assert list(rule.check(capture())) == []
    assert list(rule.check(capture(body=OTHER))) != []


def test_an_expired_key_is_forgotten(rule: IdempotencyKeyReuse, clock: FakeClock) -> None:
    """After the store's time to live the key is free again."""
    rule.observe(capture())
    clock.advance(3600)
    assert list(rule.check(capture(body=OTHER))) == []


def test_only_digests_are_stored(clock: FakeClock) -> None:
    """The store holds a 16-byte digest of the scope and of the body, never the body."""
    store: BoundedStore[bytes, bytes] = BoundedStore(clock, max_entries=10, ttl_seconds=60)
    IdempotencyKeyReuse(store).observe(capture())
    scope = key_scope(capture())
    assert scope is not None
    assert len(scope) == 16
    assert store.get(scope) == body_digest(FIRST)
    assert len(body_digest(FIRST)) == 16


def test_a_request_without_a_key_leaves_nothing(clock: FakeClock) -> None:
    """Requests without an idempotency key leave nothing behind."""
    store: BoundedStore[bytes, bytes] = BoundedStore(clock, max_entries=10, ttl_seconds=60)
    rule = IdempotencyKeyReuse(store)
    assert rule.observe(capture(key=None)) is False
    assert (
        rule.observe(audited_request("GET", "/epayment/v1/payments/acme-order-1234", [])) is False
    )
    assert len(store) == 0


@pytest.mark.parametrize(
    ("api", "name", "applies"),
    [
        pytest.param("epayment", "capture_payment", True, id="epayment-capture"),
        pytest.param("epayment", "get_payment", False, id="epayment-read"),
        pytest.param("ecom", "refund_payment", True, id="ecom-refund"),
        pytest.param("recurring", "cancel_charge", True, id="recurring-delete"),
        pytest.param("checkout", "create_session", False, id="checkout-no-key"),
    ],
)
def test_applies_to_writes_of_apis_with_keys(
    rule: IdempotencyKeyReuse, api: str, name: str, applies: bool
) -> None:
    """Only writes of ePayment, eCom and Recurring carry idempotency keys."""
    assert rule.applies_to(find(api, name)) is applies


def test_blocked_reuse_is_answered_with_409(rule: IdempotencyKeyReuse) -> None:
    """Through the engine, the blocked response carries the 409 Vipps would give."""
    rule.observe(capture())
    request = capture(body=OTHER)
    verdict = PolicyEngine([rule]).evaluate(request)
    assert verdict.blocked
    findings = [d.finding for d in verdict.decisions]
    document = render_block(request.operation, findings, instance="/x", trace_id="t")
    assert document.status == 409
