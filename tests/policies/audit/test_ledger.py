"""Tests for the payment ledger and its rules: captures within the reservation, refunds within
the capture, one currency per payment, retries counted once, timeouts kept conservative."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.audit.ledger import (
    CaptureWithinReserved,
    CurrencyMatches,
    PaymentLedger,
    PaymentRecord,
    RefundWithinCaptured,
    figures_in,
)
from policies.audit.payment_audit import PaymentAudit
from policies.audit.state import BoundedStore
from policies.catalogue.operations import find
from policies.core.engine import PolicyEngine
from policies.core.jsonbody import JsonValue
from policies.core.model import AuditedRequest, Finding, Outcome, Rule, audited_request
from tests.policies.audit.test_state import FakeClock

MSN = "123456"
RESERVED = 50000


@dataclass(frozen=True)
class Api:
    """How one API creates, captures, refunds and reports a payment of 50000 øre."""

    name: str
    create_path: str
    create_body: dict[str, Any]
    create_answer: JsonValue
    payment_path: str
    read_path: str
    key_header: str

    def capture_body(self, amount: int | None) -> dict[str, Any]:
        if self.name == "epayment":
            return {"modificationAmount": {"value": amount, "currency": "NOK"}}
        if self.name == "ecom":
            transaction: dict[str, Any] = {"transactionText": "Socks"}
            if amount is not None:
                transaction["amount"] = amount
            return {"merchantInfo": {"merchantSerialNumber": MSN}, "transaction": transaction}
        return {"amount": amount, "description": "Socks"}

    def figures(self, reserved: int, captured: int, refunded: int) -> JsonValue:
        """An answer carrying Vipps' own figures, in this API's shape."""
        if self.name == "epayment":

            def nok(value: int) -> JsonValue:
                return {"value": value, "currency": "NOK"}

            aggregate: JsonValue = {
                "authorizedAmount": nok(reserved),
                "capturedAmount": nok(captured),
                "refundedAmount": nok(refunded),
                "cancelledAmount": nok(0),
            }
            return {"reference": "acme-order-1234", "state": "AUTHORIZED", "aggregate": aggregate}
        if self.name == "ecom":
            summary: JsonValue = {
                "capturedAmount": captured,
                "remainingAmountToCapture": reserved - captured,
                "refundedAmount": refunded,
                "remainingAmountToRefund": captured - refunded,
            }
            return {"orderId": "acme-order-1234", "transactionSummary": summary}
        return {
            "agreementId": "agr_5kSeqz",
            "id": "chr_1",
            "amount": reserved,
            "currency": "NOK",
            "status": "PARTIALLY_CAPTURED" if captured else "RESERVED",
            "summary": {"captured": captured, "refunded": refunded, "cancelled": 0},
        }


EPAYMENT = Api(
    "epayment",
    "/epayment/v1/payments",
    {
        "amount": {"value": RESERVED, "currency": "NOK"},
        "paymentMethod": {"type": "WALLET"},
        "reference": "acme-order-1234",
        "userFlow": "WEB_REDIRECT",
        "returnUrl": "https://example.com/return",
    },
    {"reference": "acme-order-1234", "redirectUrl": "https://landing.vipps.no"},
    "/epayment/v1/payments/acme-order-1234",
    "/epayment/v1/payments/acme-order-1234",
    "Idempotency-Key",
)
ECOM = Api(
    "ecom",
    "/ecomm/v2/payments",
    {
        "customerInfo": {},
        "merchantInfo": {
            "merchantSerialNumber": MSN,
            "callbackPrefix": "https://example.com/vipps",
            "fallBack": "https://example.com/return",
        },
        "transaction": {"orderId": "acme-order-1234", "amount": RESERVED, "transactionText": "x"},
    },
    {"orderId": "acme-order-1234", "url": "https://api.vipps.no/dwo-api-application"},
    "/ecomm/v2/payments/acme-order-1234",
    "/ecomm/v2/payments/acme-order-1234/details",
    "X-Request-Id",
)
RECURRING = Api(
    "recurring",
    "/recurring/v3/agreements/agr_5kSeqz/charges",
    {
        "amount": RESERVED,
        "transactionType": "RESERVE_CAPTURE",
        "description": "October",
        "due": "2030-10-01",
        "retryDays": 0,
    },
    {"chargeId": "chr_1"},
    "/recurring/v3/agreements/agr_5kSeqz/charges/chr_1",
    "/recurring/v3/agreements/agr_5kSeqz/charges/chr_1",
    "Idempotency-Key",
)
APIS = [pytest.param(api, id=api.name) for api in (EPAYMENT, ECOM, RECURRING)]


def call(
    api: Api, method: str, path: str, body: JsonValue = None, key: str | None = None
) -> AuditedRequest:
    headers = [("Merchant-Serial-Number", MSN)]
    if key is not None:
        headers.append((api.key_header, key))
    raw = json.dumps(body).encode() if body is not None else b""
    return audited_request(method, path, headers, raw)


def capture(api: Api, amount: int | None, key: str = "cap-1") -> AuditedRequest:
    return call(api, "POST", f"{api.payment_path}/capture", api.capture_body(amount), key)


def refund(api: Api, amount: int, key: str = "ref-1") -> AuditedRequest:
    return call(api, "POST", f"{api.payment_path}/refund", api.capture_body(amount), key)


def read(api: Api) -> AuditedRequest:
    return call(api, "GET", api.read_path)


@pytest.fixture
def ledger() -> PaymentLedger:
    """An empty ledger in a roomy store."""
    return PaymentLedger(BoundedStore(FakeClock(), max_entries=1000, ttl_seconds=3600))


def created(ledger: PaymentLedger, api: Api) -> PaymentLedger:
    request = call(api, "POST", api.create_path, api.create_body, "create-1")
    ledger.observe(request, 201 if api.name == "epayment" else 200, api.create_answer)
    return ledger


def record_of(ledger: PaymentLedger, api: Api) -> PaymentRecord:
    key = {"recurring": "agr_5kSeqz/chr_1"}.get(api.name, "acme-order-1234")
    record = ledger.get((api.name, MSN, key))
    assert record is not None
    return record


def findings(ledger: PaymentLedger, request: AuditedRequest) -> list[Finding]:
    rules = (CaptureWithinReserved(ledger), RefundWithinCaptured(ledger), CurrencyMatches(ledger))
    return [f for rule in rules if rule.applies_to(request.operation) for f in rule.check(request)]


# --- Captures -------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
def test_over_capture_after_a_partial_capture_is_found(ledger: PaymentLedger, api: Api) -> None:
    """Create 50000, capture 30000: a further 30000 is too much, 20000 is not."""
    created(ledger, api)
    first = capture(api, 30000)
    assert findings(ledger, first) == []
    ledger.observe(first, 204 if api.name == "recurring" else 200, None)
    assert findings(ledger, capture(api, 20000, "cap-2")) == []
    [finding] = findings(ledger, capture(api, 30000, "cap-2"))
    assert finding.rule == "ledger.capture_exceeds_reserved"
    assert not finding.advisory
    assert finding.status == 400
    assert finding.problem == "capture of 30000 would bring captured to 60000 of 50000 reserved"
    assert finding.expected.startswith("at most 20000 (reserved 50000, captured so far 30000)")


def test_over_capture_is_blocked_by_the_engine() -> None:
    """Through the engine an over-capture is blocked, naming ePayment's own error code."""
    audit = PaymentAudit(FakeClock())
    engine = PolicyEngine(list(audit.rules()))
    create = call(EPAYMENT, "POST", EPAYMENT.create_path, EPAYMENT.create_body, "create-1")
    audit.observe(create, 201, EPAYMENT.create_answer)
    verdict = engine.evaluate(capture(EPAYMENT, 50001))
    assert verdict.blocked
    assert verdict.rule_codes == ("ledger.capture_exceeds_reserved",)
    assert "6090" in verdict.decisions[0].finding.expected


