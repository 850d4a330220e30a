"""Tests for the callbacks-only trap: payments never polled, and polls that come too fast."""

from __future__ import annotations

import pytest

from policies.audit.polling import PollingAudit, PollingTooFrequent, Unpolled
from policies.audit.state import BoundedStore
from policies.core.engine import PolicyEngine
from policies.core.errors import render_block
from policies.core.jsonbody import JsonValue
from policies.core.model import Action, AuditedRequest, Outcome, audited_request
from tests.policies.audit.test_state import FakeClock

REF = "acme-order-1234"
HEADERS = [("Merchant-Serial-Number", "123456")]


def call(method: str, path: str, body: bytes = b"") -> AuditedRequest:
    return audited_request(method, path, HEADERS, body)


CREATE_EPAYMENT = call("POST", "/epayment/v1/payments", b'{"reference": "%s"}' % REF.encode())
CREATE_ECOM = call(
    "POST", "/ecomm/v2/payments", b'{"transaction": {"orderId": "%s"}}' % REF.encode()
)
CREATE_SESSION = call(
    "POST", "/checkout/v3/session", b'{"transaction": {"reference": "%s"}}' % REF.encode()
)
GET_PAYMENT = call("GET", f"/epayment/v1/payments/{REF}")


@pytest.fixture
def clock() -> FakeClock:
    """A fake monotonic clock at zero."""
    return FakeClock(0.0)


@pytest.fixture
def audit(clock: FakeClock) -> PollingAudit:
    """The polling audit with Vipps' suggested five-minute window."""
    return PollingAudit(clock, BoundedStore(clock, max_entries=100, ttl_seconds=3600))


@pytest.fixture
def rule(audit: PollingAudit, clock: FakeClock) -> PollingTooFrequent:
    """The too-frequent rule over the same audit."""
    return PollingTooFrequent(audit, clock)


def test_never_polled_payment_is_due_once(audit: PollingAudit, clock: FakeClock) -> None:
    """A payment created and never polled is reported when the window ends, and only then."""
    clock.now = 100.0
    audit.observe(CREATE_EPAYMENT, 201, {"reference": REF})
    assert audit.due(399.9) == []
    expected = Unpolled("epayment", "123456", REF, created_at=100.0, age=300.0)
    assert audit.due(400.0) == [expected]
    assert audit.due(1000.0) == []


def test_due_reads_the_clock_by_default(audit: PollingAudit, clock: FakeClock) -> None:
    """Without an explicit time, due() asks the clock."""
    audit.observe(CREATE_EPAYMENT, 201, None)
    clock.now = 300.0
    assert [u.reference for u in audit.due()] == [REF]


@pytest.mark.parametrize(
    ("create", "answer", "poll", "api"),
    [
        pytest.param(CREATE_EPAYMENT, None, GET_PAYMENT, "epayment", id="epayment"),
        pytest.param(
            CREATE_EPAYMENT,
            None,
            call("GET", f"/epayment/v1/payments/{REF}/events"),
            "epayment",
            id="epayment-events",
        ),
        pytest.param(
            CREATE_ECOM,
            None,
            call("GET", f"/ecomm/v2/payments/{REF}/details"),
            "ecom",
            id="ecom",
        ),
        pytest.param(
            CREATE_SESSION,
            None,
            call("GET", f"/checkout/v3/session/{REF}"),
            "checkout",
            id="checkout",
        ),
        pytest.param(
            CREATE_SESSION,
            None,
            GET_PAYMENT,
            "checkout",
            id="checkout-polled-through-epayment",
        ),
        pytest.param(
            call("POST", "/recurring/v3/agreements", b"{}"),
            {"agreementId": "agr_1", "uuid": "x"},
            call("GET", "/recurring/v3/agreements/agr_1"),
            "recurring",
            id="recurring-agreement",
        ),
    ],
)  # fmt: skip
def test_a_poll_clears_the_payment(
    audit: PollingAudit,
    create: AuditedRequest,
    answer: JsonValue,
    poll: AuditedRequest,
    api: str,
) -> None:
    """Any poll of the payment, even one that got no answer, keeps it from being due."""
    audit.observe(create, 200, answer)
    [unpolled] = audit.due(300.0)
    assert unpolled.api == api
    audit.observe(create, 200, answer)
    # A second create is a retry of the first: still one payment, still due only once.
    assert audit.due(600.0) == []

    fresh = PollingAudit(lambda: 0.0, BoundedStore(lambda: 0.0, max_entries=10, ttl_seconds=900))
    fresh.observe(create, 200, answer)
    fresh.observe(poll, None, None)
    assert fresh.due(300.0) == []


