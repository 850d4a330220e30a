"""One request per declared rule condition that makes the rule find exactly that condition.

`TRIGGERS` maps (rule code, condition name) to a function that builds the request, given a
fresh `PaymentAudit` whose state it may prepare first (captures need a known payment, rate
limits earlier calls). The evidence tests check the table against the rules' declarations in
both directions, so a condition cannot be declared without a way to reach it, nor found without
being declared.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from policies.audit.payment_audit import PaymentAudit
from policies.audit.ratelimit import RATE_LIMIT_RULE
from policies.core.model import AuditedRequest, audited_request
from tests.samples import (
    BEARER,
    CHECKOUT_SESSION,
    ECOM_CAPTURE,
    ECOM_INITIATE,
    EPAYMENT_CAPTURE,
    EPAYMENT_CREATE,
    EPAYMENT_CREATE_PLAIN,
    EPAYMENT_GET,
    EPAYMENT_REFUND,
    RECURRING_CHARGE,
    Sample,
)

DELETE = object()
Trigger = Callable[[PaymentAudit], AuditedRequest]


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def changed(body: Any, *edits: tuple[tuple[str | int, ...], Any]) -> Any:
    """A deep copy of `body` with each path set to its value (or removed, for DELETE)."""
    out = copy.deepcopy(body)
    for at, value in edits:
        node: Any = out
        for step in at[:-1]:
            node = node[step]
        if value is DELETE:
            del node[at[-1]]
        else:
            node[at[-1]] = value
    return out


def build(
    sample: Sample,
    *edits: tuple[tuple[str | int, ...], Any],
    headers: dict[str, str | None] | None = None,
    raw: bytes | None = None,
    path: str | None = None,
    pairs: Iterable[tuple[str, str]] = (),
) -> AuditedRequest:
    """The sample as a request, with body edits, header changes (None removes) or raw bytes."""
    sent = dict(sample.headers)
    for name, value in (headers or {}).items():
        sent = {k: v for k, v in sent.items() if k.lower() != name.lower()}
        if value is not None:
            sent[name] = value
    body = raw if raw is not None else orjson.dumps(changed(sample.json, *edits))
    return audited_request(
        sample.method, path or sample.path, [*sent.items(), *pairs], body if sample.json else b""
    )


def answered(audit: PaymentAudit, request: AuditedRequest, status: int | None, answer: Any) -> None:
    """Let the payment audit see a request forwarded and Vipps' answer to it."""
    audit.record_forwarded(request)
    audit.observe(request, status, answer)


def aggregate(captured: int) -> dict[str, Any]:
    """An ePayment GET answer with the payment's own figures."""
    amount = {"currency": "NOK"}
    return {
        "aggregate": {
            "authorizedAmount": {**amount, "value": 49900},
            "capturedAmount": {**amount, "value": captured},
            "refundedAmount": {**amount, "value": 0},
            "cancelledAmount": {**amount, "value": 0},
        }
    }


def created(audit: PaymentAudit) -> None:
    """The sample payment (49900 NOK, reference order-123456) was created through the proxy."""
    answered(audit, build(EPAYMENT_CREATE_PLAIN), 201, {"reference": "order-123456"})


def after_created(audit: PaymentAudit, request: AuditedRequest) -> AuditedRequest:
    """`request`, once the sample payment was created through the proxy."""
    created(audit)
    return request


def capture(value: int, key: str, currency: str = "NOK") -> AuditedRequest:
    return build(
        EPAYMENT_CAPTURE,
        (("modificationAmount",), {"currency": currency, "value": value}),
        headers={"Idempotency-Key": key},
    )


def _pending_capture(audit: PaymentAudit) -> AuditedRequest:
    created(audit)
    answered(audit, capture(40000, "idem-lost"), None, None)
    return capture(20000, "idem-next")


def _refund_over(audit: PaymentAudit, *, pending: bool) -> AuditedRequest:
    created(audit)
    answered(audit, build(EPAYMENT_GET), 200, aggregate(10000))
    if pending:
        answered(audit, capture(5000, "idem-lost"), None, None)
    value = 12000 if pending else 20000
    return build(EPAYMENT_REFUND, (("modificationAmount", "value"), value))