def test_a_failed_create_leaves_the_payment_unknown(ledger: PaymentLedger) -> None:
    """Only a 2xx create makes a payment known."""
    request = call(EPAYMENT, "POST", EPAYMENT.create_path, EPAYMENT.create_body, "create-1")
    ledger.observe(request, 400, None)
    assert findings(ledger, capture(EPAYMENT, 90000)) == []


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(capture(EPAYMENT, 90000), id="epayment-capture"),
        pytest.param(refund(EPAYMENT, 90000), id="epayment-refund"),
        pytest.param(capture(ECOM, 90000), id="ecom-capture"),
        pytest.param(refund(ECOM, 90000), id="ecom-refund"),
        pytest.param(capture(RECURRING, 90000), id="recurring-capture"),
        pytest.param(refund(RECURRING, 90000), id="recurring-refund"),
        pytest.param(
            call(
                EPAYMENT,
                "POST",
                f"{EPAYMENT.payment_path}/capture",
                {"modificationAmount": {"value": 100, "currency": "DKK"}},
                "k",
            ),
            id="epayment-currency",
        ),
    ],
)
def test_an_unknown_payment_is_never_blocked(
    ledger: PaymentLedger, request_: AuditedRequest
) -> None:
    """Nothing is found for a payment the ledger has never seen."""
    assert findings(ledger, request_) == []


