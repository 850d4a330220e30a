"""URL rules: schemes each API accepts, parseable absolute URLs, and localhost."""

from __future__ import annotations

import json
from typing import Any

import pytest

from policies.catalogue.operations import OPERATIONS, find
from policies.catalogue.url_fields import URL_FIELDS
from policies.core.engine import PolicyEngine
from policies.core.model import AuditedRequest, Finding, Outcome, Source, audited_request
from policies.rules.urls import CallbackIsHttps, LocalhostUrl, parse_url

PATH_VALUES = {
    "agreementId": "agr_5kSeqz",
    "paymentType": "ECOM",
    "orderId": "order-1",
    "transactionId": "5001",
}

# One valid body per operation that carries URLs.
BODIES: dict[str, dict[str, Any]] = {
    "epayment.create_payment": {
        "amount": {"currency": "NOK", "value": 49900},
        "paymentMethod": {"type": "WALLET"},
        "reference": "acme-shop-123-order123abc",
        "userFlow": "WEB_REDIRECT",
        "returnUrl": "https://example.com/return?ref=acme-shop-123",
        "receiptUrl": "https://example.com/receipt/9876543210",
        "shipping": {"dynamicOptions": {"callbackUrl": "https://example.com/shipping"}},
        "cardPassthrough": {
            "pspReference": "psp-1",
            "cardCallbackUrl": "https://psp.example/card",
            "allowedCardTypes": [],
        },
    },
    "ecom.initiate_payment": {
        "customerInfo": {},
        "merchantInfo": {
            "merchantSerialNumber": "123456",
            "callbackPrefix": "https://example.com/vipps/callbacks",
            "fallBack": "https://example.com/vipps/fallback/order-1",
            "consentRemovalPrefix": "https://example.com/vipps/consent",
            "shippingDetailsPrefix": "https://example.com/vipps/shipping",
            "isApp": False,
        },
        "transaction": {"amount": 49900, "orderId": "order-1", "transactionText": "Socks"},
    },
    "recurring.draft_agreement": {
        "pricing": {"type": "LEGACY", "amount": 2500, "currency": "NOK"},
        "interval": {"unit": "MONTH", "count": 1},
        "merchantRedirectUrl": "https://example.com/redirect",
        "merchantAgreementUrl": "https://example.com/agreement",
        "productName": "MyNews Digital",
    },
    "recurring.draft_agreement_v2": {
        "merchantRedirectUrl": "https://example.com/redirect",
        "merchantAgreementUrl": "https://example.com/agreement",
    },
    "recurring.update_agreement": {"merchantAgreementUrl": "https://example.com/agreement"},
    "recurring.update_agreement_v2": {"merchantAgreementUrl": "https://example.com/agreement"},
    "recurring.patch_agreement_v2": {"merchantAgreementUrl": "https://example.com/agreement"},
    "checkout.create_session": {
        "merchantInfo": {
            "callbackUrl": "https://example.com/vipps/payment-callback",
            "returnUrl": "https://example.com/vipps",
            "callbackAuthorizationToken": "token",
            "termsAndConditionsUrl": "https://example.com/terms",
        },
        "transaction": {"reference": "acme-shop-123", "amount": {"currency": "NOK", "value": 100}},
        "logistics": {"dynamicOptionsCallback": "https://example.com/vipps/logistics"},
    },
    "checkout.create_session_v2": {
        "merchantInfo": {
            "callbackPrefix": "https://example.com/vipps/callbacks",
            "returnUrl": "https://example.com/vipps",
            "callbackAuthorizationToken": "token",
        },
    },
    "webhooks.register_webhook": {
        "url": "https://example.com/webhook-callback",
        "events": ["epayments.payment.captured.v1"],
    },
    "order_management.set_category": {
        "category": "GENERAL",
        "orderDetailsUrl": "https://example.com",
    },
    "order_management.put_order_v1": {
        "category": "GENERAL",
        "orderDetailsUrl": "https://example.com",
    },
    "order_management.create_category": {
        "orderId": "order-1",
        "paymentType": "ECOM",
        "type": "GENERAL",
        "url": "https://www.example.com",
    },
}