def _reused_key(audit: PaymentAudit) -> AuditedRequest:
    answered(audit, capture(20000, "idem-same"), 200, None)
    return capture(30000, "idem-same")


def _over_rate(audit: PaymentAudit) -> AuditedRequest:
    for n in range(5):
        audit.record_forwarded(capture(100, f"idem-{n}"))
    return capture(100, "idem-6")


def _after_429(audit: PaymentAudit) -> AuditedRequest:
    audit.record_forwarded(capture(100, "idem-1"))
    audit.observe(capture(100, "idem-1"), 429, None, retry_after="30")
    return capture(100, "idem-2")


def _early_poll(audit: PaymentAudit) -> AuditedRequest:
    created(audit)
    return build(EPAYMENT_GET)


OM_RECEIPT = Sample(
    "POST",
    "/order-management/v2/ecom/receipts/order-123456",
    BEARER,
    {
        "orderLines": [{"name": "Socks", "id": "sku-1", "totalAmount": 49900}],
        "bottomLine": {"currency": "NOK"},
    },
)
DRAFT_AGREEMENT = Sample(
    "POST",
    "/recurring/v3/agreements",
    {**BEARER, "Idempotency-Key": "idem-agreement-1"},
    {
        "pricing": {"type": "VARIABLE", "suggestedMaxAmount": 300000, "currency": "NOK"},
        "interval": {"unit": "MONTH", "count": 1},
        "merchantRedirectUrl": "https://shop.example.com/agreement",
        "merchantAgreementUrl": "https://shop.example.com/agreement/terms",
        "phoneNumber": "4791234567",
        "productName": "Socks every month",
    },
)
PARTNER_TOKEN = Sample("POST", "/miami/v1/token", {}, None)
_TOO_LONG = "shop.example-with-a-long-domain.com"  # 35 characters, like a shop's domain

_MERCHANT = ("merchantInfo",)
_CALLBACK_PREFIX = ("merchantInfo", "callbackPrefix")
_PHONE = ("customer", "phoneNumber")
_CREATE_VALUE = ("amount", "value")
_CREATE_CURRENCY = ("amount", "currency")
_CAPTURE_VALUE = ("modificationAmount", "value")