@pytest.mark.parametrize("api", APIS)
def test_a_retry_with_the_same_key_counts_once(ledger: PaymentLedger, api: Api) -> None:
    """The same key and body again is the same capture: counted once, never an over-capture."""
    created(ledger, api)
    first = capture(api, 30000, "cap-1")
    ledger.observe(first, 200, None)
    retry = capture(api, 30000, "cap-1")
    assert findings(ledger, retry) == []
    ledger.observe(retry, 200, None)
    assert record_of(ledger, api).captured == 30000
    assert findings(ledger, capture(api, 30000, "cap-2")) != []


@pytest.mark.parametrize("api", APIS)
def test_figures_from_vipps_override_local_arithmetic(ledger: PaymentLedger, api: Api) -> None:
    """A polled answer replaces what the ledger added up, and pending amounts with it."""
    created(ledger, api)
    ledger.observe(capture(api, 30000, "cap-1"), 200, None)
    ledger.observe(capture(api, 5000, "cap-2"), None, None)  # timed out
    ledger.observe(read(api), 200, api.figures(45000, 10000, 0))
    record = record_of(ledger, api)
    assert (record.reserved, record.captured, record.pending_captures) == (45000, 10000, {})
    assert findings(ledger, capture(api, 35000, "cap-3")) == []
    [finding] = findings(ledger, capture(api, 35001, "cap-3"))
    assert finding.problem == "capture of 35001 would bring captured to 45001 of 45000 reserved"


@pytest.mark.parametrize("api", APIS[:2])
def test_figures_before_approval_keep_the_created_amount(ledger: PaymentLedger, api: Api) -> None:
    """Zero authorised (the user has not approved yet) does not make every capture too large."""
    created(ledger, api)
    ledger.observe(read(api), 200, api.figures(0, 0, 0))
    assert record_of(ledger, api).reserved == RESERVED
    assert findings(ledger, capture(api, RESERVED)) == []


def test_a_capture_answer_with_an_aggregate_is_authoritative(ledger: PaymentLedger) -> None:
    """ePayment's capture answer carries the aggregate, which the ledger takes as is."""
    created(ledger, EPAYMENT)
    ledger.observe(capture(EPAYMENT, 30000), 200, EPAYMENT.figures(RESERVED, 30000, 0))
    record = record_of(ledger, EPAYMENT)
    assert (record.captured, record.confirmed, "capture:cap-1" in record.applied) == (
        30000,
        True,
        True,
    )