def build(key: str, body: Any) -> AuditedRequest:
    """A request for `api.name` carrying `body` as JSON."""
    operation = find(*key.split("."))
    path = operation.template
    for name in operation.params:
        path = path.replace("{" + name + "}", PATH_VALUES[name])
    return audited_request(operation.method, path, [], json.dumps(body).encode())


def with_field(key: str, dotted: str, value: Any) -> dict[str, Any]:
    """The valid body of `key` with one field set."""
    body: dict[str, Any] = json.loads(json.dumps(BODIES[key]))
    *parents, last = dotted.split(".")
    node = body
    for step in parents:
        node = node.setdefault(step, {})
    node[last] = value
    return body


def check(rule: CallbackIsHttps | LocalhostUrl, req: AuditedRequest) -> list[Finding]:
    return list(rule.check(req)) if rule.applies_to(req.operation) else []


HTTPS = CallbackIsHttps()
LOCAL = LocalhostUrl()


def test_every_operation_with_urls_has_a_valid_body() -> None:
    """The test bodies cover every operation of the URL table; the rules run exactly there."""
    assert set(BODIES) == set(URL_FIELDS)
    for rule in (HTTPS, LOCAL):
        assert {op.key for op in OPERATIONS if rule.applies_to(op)} == set(BODIES)


@pytest.mark.parametrize("key", [pytest.param(k, id=k) for k in sorted(BODIES)])
def test_valid_body_passes(key: str) -> None:
    """The valid body of each operation gives no finding from either URL rule."""
    req = build(key, BODIES[key])
    assert check(HTTPS, req) == []
    assert check(LOCAL, req) == []


SCHEME_CASES = [
    # (operation, field, value, flagged)
    ("epayment.create_payment", "returnUrl", "http://example.com/return", True),
    ("epayment.create_payment", "returnUrl", "myapp://payment-done", False),
    ("epayment.create_payment", "returnUrl", "HTTPS://EXAMPLE.COM/return", False),
    ("epayment.create_payment", "returnUrl", "/return", True),
    ("epayment.create_payment", "returnUrl", "example.com/return", True),
    ("epayment.create_payment", "returnUrl", "localhost:3000/return", True),
    ("epayment.create_payment", "returnUrl", "https://", True),
    ("epayment.create_payment", "returnUrl", "https:example.com", True),
    ("epayment.create_payment", "returnUrl", "https://exa mple.com/x", True),
    ("epayment.create_payment", "returnUrl", "https://example.com:99999/x", True),
    ("epayment.create_payment", "returnUrl", "https://bøtte.no/retur", False),
    ("epayment.create_payment", "receiptUrl", "myapp://receipt", False),
    ("epayment.create_payment", "receiptUrl", "http://example.com/receipt", True),
    (
        "epayment.create_payment",
        "shipping.dynamicOptions.callbackUrl",
        "http://example.com/s",
        True,
    ),
    ("epayment.create_payment", "shipping.dynamicOptions.callbackUrl", "myapp://shipping", True),
    ("epayment.create_payment", "cardPassthrough.cardCallbackUrl", "http://psp.example/c", True),
    ("ecom.initiate_payment", "merchantInfo.callbackPrefix", "http://example.com/cb", True),
    ("ecom.initiate_payment", "merchantInfo.callbackPrefix", "myapp://cb", True),
    ("ecom.initiate_payment", "merchantInfo.fallBack", "myapp://fallback", False),
    ("ecom.initiate_payment", "merchantInfo.fallBack", "http://example.com/fallback", True),
    ("ecom.initiate_payment", "merchantInfo.fallBack", "http://127.0.0.1:8080/fallback", False),
    ("ecom.initiate_payment", "merchantInfo.consentRemovalPrefix", "http://example.com/c", True),
    ("ecom.initiate_payment", "merchantInfo.shippingDetailsPrefix", "myapp://s", True),
    ("recurring.draft_agreement", "merchantRedirectUrl", "myApp://home", False),
    ("recurring.draft_agreement", "merchantRedirectUrl", "http://example.com/r", True),
    ("recurring.draft_agreement", "merchantAgreementUrl", "myApp://home", True),
    ("recurring.draft_agreement", "merchantAgreementUrl", "http://example.com/a", True),
    ("recurring.draft_agreement_v2", "merchantAgreementUrl", "http://example.com/a", False),
    ("recurring.draft_agreement_v2", "merchantAgreementUrl", "myApp://home", True),
    ("recurring.update_agreement", "merchantAgreementUrl", "http://example.com/a", True),
    ("recurring.patch_agreement_v2", "merchantAgreementUrl", "http://example.com/a", True),
    ("checkout.create_session", "merchantInfo.returnUrl", "myapp://checkout-done", False),
    ("checkout.create_session", "merchantInfo.returnUrl", "http://example.com/r", False),
    ("checkout.create_session", "merchantInfo.callbackUrl", "http://example.com/cb", False),
    ("checkout.create_session", "merchantInfo.callbackUrl", "myapp://cb", True),
    ("checkout.create_session", "merchantInfo.termsAndConditionsUrl", "myapp://terms", True),
    ("checkout.create_session", "logistics.dynamicOptionsCallback", "not a url", True),
    ("checkout.create_session_v2", "merchantInfo.callbackPrefix", "myapp://cb", True),
    ("webhooks.register_webhook", "url", "http://example.com/hook", True),
    ("order_management.set_category", "orderDetailsUrl", "http://example.com", False),
    ("order_management.create_category", "url", "www.example.com", True),
]