TRIGGERS: dict[tuple[str, str], Trigger] = {
    ("body.invalid_json", "invalid_json"): lambda _: build(EPAYMENT_CAPTURE, raw=b'{"a":'),
    ("body.duplicate_key", "duplicate_key"): lambda _: build(
        EPAYMENT_CAPTURE, raw=b'{"modificationAmount":{"currency":"NOK","value":1,"value":2}}'
    ),
    ("body.not_object", "not_object"): lambda _: build(ECOM_INITIATE, raw=b"[]"),
    ("body.field_case", "ecom"): lambda _: build(
        ECOM_INITIATE,
        ((*_MERCHANT, "fallBack"), DELETE),
        ((*_MERCHANT, "fallback"), "https://shop.example.com/back"),
    ),
    ("body.field_case", "other_api"): lambda _: build(
        EPAYMENT_CREATE, (("Reference",), "order-123456")
    ),
    ("body.missing_field", "epayment"): lambda _: build(
        EPAYMENT_CAPTURE, (("modificationAmount",), DELETE)
    ),
    ("body.missing_field", "checkout"): lambda _: build(
        CHECKOUT_SESSION, (("transaction", "reference"), DELETE)
    ),
    ("body.missing_field", "recurring"): lambda _: build(
        RECURRING_CHARGE, (("description",), DELETE)
    ),
    ("body.missing_field", "ecom"): lambda _: build(ECOM_INITIATE, (("transaction",), DELETE)),
    ("body.missing_field", "other_api"): lambda _: build(OM_RECEIPT, (("bottomLine",), DELETE)),
    ("amount.not_integer", "fraction"): lambda _: build(
        EPAYMENT_CAPTURE, raw=b'{"modificationAmount":{"currency":"NOK","value":20000.0000001}}'
    ),
    ("amount.not_integer", "integral_float"): lambda _: build(
        EPAYMENT_CAPTURE, raw=b'{"modificationAmount":{"currency":"NOK","value":20000.0}}'
    ),
    ("amount.not_integer", "not_a_number"): lambda _: build(
        EPAYMENT_CAPTURE, (_CAPTURE_VALUE, "20000")
    ),
    ("amount.not_integer", "out_of_range"): lambda _: build(
        EPAYMENT_CAPTURE,
        raw=b'{"modificationAmount":{"currency":"NOK","value":100000000000000000000}}',
    ),
    ("amount.limits", "minimum"): lambda _: build(EPAYMENT_CREATE, (_CREATE_VALUE, 99)),
    ("amount.limits", "negative"): lambda _: build(EPAYMENT_CAPTURE, (_CAPTURE_VALUE, -5)),
    ("amount.limits", "maximum"): lambda _: build(EPAYMENT_CREATE, (_CREATE_VALUE, 65_000_001)),
    ("amount.limits", "int32"): lambda _: build(RECURRING_CHARGE, (("amount",), 2**31)),
    ("amount.limits", "maximum_other_currency"): lambda _: build(
        DRAFT_AGREEMENT,
        (("pricing", "suggestedMaxAmount"), 3_000_000),
        (("pricing", "currency"), "DKK"),
    ),
    ("amount.currency", "card_passthrough_only"): lambda _: build(
        EPAYMENT_CREATE, (_CREATE_CURRENCY, "SEK")
    ),
    ("amount.currency", "unsupported"): lambda _: build(EPAYMENT_CREATE, (_CREATE_CURRENCY, "XYZ")),
    ("amount.currency", "malformed"): lambda _: build(EPAYMENT_CREATE, (_CREATE_CURRENCY, "nok")),
    ("amount.currency", "undocumented"): lambda _: build(
        CHECKOUT_SESSION, (("transaction", "amount", "currency"), "USD")
    ),
    ("amount.bounds", "house_range"): lambda _: build(EPAYMENT_CREATE, (_CREATE_VALUE, 500)),
    ("phone.format", "notation"): lambda _: build(EPAYMENT_CREATE, (_PHONE, "+47 912 34 567")),
    ("phone.format", "unreadable"): lambda _: build(EPAYMENT_CREATE, (_PHONE, "abc")),
    ("phone.format", "foreign"): lambda _: build(
        ECOM_INITIATE, (("customerInfo", "mobileNumber"), "+45 20 12 34 56")
    ),
    ("phone.format", "ambiguous"): lambda _: build(EPAYMENT_CREATE, (_PHONE, "47234567")),
    ("phone.format", "recurring"): lambda _: build(DRAFT_AGREEMENT, (("phoneNumber",), "12")),
    ("phone.format", "empty"): lambda _: build(EPAYMENT_CREATE, (_PHONE, "")),
    ("phone.format", "prefill"): lambda _: build(
        CHECKOUT_SESSION, (("prefillCustomer",), {"phoneNumber": "abc"})
    ),
    ("phone.unrecognised", "unallocated"): lambda _: build(EPAYMENT_CREATE, (_PHONE, "4712345678")),
    ("header.missing", "authorization"): lambda _: build(
        EPAYMENT_CAPTURE, headers={"Authorization": None}
    ),
    ("header.missing", "subscription_key"): lambda _: build(
        EPAYMENT_CAPTURE, headers={"Ocp-Apim-Subscription-Key": None}
    ),
    ("header.missing", "merchant_serial_number"): lambda _: build(
        EPAYMENT_CAPTURE, headers={"Merchant-Serial-Number": None}
    ),
    ("header.missing", "epayment_idempotency_key"): lambda _: build(
        EPAYMENT_CAPTURE, headers={"Idempotency-Key": None}
    ),
    ("header.missing", "recurring_idempotency_key"): lambda _: build(
        RECURRING_CHARGE, headers={"Idempotency-Key": None}
    ),
    ("header.missing", "ecom_request_id"): lambda _: build(
        ECOM_CAPTURE, headers={"X-Request-Id": None}
    ),
    ("header.missing", "client_credentials"): lambda _: build(
        CHECKOUT_SESSION, headers={"client_id": None}
    ),
    ("header.missing", "partner_credentials"): lambda _: build(PARTNER_TOKEN),
    ("header.format", "authorization_scheme"): lambda _: build(
        EPAYMENT_CAPTURE, headers={"Authorization": "bearer abc.def.ghi"}
    ),
    ("header.format", "bare_token"): lambda _: build(
        EPAYMENT_CAPTURE, headers={"Authorization": "abc.def.ghi"}
    ),
    ("header.format", "merchant_serial_number"): lambda _: build(
        EPAYMENT_CAPTURE, headers={"Merchant-Serial-Number": "12"}
    ),
    ("header.format", "epayment_idempotency_key"): lambda _: build(
        EPAYMENT_CAPTURE, headers={"Idempotency-Key": "k" * 51}
    ),
    ("header.format", "recurring_idempotency_key"): lambda _: build(
        RECURRING_CHARGE, headers={"Idempotency-Key": "charge/1"}
    ),
    ("header.format", "ecom_request_id"): lambda _: build(
        ECOM_CAPTURE, headers={"X-Request-Id": "r" * 41}
    ),
    ("header.format", "system_header_length"): lambda _: build(
        EPAYMENT_CAPTURE, headers={"Vipps-System-Name": f"https://{_TOO_LONG}"}
    ),
    ("header.repeated", "repeated"): lambda _: build(
        EPAYMENT_CAPTURE, pairs=[("merchant-serial-number", "654321")]
    ),
    ("header.system_missing", "advice"): lambda _: build(
        EPAYMENT_CAPTURE, headers={"Vipps-System-Name": None}
    ),
    ("reference.format", "epayment"): lambda _: build(EPAYMENT_CREATE, (("reference",), "short")),
    ("reference.format", "checkout"): lambda _: build(
        CHECKOUT_SESSION, (("transaction", "reference"), "abc")
    ),
    ("reference.format", "ecom"): lambda _: build(
        ECOM_INITIATE, (("transaction", "orderId"), "order 1")
    ),
    ("reference.format", "recurring"): lambda _: build(RECURRING_CHARGE, (("orderId",), "_x")),
    ("reference.format", "order_management"): lambda _: build(
        OM_RECEIPT, path="/order-management/v2/ecom/receipts/order%201"
    ),
    ("reference.format", "empty_optional"): lambda _: build(RECURRING_CHARGE, (("orderId",), "")),
    ("reference.mismatch", "echoed_id"): lambda _: build(
        EPAYMENT_CAPTURE, (("reference",), "order-654321")
    ),
    ("url.not_https", "scheme"): lambda _: build(
        ECOM_INITIATE, (_CALLBACK_PREFIX, "http://shop.example.com/cb")
    ),
    ("url.not_https", "not_a_url"): lambda _: build(ECOM_INITIATE, (_CALLBACK_PREFIX, "not a url")),
    ("url.localhost", "localhost"): lambda _: build(
        ECOM_INITIATE, (_CALLBACK_PREFIX, "https://localhost/cb")
    ),
    ("url.localhost", "unreachable"): lambda _: build(
        CHECKOUT_SESSION, (("merchantInfo", "callbackUrl"), "https://localhost/cb")
    ),
    ("express.explicit_flow", "advice"): lambda _: build(
        ECOM_INITIATE, ((*_MERCHANT, "paymentType"), "eComm Express Payment")
    ),
    ("ledger.capture_exceeds_reserved", "exceeds"): lambda audit: after_created(
        audit, capture(60000, "idem-big")
    ),
    ("ledger.capture_exceeds_reserved", "pending_may_exceed"): _pending_capture,
    ("ledger.refund_exceeds_captured", "exceeds"): lambda audit: _refund_over(audit, pending=False),
    ("ledger.refund_exceeds_captured", "pending_may_exceed"): lambda audit: _refund_over(
        audit, pending=True
    ),
    ("ledger.currency_mismatch", "other_currency"): lambda audit: after_created(
        audit, capture(20000, "idem-dkk", "DKK")
    ),
    ("idempotency.key_reused", "different_body"): _reused_key,
    (RATE_LIMIT_RULE, "over_limit"): _over_rate,
    (RATE_LIMIT_RULE, "retry_after"): _after_429,
    ("polling.too_frequent", "too_soon"): _early_poll,
}