@pytest.mark.parametrize(
    ("raw", "counted"),
    [
        pytest.param(b"30000", 30000, id="integer"),
        pytest.param(b"30000.0", 30000, id="integral-float-repaired-before-forwarding"),
        pytest.param(b"30000.5", 0, id="fraction"),
        pytest.param(b"1E+999", 0, id="huge"),
        pytest.param(b"true", 0, id="boolean"),
    ],
)
def test_amounts_are_read_as_whole_minor_units(
    ledger: PaymentLedger, raw: bytes, counted: int
) -> None:
    """An integral decimal counts as its integer; anything else counts nothing."""
    created(ledger, EPAYMENT)
    body = b'{"modificationAmount": {"value": %s, "currency": "NOK"}}' % raw
    request = audited_request(
        "POST",
        f"{EPAYMENT.payment_path}/capture",
        [("Merchant-Serial-Number", MSN), ("Idempotency-Key", "k")],
        body,
    )
    ledger.observe(request, 200, None)
    assert record_of(ledger, EPAYMENT).captured == counted


def test_ecom_capture_without_amount_takes_the_rest(ledger: PaymentLedger) -> None:
    """An eCom capture without an amount captures what is left, so any later capture is too much."""
    created(ledger, ECOM)
    ledger.observe(capture(ECOM, None), 200, None)
    assert record_of(ledger, ECOM).captured == RESERVED
    assert findings(ledger, capture(ECOM, None, "cap-2")) == []  # nothing to judge
    assert findings(ledger, capture(ECOM, 100, "cap-2")) != []


def test_express_payment_has_no_ceiling_until_vipps_reports_one(ledger: PaymentLedger) -> None:
    """Shipping picked by the user may add to the reservation, so only Vipps' figure counts."""
    body = {**EPAYMENT.create_body, "shipping": {"fixedOptions": []}}
    ledger.observe(call(EPAYMENT, "POST", EPAYMENT.create_path, body, "c"), 201, None)
    assert findings(ledger, capture(EPAYMENT, 59900)) == []
    ledger.observe(read(EPAYMENT), 200, EPAYMENT.figures(59900, 0, 0))
    assert findings(ledger, capture(EPAYMENT, 59900)) == []
    assert findings(ledger, capture(EPAYMENT, 59901)) != []


@pytest.mark.parametrize("api", APIS)
def test_cancel_releases_the_rest_of_the_reservation(ledger: PaymentLedger, api: Api) -> None:
    """After a partial capture and a cancel, nothing more can be captured."""
    created(ledger, api)
    ledger.observe(capture(api, 20000), 200, None)
    method = {"ecom": "PUT", "recurring": "DELETE"}.get(api.name, "POST")
    path = api.payment_path if api.name == "recurring" else f"{api.payment_path}/cancel"
    ledger.observe(call(api, method, path, None, "cancel-1"), 200, None)
    [finding] = findings(ledger, capture(api, 100, "cap-2"))
    assert finding.problem == (
        "capture of 100 would bring captured to 20100 of 20000 reserved (30000 of 50000 cancelled)"
    )


def test_checkout_payments_are_captured_through_epayment(ledger: PaymentLedger) -> None:
    """A Checkout session's amount is the ceiling of the ePayment capture on its reference."""
    body = {
        "merchantInfo": {"callbackUrl": "https://e.com/cb", "returnUrl": "https://e.com/r"},
        "transaction": {
            "amount": {"value": RESERVED, "currency": "NOK"},
            "reference": "acme-order-1234",
            "paymentDescription": "Socks",
        },
    }
    request = audited_request(
        "POST", "/checkout/v3/session", [("Merchant-Serial-Number", MSN)], json.dumps(body).encode()
    )
    ledger.observe(request, 200, {"token": "t", "checkoutFrontendUrl": "u", "pollingUrl": "p"})
    assert findings(ledger, capture(EPAYMENT, RESERVED + 1)) != []


# --- Timeouts and other unknown outcomes ---------------------------------------------------