@pytest.mark.parametrize(
    ("key", "field", "value", "flagged"),
    [
        pytest.param(k, f, v, b, id=f"{k}-{f}-{'bad' if b else 'ok'}-{v}")
        for k, f, v, b in SCHEME_CASES
    ],
)
def test_url_scheme(key: str, field: str, value: str, flagged: bool) -> None:
    """Each URL field accepts exactly the schemes its API documents, as an absolute URL."""
    got = check(HTTPS, build(key, with_field(key, field, value)))
    assert [(f.source, f.field) for f in got] == ([(Source.BODY, field)] if flagged else [])


@pytest.mark.parametrize(
    ("key", "field", "value", "flagged"),
    [
        pytest.param("epayment.create_payment", "receiptUrl", None, False, id="optional-null"),
        pytest.param("epayment.create_payment", "returnUrl", "", False, id="optional-empty"),
        pytest.param(
            "ecom.initiate_payment",
            "merchantInfo.consentRemovalPrefix",
            None,
            False,
            id="ecom-null",
        ),
        pytest.param(
            "checkout.create_session",
            "merchantInfo.termsAndConditionsUrl",
            None,
            False,
            id="terms-null",
        ),
        pytest.param(
            "ecom.initiate_payment", "merchantInfo.callbackPrefix", "", True, id="required-empty"
        ),
        pytest.param("webhooks.register_webhook", "url", "  ", True, id="required-blank"),
        pytest.param("epayment.create_payment", "returnUrl", 42, True, id="number"),
        pytest.param(
            "recurring.draft_agreement", "merchantRedirectUrl", {"url": "x"}, True, id="object"
        ),
    ],
)
def test_null_empty_and_non_string_values(key: str, field: str, value: Any, flagged: bool) -> None:
    """Null never blocks, "" only in a required field, and a non-string is never a URL."""
    got = check(HTTPS, build(key, with_field(key, field, value)))
    assert [f.field for f in got] == ([field] if flagged else [])


def test_problem_says_when_the_value_is_not_an_absolute_url() -> None:
    """A relative URL's finding says it is not an absolute URL."""
    (got,) = check(
        HTTPS,
        build("webhooks.register_webhook", with_field("webhooks.register_webhook", "url", "/hook")),
    )
    assert got.problem.startswith("is not an absolute URL")
    assert got.expected == "an https:// URL"
    assert got.value == "'/hook'"