def test_failed_create_is_not_tracked(audit: PollingAudit) -> None:
    """A create Vipps refused or never answered is no payment to poll."""
    audit.observe(CREATE_EPAYMENT, 400, None)
    audit.observe(CREATE_EPAYMENT, None, None)
    assert audit.due(1000.0) == []


def test_evicted_payment_is_not_reported(clock: FakeClock) -> None:
    """A payment that fell out of the bounded store is no longer reported."""
    audit = PollingAudit(clock, BoundedStore(clock, max_entries=1, ttl_seconds=3600))
    audit.observe(CREATE_EPAYMENT, 201, None)
    other = call("POST", "/epayment/v1/payments", b'{"reference": "acme-order-9999"}')
    audit.observe(other, 201, None)
    assert [u.reference for u in audit.due(300.0)] == ["acme-order-9999"]


def test_window_must_be_positive(clock: FakeClock) -> None:
    """A zero window is refused."""
    with pytest.raises(ValueError, match="window_seconds"):
        PollingAudit(clock, BoundedStore(clock, max_entries=1, ttl_seconds=1), window_seconds=0)


# --- Too frequent ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first_poll_at", "found", "retry_after"),
    [
        pytest.param(3.0, True, 2.0, id="after-3s"),
        pytest.param(4.9, True, 0.1, id="after-4.9s"),
        pytest.param(5.0, False, None, id="after-5s"),
    ],
)
def test_first_poll_waits_five_seconds(
    audit: PollingAudit,
    rule: PollingTooFrequent,
    clock: FakeClock,
    first_poll_at: float,
    found: bool,
    retry_after: float | None,
) -> None:
    """A first poll sooner than 5 s after creation is found, with the seconds left to wait."""
    audit.observe(CREATE_EPAYMENT, 201, None)
    clock.now = first_poll_at
    result = list(rule.check(GET_PAYMENT))
    assert bool(result) is found
    if result:
        assert result[0].retry_after == pytest.approx(retry_after)
        assert result[0].status == 429
        assert not result[0].advisory
        assert result[0].problem.endswith("after the payment was created")


@pytest.mark.parametrize(
    ("gap", "found"),
    [pytest.param(1.0, True, id="1s"), pytest.param(2.0, False, id="2s")],
)
def test_polls_come_at_most_every_two_seconds(
    audit: PollingAudit, rule: PollingTooFrequent, clock: FakeClock, gap: float, found: bool
) -> None:
    """Polls closer than 2 s apart are found, also for payments created elsewhere."""
    clock.now = 50.0
    audit.observe(GET_PAYMENT, 200, None)
    clock.advance(gap)
    result = list(rule.check(GET_PAYMENT))
    assert bool(result) is found
    if result:
        assert result[0].problem == f"polls {gap:.1f} s after the previous poll"


def test_unknown_payment_poll_is_fine(rule: PollingTooFrequent) -> None:
    """The first poll of a payment the audit never saw is not judged."""
    assert list(rule.check(GET_PAYMENT)) == []


def test_too_frequent_is_reported_by_default_and_blocks_when_asked(
    audit: PollingAudit, rule: PollingTooFrequent
) -> None:
    """In enforce mode the default outcome is would_block; set to block it answers 429."""
    audit.observe(CREATE_EPAYMENT, 201, None)
    verdict = PolicyEngine([rule]).evaluate(GET_PAYMENT)
    assert not verdict.blocked
    assert [d.outcome for d in verdict.decisions] == [Outcome.WOULD_BLOCK]
    blocking = PolicyEngine([rule], actions={"polling.too_frequent": Action.BLOCK})
    verdict = blocking.evaluate(GET_PAYMENT)
    assert verdict.blocked
    findings = [d.finding for d in verdict.decisions]
    document = render_block(GET_PAYMENT.operation, findings, instance="/x", trace_id="t")
    assert document.status == 429