@pytest.mark.parametrize(
    "status",
    [
        pytest.param(None, id="no-answer"),
        pytest.param(504, id="gateway-timeout"),
        pytest.param(502, id="bad-gateway"),
        pytest.param(202, id="accepted"),
    ],
)
def test_unknown_outcome_is_pending(ledger: PaymentLedger, status: int | None) -> None:
    """A timed-out capture neither blocks a capture that fits nor lets a certain excess through."""
    created(ledger, RECURRING)
    ledger.observe(capture(RECURRING, 30000, "cap-1"), status, None)
    record = record_of(ledger, RECURRING)
    assert (record.captured, record.pending_captures) == (0, {"capture:cap-1": 30000})
    [maybe] = findings(ledger, capture(RECURRING, 30000, "cap-2"))
    assert maybe.advisory
    assert "if operations whose outcome is unknown went against it" in maybe.problem
    [certain] = findings(ledger, capture(RECURRING, RESERVED + 1, "cap-2"))
    assert not certain.advisory
    # The retry that settles it counts it once; it is judged against the certain figures.
    assert findings(ledger, capture(RECURRING, 30000, "cap-1")) == []
    ledger.observe(capture(RECURRING, 30000, "cap-1"), 204, None)
    record = record_of(ledger, RECURRING)
    assert (record.captured, record.pending_captures) == (30000, {})


def test_advisory_findings_are_never_blocked() -> None:
    """An excess that depends on a timed-out capture is reported, not blocked."""
    audit = PaymentAudit(FakeClock())
    engine = PolicyEngine(list(audit.rules()))
    create = call(EPAYMENT, "POST", EPAYMENT.create_path, EPAYMENT.create_body, "create-1")
    audit.observe(create, 201, None)
    audit.observe(capture(EPAYMENT, 30000, "cap-1"), None, None)
    verdict = engine.evaluate(capture(EPAYMENT, 30000, "cap-2"))
    assert not verdict.blocked
    assert [d.outcome for d in verdict.decisions] == [Outcome.REPORTED]


@pytest.mark.parametrize(
    ("status", "pending"),
    [
        pytest.param(400, {}, id="refused-forgotten"),
        pytest.param(404, {}, id="not-found-forgotten"),
        pytest.param(409, {"capture:cap-1": 30000}, id="conflict-still-open"),
        pytest.param(429, {"capture:cap-1": 30000}, id="rate-limited-still-open"),
    ],
)
def test_a_refused_retry_settles_a_pending_capture(
    ledger: PaymentLedger, status: int, pending: dict[str, int]
) -> None:
    """A 4xx means the capture never happened, unless Vipps may still be working on it."""
    created(ledger, EPAYMENT)
    ledger.observe(capture(EPAYMENT, 30000), None, None)
    ledger.observe(capture(EPAYMENT, 30000), status, None)
    assert record_of(ledger, EPAYMENT).pending_captures == pending


# --- Refunds --------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
def test_over_refund_is_found_once_vipps_confirmed_the_capture(
    ledger: PaymentLedger, api: Api
) -> None:
    """Capture 30000 (confirmed by Vipps), refund 20000: a further 20000 is too much."""
    created(ledger, api)
    ledger.observe(capture(api, 30000), 200, None)
    ledger.observe(read(api), 200, api.figures(RESERVED, 30000, 0))
    first = refund(api, 20000, "ref-1")
    assert findings(ledger, first) == []
    ledger.observe(first, 200, None)
    assert findings(ledger, refund(api, 10000, "ref-2")) == []
    [finding] = findings(ledger, refund(api, 20000, "ref-2"))
    assert finding.rule == "ledger.refund_exceeds_captured"
    assert finding.problem == "refund of 20000 would bring refunded to 40000 of 30000 captured"
    assert finding.expected.startswith("at most 10000 (captured 30000, refunded so far 20000)")


@pytest.mark.parametrize("api", APIS)
def test_refund_is_not_judged_before_vipps_confirms(ledger: PaymentLedger, api: Api) -> None:
    """Vipps may capture on its own (direct capture, due charges): local captures are no limit."""
    created(ledger, api)
    ledger.observe(capture(api, 30000), 200, None)
    assert findings(ledger, refund(api, RESERVED)) == []


def test_refund_counts_a_timed_out_capture_as_done(ledger: PaymentLedger) -> None:
    """A refund that fits if a timed-out capture went through is only reported."""
    created(ledger, RECURRING)
    ledger.observe(read(RECURRING), 200, RECURRING.figures(RESERVED, 30000, 0))
    ledger.observe(capture(RECURRING, 20000, "cap-2"), None, None)
    [maybe] = findings(ledger, refund(RECURRING, 40000))
    assert maybe.advisory
    [certain] = findings(ledger, refund(RECURRING, 50001))
    assert not certain.advisory