@pytest.mark.parametrize(
    "is_app",
    [pytest.param(True, id="boolean"), pytest.param("true", id="string")],
)
def test_ecom_is_app_turns_url_validation_off(is_app: object) -> None:
    """With eCom merchantInfo.isApp true, URLs are not validated as regular URLs."""
    body = with_field("ecom.initiate_payment", "merchantInfo.isApp", is_app)
    body["merchantInfo"].update(
        {
            "fallBack": "vipps-app://done",
            "callbackPrefix": "myapp://cb",
            "consentRemovalPrefix": "http://localhost/c",
        }
    )
    req = build("ecom.initiate_payment", body)
    assert check(HTTPS, req) == []
    assert check(LOCAL, req) == []


def test_ecom_is_app_false_still_validates() -> None:
    """isApp false (or absent) leaves eCom URL validation on."""
    body = with_field("ecom.initiate_payment", "merchantInfo.callbackPrefix", "myapp://cb")
    assert len(check(HTTPS, build("ecom.initiate_payment", body))) == 1
    del body["merchantInfo"]["isApp"]
    assert len(check(HTTPS, build("ecom.initiate_payment", body))) == 1


def test_recurring_is_app_turns_url_validation_off() -> None:
    """A Recurring draft with isApp true is not held to the URL rules either."""
    body = with_field("recurring.draft_agreement", "merchantAgreementUrl", "myapp://agreement")
    body["isApp"] = True
    assert check(HTTPS, build("recurring.draft_agreement", body)) == []


LOCALHOST_CASES = [
    # (operation, field, value, expected: None | "block" | "advice")
    ("ecom.initiate_payment", "merchantInfo.callbackPrefix", "https://localhost/cb", "block"),
    ("ecom.initiate_payment", "merchantInfo.fallBack", "http://localhost:8080/done", "block"),
    ("ecom.initiate_payment", "merchantInfo.fallBack", "http://127.0.0.1:8080/done", None),
    ("ecom.initiate_payment", "merchantInfo.callbackPrefix", "https://127.0.0.1/cb", "advice"),
    (
        "ecom.initiate_payment",
        "merchantInfo.shippingDetailsPrefix",
        "https://app.localhost/s",
        "block",
    ),
    (
        "epayment.create_payment",
        "shipping.dynamicOptions.callbackUrl",
        "https://LOCALHOST./s",
        "block",
    ),
    ("epayment.create_payment", "cardPassthrough.cardCallbackUrl", "https://localhost/c", "advice"),
    ("epayment.create_payment", "cardPassthrough.cardCallbackUrl", "https://[::1]/c", "advice"),
    ("epayment.create_payment", "returnUrl", "https://localhost:3000/return", "advice"),
    ("epayment.create_payment", "returnUrl", "https://127.0.0.1:3000/return", None),
    ("epayment.create_payment", "returnUrl", "myapp://localhost/return", None),
    ("webhooks.register_webhook", "url", "https://localhost/hook", "block"),
    ("webhooks.register_webhook", "url", "https://0.0.0.0/hook", "advice"),
    ("checkout.create_session", "merchantInfo.callbackUrl", "http://localhost/cb", "advice"),
    ("checkout.create_session", "merchantInfo.returnUrl", "http://localhost:3000/", "advice"),
    ("recurring.draft_agreement", "merchantRedirectUrl", "https://localhost/r", "advice"),
    ("order_management.set_category", "orderDetailsUrl", "https://localhostel.no/", None),
]


@pytest.mark.parametrize(
    ("key", "field", "value", "expected"),
    [pytest.param(k, f, v, e, id=f"{k}-{f}-{e or 'ok'}-{v}") for k, f, v, e in LOCALHOST_CASES],
)
def test_localhost(key: str, field: str, value: str, expected: str | None) -> None:
    """localhost blocks where Vipps' URL validation rejects it; elsewhere it, and loopback
    callbacks, are advice."""
    got = check(LOCAL, build(key, with_field(key, field, value)))
    if expected is None:
        assert got == []
    else:
        (finding,) = got
        assert finding.field == field
        assert finding.advisory is (expected == "advice")


def test_fallback_on_localhost_is_a_localhost_finding_only() -> None:
    """http://localhost as eCom fallBack is rejected for being localhost, not for being http."""
    req = build(
        "ecom.initiate_payment",
        with_field("ecom.initiate_payment", "merchantInfo.fallBack", "http://localhost/done"),
    )
    assert check(HTTPS, req) == []
    (got,) = check(LOCAL, req)
    assert got.expected == "a public host name (http://127.0.0.1 works for a local test)"


def test_custom_scheme_allowed_only_where_documented() -> None:
    """An app URL passes in every field documented to take one and fails in every other field."""
    allowed = {
        ("epayment.create_payment", "returnUrl"),
        ("epayment.create_payment", "receiptUrl"),
        ("ecom.initiate_payment", "merchantInfo.fallBack"),
        ("recurring.draft_agreement", "merchantRedirectUrl"),
        ("recurring.draft_agreement_v2", "merchantRedirectUrl"),
        ("checkout.create_session", "merchantInfo.returnUrl"),
        ("checkout.create_session_v2", "merchantInfo.returnUrl"),
    }
    for key, spec in URL_FIELDS.items():
        for url_field in spec.fields:
            dotted = ".".join(str(step) for step in url_field.path)
            got = check(HTTPS, build(key, with_field(key, dotted, "myapp://somewhere")))
            assert bool(got) is ((key, dotted) not in allowed), (key, dotted)


def test_path_case_still_identifies_and_checks() -> None:
    """`/ECOMM/V2/Payments` is still eCom initiate, and its URLs are checked."""
    body = with_field(
        "ecom.initiate_payment", "merchantInfo.callbackPrefix", "http://example.com/cb"
    )
    req = audited_request("POST", "/ECOMM/V2/Payments", [], json.dumps(body).encode())
    assert req.operation.key == "ecom.initiate_payment"
    assert [f.field for f in check(HTTPS, req)] == ["merchantInfo.callbackPrefix"]


def test_long_urls_are_truncated() -> None:
    """A long URL is shown truncated to about 60 characters."""
    url = "http://example.com/" + "x" * 500
    (got,) = check(
        HTTPS,
        build("webhooks.register_webhook", with_field("webhooks.register_webhook", "url", url)),
    )
    assert got.value is not None
    assert len(got.value) <= 62


def test_engine_blocks_rejections_and_reports_advice() -> None:
    """A documented rejection blocks; a loopback callback alone is only reported."""
    engine = PolicyEngine((HTTPS, LOCAL))
    rejected = build(
        "ecom.initiate_payment",
        with_field("ecom.initiate_payment", "merchantInfo.callbackPrefix", "https://localhost/cb"),
    )
    assert engine.evaluate(rejected).blocked
    advice = build(
        "webhooks.register_webhook",
        with_field("webhooks.register_webhook", "url", "https://127.0.0.1/hook"),
    )
    verdict = engine.evaluate(advice)
    assert not verdict.blocked
    assert [d.outcome for d in verdict.decisions] == [Outcome.REPORTED]


def test_unparseable_body_is_left_alone() -> None:
    """A body that is not JSON is another rule's business: no URL finding."""
    req = audited_request("POST", "/webhooks/v1/webhooks", [], b"{not json")
    assert check(HTTPS, req) == []
    assert check(LOCAL, req) == []


@pytest.mark.parametrize(
    ("url", "scheme", "host"),
    [
        pytest.param("https://Example.COM:8443/x", "https", "example.com", id="https-port"),
        pytest.param(" https://example.com ", "https", "example.com", id="surrounding-space"),
        pytest.param("https://[::1]:8080/", "https", "::1", id="ipv6"),
        pytest.param("myApp://home", "myapp", None, id="app"),
    ],
)
def test_parse_url(url: str, scheme: str, host: str | None) -> None:
    """parse_url gives the lower-cased scheme and, for web URLs, the host."""
    parsed = parse_url(url)
    assert (parsed.scheme, parsed.host, parsed.problem) == (scheme, host, None)


def test_rules_find_nothing_outside_their_operations() -> None:
    """Called on an operation without URL fields, or on a non-string URL, the rules stay silent."""
    get = audited_request("GET", "/epayment/v1/payments/acme-shop-123-order123abc", [])
    assert list(HTTPS.check(get)) == []
    assert list(LOCAL.check(get)) == []
    number = build(
        "epayment.create_payment", with_field("epayment.create_payment", "returnUrl", 42)
    )
    assert list(LOCAL.check(number)) == []