def test_recurring_charge_list_teaches_every_charge(ledger: PaymentLedger) -> None:
    """Each charge in a list answer is learned under its own agreement and charge id."""
    charge = RECURRING.figures(RESERVED, 30000, 0)
    assert isinstance(charge, dict)
    answer: JsonValue = [charge, {**charge, "id": "chr_2", "amount": 1000}]
    ledger.observe(
        call(RECURRING, "GET", "/recurring/v3/agreements/agr_5kSeqz/charges"), 200, answer
    )
    assert record_of(ledger, RECURRING).captured == 30000
    other = ledger.get(("recurring", MSN, "agr_5kSeqz/chr_2"))
    assert other is not None
    assert other.reserved == 1000


# --- Currency -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "found"),
    [pytest.param("NOK", False, id="same"), pytest.param("DKK", True, id="other")],
)
def test_capture_currency_must_match_the_payment(
    ledger: PaymentLedger, currency: str, found: bool
) -> None:
    """A NOK payment is captured in NOK."""
    created(ledger, EPAYMENT)
    body: JsonValue = {"modificationAmount": {"value": 100, "currency": currency}}
    request = call(EPAYMENT, "POST", f"{EPAYMENT.payment_path}/capture", body, "k")
    codes = [f.rule for f in findings(ledger, request)]
    assert codes == (["ledger.currency_mismatch"] if found else [])


def test_rules_apply_where_their_money_moves() -> None:
    """The capture rule applies to a Recurring charge capture; the currency rule not to eCom."""
    ledger = PaymentLedger(BoundedStore(FakeClock(), max_entries=1, ttl_seconds=1))
    rules: list[Rule] = [
        CaptureWithinReserved(ledger),
        RefundWithinCaptured(ledger),
        CurrencyMatches(ledger),
    ]
    assert rules[0].applies_to(find("recurring", "capture_charge"))
    assert not rules[2].applies_to(find("ecom", "capture_payment"))


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(None, id="no-body"),
        pytest.param({"aggregate": {}}, id="empty-aggregate"),
        pytest.param({"aggregate": {"authorizedAmount": {"value": 1.5}}}, id="not-an-integer"),
    ],
)
def test_incomplete_figures_are_ignored(answer: JsonValue) -> None:
    """An answer without all of Vipps' figures teaches nothing."""
    assert figures_in(find("epayment", "get_payment"), answer) is None


# --- Invariant ------------------------------------------------------------------------------

_OUTCOMES = {"ok": 200, "timeout": None, "refused": 400}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=60000),
            st.sampled_from(sorted(_OUTCOMES)),
            st.none() | st.integers(min_value=0, max_value=30),
        ),
        max_size=25,
    )
)
def test_captured_never_exceeds_the_reservation(
    steps: list[tuple[int, str, int | None]],
) -> None:
    """For any sequence of captures, retries and timeouts the rule admits, captured stays within
    the reservation and each key is counted at most once."""
    ledger = created(
        PaymentLedger(BoundedStore(FakeClock(), max_entries=10, ttl_seconds=3600)), RECURRING
    )
    sent: list[tuple[str, int]] = []
    succeeded: dict[str, int] = {}
    for amount, outcome, retry in steps:
        if retry is not None and sent:
            key, amount = sent[retry % len(sent)]
        else:
            key = f"cap-{len(sent)}"
            sent.append((key, amount))
        request = capture(RECURRING, amount, key)
        if any(not f.advisory for f in findings(ledger, request)):
            continue  # blocked: never forwarded
        status = _OUTCOMES[outcome]
        ledger.observe(request, 204 if status == 200 else status, None)
        if status == 200:
            succeeded[key] = amount
        record = record_of(ledger, RECURRING)
        assert record.captured <= RESERVED
        assert record.captured == sum(succeeded.values())
