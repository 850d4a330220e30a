"""Header rules: required headers, their format, and the Vipps-System-* advice."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping

import pytest

from policies.catalogue.header_fields import SYSTEM_HEADERS, required_headers
from policies.catalogue.operations import OPERATIONS, UNKNOWN, Operation, find
from policies.core.engine import PolicyEngine
from policies.core.model import AuditedRequest, Finding, Outcome, Source, audited_request
from policies.rules.headers import (
    HeaderFormat,
    RequiredHeaders,
    SystemHeaders,
    describe_credentials,
)

CANARY = "CANARY-7f3a9c21"
TOKEN = f"eyJhbGciOiJSUzI1NiJ9.{CANARY}.c2lnbmF0dXJl"
SUBSCRIPTION_KEY = f"{CANARY}0f14ebcab0eb4b29ae0cb90d91b4a84a"
CLIENT_ID = "fb492b5e-7907-4d83-bc20-c7fb60ca35de"
CLIENT_SECRET = f"{CANARY}Y8Kteew6GE3ZmeycEt6egg=="
BASIC = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()

SYSTEM = {
    "Vipps-System-Name": "acme",
    "Vipps-System-Version": "3.1.2",
    "Vipps-System-Plugin-Name": "acme-vipps",
    "Vipps-System-Plugin-Version": "1.4.0",
}
BEARER_SET = {
    "Authorization": f"Bearer {TOKEN}",
    "Ocp-Apim-Subscription-Key": SUBSCRIPTION_KEY,
    "Merchant-Serial-Number": "123456",
    "Idempotency-Key": "b8c2e0a4-4a5e-4a8e-9d52-5b0c2c0e7d11",
    "X-Request-Id": "kRk3uEeiogxLu1yGSZRlNgsIv3TuNS",
    **SYSTEM,
}
CLIENT_SET = {
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "Ocp-Apim-Subscription-Key": SUBSCRIPTION_KEY,
    "Merchant-Serial-Number": "123456",
    **SYSTEM,
}

PARAMS = {
    "reference": "acme-shop-123-order123abc",
    "orderId": "acme-shop-123-order123abc",
    "agreementId": "agr_5kSeqz",
    "chargeId": "chr-4assY8f",
    "paymentType": "ECOM",
    "categoryId": "6d4a3b9e-0d3f-4c39-8f3e-1c2b3a4d5e6f",
    "transactionId": "5001419121",
    "id": "6d4a3b9e-0d3f-4c39-8f3e-1c2b3a4d5e6f",
    "ledgerId": "302321",
    "topic": "funds",
    "ledgerDate": "2024-01-31",
    "sessionId": "6d4a3b9e0d3f4c398f3e1c2b3a4d5e6f",
}

RULES = (RequiredHeaders(), HeaderFormat(), SystemHeaders())


def path_of(operation: Operation) -> str:
    """The operation's template with every parameter filled in."""
    path = operation.template
    for name in operation.params:
        path = path.replace("{" + name + "}", PARAMS[name])
    return path


def complete_headers(operation: Operation) -> dict[str, str]:
    """A complete, valid header set for the operation (extra headers are harmless)."""
    if operation.key == "access_token.fetch_partner_token":
        return {"Authorization": BASIC, **SYSTEM}
    if operation.api in ("access_token", "checkout"):
        return dict(CLIENT_SET)
    if operation.api == "login":
        return dict(SYSTEM)
    return dict(BEARER_SET)


def request(
    key: str,
    change: Mapping[str, str | None] | None = None,
    *,
    path: str | None = None,
    headers: Iterable[tuple[str, str]] | None = None,
) -> AuditedRequest:
    """A valid request for `api.name`, with headers set (a value) or removed (None)."""
    operation = find(*key.split("."))
    sent = complete_headers(operation)
    for name, value in (change or {}).items():
        if value is None:
            sent.pop(name, None)
        else:
            sent[name] = value
    pairs = list(headers) if headers is not None else list(sent.items())
    return audited_request(operation.method, path or path_of(operation), pairs)


def findings(
    rule: RequiredHeaders | HeaderFormat | SystemHeaders, req: AuditedRequest
) -> list[Finding]:
    assert req.operation is not UNKNOWN
    if not rule.applies_to(req.operation):
        return []
    return list(rule.check(req))


def blocking(req: AuditedRequest) -> list[Finding]:
    return [f for rule in RULES for f in findings(rule, req) if not f.advisory]


CATALOGUE = [pytest.param(op.key, id=op.key) for op in OPERATIONS]


@pytest.mark.parametrize("key", CATALOGUE)
def test_complete_header_set_passes_on_every_operation(key: str) -> None:
    """A complete, valid header set gives no finding from any header rule on any operation."""
    req = request(key)
    assert [f for rule in RULES for f in findings(rule, req)] == []


@pytest.mark.parametrize("key", CATALOGUE)
def test_each_required_header_missing_is_flagged(key: str) -> None:
    """Removing any header the operation requires gives exactly one header.missing finding."""
    operation = find(*key.split("."))
    for need in required_headers(operation):
        req = request(key, {need.header: None})
        got = findings(RequiredHeaders(), req)
        assert [(f.field, f.problem) for f in got] == [
            (need.header, "required header is missing")
        ], need.header
        assert got[0].source is Source.HEADER


# (operation, header removed, whether header.missing fires)
MISSING = [
    ("epayment.create_payment", "Authorization", True),
    ("epayment.create_payment", "Ocp-Apim-Subscription-Key", True),
    ("epayment.create_payment", "Merchant-Serial-Number", True),
    ("epayment.create_payment", "Idempotency-Key", True),
    ("epayment.capture_payment", "Idempotency-Key", True),
    ("epayment.refund_payment", "Idempotency-Key", True),
    ("epayment.cancel_payment", "Idempotency-Key", False),
    ("epayment.get_payment", "Idempotency-Key", False),
    ("epayment.get_payment", "Merchant-Serial-Number", True),
    ("epayment.force_approve", "Merchant-Serial-Number", True),
    ("ecom.initiate_payment", "Authorization", True),
    ("ecom.initiate_payment", "Ocp-Apim-Subscription-Key", True),
    ("ecom.initiate_payment", "Merchant-Serial-Number", False),
    ("ecom.initiate_payment", "X-Request-Id", False),
    ("ecom.capture_payment", "X-Request-Id", True),
    ("ecom.refund_payment", "X-Request-Id", True),
    ("ecom.cancel_payment", "X-Request-Id", False),
    ("ecom.force_approve", "X-Request-Id", False),
    ("recurring.draft_agreement", "Idempotency-Key", True),
    ("recurring.update_agreement", "Idempotency-Key", True),
    ("recurring.force_accept_agreement", "Idempotency-Key", True),
    ("recurring.create_charge", "Idempotency-Key", True),
    ("recurring.cancel_charge", "Idempotency-Key", True),
    ("recurring.capture_charge", "Idempotency-Key", True),
    ("recurring.refund_charge", "Idempotency-Key", True),
    ("recurring.get_agreement", "Idempotency-Key", False),
    ("recurring.create_charge_v2", "Idempotency-Key", False),
    ("recurring.create_charge", "Merchant-Serial-Number", False),
    ("recurring.list_agreements_v2", "Authorization", True),
    ("checkout.create_session", "client_id", True),
    ("checkout.create_session", "client_secret", True),
    ("checkout.get_session", "client_secret", True),
    ("checkout.create_session", "Ocp-Apim-Subscription-Key", False),
    ("checkout.create_session", "Merchant-Serial-Number", False),
    ("access_token.fetch_access_token", "client_id", True),
    ("access_token.fetch_access_token", "client_secret", True),
    ("access_token.fetch_access_token", "Ocp-Apim-Subscription-Key", True),
    ("access_token.fetch_access_token", "Merchant-Serial-Number", False),
    ("access_token.fetch_partner_token", "Authorization", True),
    ("order_management.add_receipt", "Authorization", True),
    ("order_management.add_receipt", "Ocp-Apim-Subscription-Key", True),
    ("order_management.add_receipt", "Merchant-Serial-Number", True),
    ("order_management.create_category", "Merchant-Serial-Number", True),
    ("webhooks.register_webhook", "Authorization", True),
    ("webhooks.register_webhook", "Ocp-Apim-Subscription-Key", False),
    ("webhooks.register_webhook", "Merchant-Serial-Number", False),
    ("report.list_ledgers", "Authorization", True),
    ("report.get_ledger_feed", "Authorization", True),
    ("report.get_ledger_feed", "Ocp-Apim-Subscription-Key", False),
    ("login.fetch_token", "Authorization", False),
]


@pytest.mark.parametrize(
    ("key", "header", "flagged"),
    [pytest.param(k, h, f, id=f"{k}-no-{h}") for k, h, f in MISSING],
)
def test_missing_header(key: str, header: str, flagged: bool) -> None:
    """A header is required exactly where the spec matrix (facts §2.2) requires it."""
    got = findings(RequiredHeaders(), request(key, {header: None}))
    assert [f.field for f in got] == ([header] if flagged else [])


def test_partner_token_accepts_client_headers_instead_of_basic() -> None:
    """/miami/v1/token takes client_id and client_secret headers as well as Basic authentication."""
    req = request(
        "access_token.fetch_partner_token",
        {"Authorization": None, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    )
    assert findings(RequiredHeaders(), req) == []
    half = request(
        "access_token.fetch_partner_token", {"Authorization": None, "client_id": CLIENT_ID}
    )
    assert [f.field for f in findings(RequiredHeaders(), half)] == ["Authorization"]


@pytest.mark.parametrize(
    ("key", "header"),
    [
        pytest.param("epayment.create_payment", "Idempotency-Key", id="epayment-idempotency"),
        pytest.param("epayment.get_payment", "Merchant-Serial-Number", id="epayment-msn"),
        pytest.param("ecom.capture_payment", "X-Request-Id", id="ecom-request-id"),
        pytest.param("checkout.create_session", "client_secret", id="checkout-secret"),
        pytest.param("recurring.create_charge", "Authorization", id="recurring-authorization"),
    ],
)
def test_empty_required_header_counts_as_missing(key: str, header: str) -> None:
    """An empty (or blank) value of a required header is reported as empty, once."""
    for empty in ("", "   "):
        got = findings(RequiredHeaders(), request(key, {header: empty}))
        assert [(f.field, f.problem) for f in got] == [(header, "required header is empty")]


@pytest.mark.parametrize(
    ("key", "header"),
    [
        pytest.param("ecom.initiate_payment", "Merchant-Serial-Number", id="ecom-msn"),
        pytest.param("checkout.create_session", "Ocp-Apim-Subscription-Key", id="checkout-key"),
        pytest.param("checkout.create_session", "Merchant-Serial-Number", id="checkout-msn"),
        pytest.param("webhooks.register_webhook", "Ocp-Apim-Subscription-Key", id="webhooks-key"),
        pytest.param("access_token.fetch_access_token", "Merchant-Serial-Number", id="token-msn"),
        pytest.param("recurring.create_charge_v2", "Idempotency-Key", id="recurring-v2-key"),
        pytest.param("ecom.force_approve", "X-Request-Id", id="ecom-approve-request-id"),
        pytest.param("epayment.cancel_payment", "Idempotency-Key", id="epayment-cancel-key"),
        pytest.param("epayment.create_payment", "Vipps-System-Name", id="system-name"),
        pytest.param("order_management.get_order", "Vipps-System-Plugin-Version", id="om-plugin"),
    ],
)
def test_empty_optional_header_is_never_blocked(key: str, header: str) -> None:
    """An optional header sent empty gives no blocking finding (Vipps ignores it)."""
    assert blocking(request(key, {header: ""})) == []


AUTHORIZATION_CASES = [
    pytest.param(f"bearer {TOKEN}", "scheme is 'bearer', not 'Bearer'", id="lower-case-bearer"),
    pytest.param(f"BEARER {TOKEN}", "scheme is 'BEARER'", id="upper-case-bearer"),
    pytest.param(TOKEN, "has no scheme", id="token-without-scheme"),
    pytest.param(f"Basic {TOKEN}", "does not use the Bearer scheme", id="basic-scheme"),
    pytest.param("Bearer", "no token", id="bearer-without-token"),
    pytest.param(f"Bearer Bearer {TOKEN}", "Bearer twice", id="bearer-twice"),
    pytest.param(f"Bearer {TOKEN} {TOKEN}", "whitespace inside", id="space-in-token"),
]


@pytest.mark.parametrize(("value", "problem"), AUTHORIZATION_CASES)
def test_authorization_must_be_bearer_exactly(value: str, problem: str) -> None:
    """Authorization on a token API must be `Bearer <token>` with Bearer written exactly so."""
    got = findings(HeaderFormat(), request("epayment.create_payment", {"Authorization": value}))
    assert len(got) == 1
    assert got[0].field == "Authorization"
    assert problem in got[0].problem


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(f"Bearer  {TOKEN}", id="two-spaces"),
        pytest.param(f"Bearer\t{TOKEN}", id="tab"),
        pytest.param(f" Bearer {TOKEN} ", id="surrounding-space"),
    ],
)
def test_authorization_whitespace_is_lenient(value: str) -> None:
    """Extra whitespace around or after the scheme is not a reason to block."""
    assert findings(HeaderFormat(), request("ecom.capture_payment", {"Authorization": value})) == []


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("checkout.create_session", id="checkout"),
        pytest.param("access_token.fetch_partner_token", id="partner-token"),
        pytest.param("login.fetch_token", id="login"),
    ],
)
def test_authorization_is_not_judged_where_no_bearer_token_is_used(key: str) -> None:
    """APIs that do not take an access token are not held to the Bearer format."""
    assert findings(HeaderFormat(), request(key, {"Authorization": f"bearer {TOKEN}"})) == []


FORMAT_CASES = [
    # (operation, header, value, flagged)
    ("epayment.create_payment", "Merchant-Serial-Number", "1234", False),
    ("epayment.create_payment", "Merchant-Serial-Number", "1234567890", False),
    ("epayment.create_payment", "Merchant-Serial-Number", "123", True),
    ("epayment.create_payment", "Merchant-Serial-Number", "12345678901", True),
    ("epayment.get_payment", "Merchant-Serial-Number", "12345a", True),
    ("access_token.fetch_access_token", "Merchant-Serial-Number", "MSN-1", True),
    ("ecom.initiate_payment", "Merchant-Serial-Number", "MSN-1", False),
    ("epayment.create_payment", "Idempotency-Key", "k" * 50, False),
    ("epayment.create_payment", "Idempotency-Key", "k" * 51, True),
    ("epayment.refund_payment", "Idempotency-Key", "k" * 51, True),
    ("epayment.cancel_payment", "Idempotency-Key", "k" * 51, False),
    ("recurring.create_charge", "Idempotency-Key", "k" * 40, False),
    ("recurring.create_charge", "Idempotency-Key", "k" * 41, True),
    ("recurring.update_agreement", "Idempotency-Key", "order#1", True),
    ("recurring.cancel_charge", "Idempotency-Key", "order?1", True),
    ("recurring.capture_charge", "Idempotency-Key", "order/1", True),
    ("recurring.refund_charge", "Idempotency-Key", "order\\1", True),
    ("recurring.create_charge_v2", "Idempotency-Key", "order/1", True),
    ("recurring.get_agreement", "Idempotency-Key", "order/1", False),
    ("ecom.capture_payment", "X-Request-Id", "r" * 40, False),
    ("ecom.capture_payment", "X-Request-Id", "r" * 41, True),
    ("ecom.refund_payment", "X-Request-Id", "r" * 41, True),
    ("ecom.force_approve", "X-Request-Id", "r" * 41, True),
    ("ecom.initiate_payment", "X-Request-Id", "r" * 41, False),
    ("epayment.create_payment", "Vipps-System-Name", "s" * 30, False),
    ("epayment.create_payment", "Vipps-System-Name", "s" * 31, True),
    ("login.authorize", "Vipps-System-Plugin-Version", "s" * 31, True),
    ("order_management.add_receipt", "Vipps-System-Version", "s" * 100, False),
    ("order_management.add_receipt", "Vipps-System-Version", "s" * 101, True),
]


@pytest.mark.parametrize(
    ("key", "header", "value", "flagged"),
    [
        pytest.param(k, h, v, f, id=f"{k}-{h}-{len(v)}-{'bad' if f else 'ok'}")
        for k, h, v, f in FORMAT_CASES
    ],
)
def test_header_format(key: str, header: str, value: str, flagged: bool) -> None:
    """MSN, idempotency keys, X-Request-Id and Vipps-System-* are held to their documented shape."""
    got = findings(HeaderFormat(), request(key, {header: value}))
    assert [f.field for f in got] == ([header] if flagged else [])


def test_recurring_key_with_two_forbidden_characters_names_both() -> None:
    """A Recurring Idempotency-Key with several forbidden characters names each once."""
    (got,) = findings(
        HeaderFormat(), request("recurring.create_charge", {"Idempotency-Key": "a/b#c/"})
    )
    assert got.problem == "contains '#' '/'"


def test_lower_case_header_names_are_accepted() -> None:
    """Header names are case-insensitive: an all-lower-case header set passes every rule."""
    for operation in OPERATIONS:
        pairs = [(name.lower(), value) for name, value in complete_headers(operation).items()]
        req = audited_request(operation.method, path_of(operation), pairs)
        assert [f for rule in RULES for f in findings(rule, req)] == [], operation.key


def test_path_case_is_ignored_when_identifying_the_operation() -> None:
    """`/Epayment/V1/Payments` is still ePayment create payment, and its headers are checked."""
    req = request(
        "epayment.create_payment", {"Idempotency-Key": None}, path="/Epayment/V1/Payments"
    )
    assert req.operation.key == "epayment.create_payment"
    assert [f.field for f in findings(RequiredHeaders(), req)] == ["Idempotency-Key"]
    bad = request(
        "epayment.capture_payment",
        {"Authorization": f"bearer {TOKEN}"},
        path="/EPAYMENT/v1/PAYMENTS/acme-shop-123-order123abc/Capture",
    )
    assert [f.field for f in findings(HeaderFormat(), bad)] == ["Authorization"]


def test_unknown_operations_are_left_alone() -> None:
    """No header rule applies to a path outside the catalogue."""
    req = audited_request("GET", "/somewhere/else", [])
    assert req.operation is UNKNOWN
    assert not any(rule.applies_to(req.operation) for rule in RULES)


def test_system_headers_missing_is_one_advisory_finding() -> None:
    """Missing Vipps-System-* headers give one advisory finding naming the missing ones."""
    req = request(
        "ecom.initiate_payment",
        {"Vipps-System-Plugin-Name": None, "Vipps-System-Plugin-Version": ""},
    )
    (got,) = findings(SystemHeaders(), req)
    assert got.advisory
    assert got.field == "Vipps-System-Plugin-Name, Vipps-System-Plugin-Version"
    none = request("ecom.initiate_payment", dict.fromkeys(SYSTEM_HEADERS))
    (all_four,) = findings(SystemHeaders(), none)
    assert all_four.field == ", ".join(SYSTEM_HEADERS)


def test_system_headers_advice_never_blocks() -> None:
    """The engine reports the Vipps-System-* advice even when the rule's action is block."""
    engine = PolicyEngine(RULES, actions={"header.system_missing": SystemHeaders.default_action})
    verdict = engine.evaluate(request("epayment.create_payment", dict.fromkeys(SYSTEM_HEADERS)))
    assert not verdict.blocked
    assert [d.outcome for d in verdict.decisions] == [Outcome.REPORTED]


def test_blocking_rules_block_in_the_engine() -> None:
    """A missing required header and a lower-case bearer block the request by default."""
    engine = PolicyEngine(RULES)
    req = request("epayment.create_payment", {"Idempotency-Key": None, "Authorization": "bearer x"})
    verdict = engine.evaluate(req)
    assert verdict.blocked
    assert verdict.rule_codes == ("header.missing", "header.format")


SECRET_MUTATIONS: list[dict[str, str | None]] = [
    {"Authorization": f"bearer {TOKEN}"},
    {"Authorization": TOKEN},
    {"Authorization": f"{CANARY} {TOKEN}"},
    {"Authorization": f"Basic {CLIENT_SECRET}"},
    {"Authorization": f"Bearer Bearer {TOKEN}"},
    {"Authorization": f"Bearer {TOKEN} {CANARY}"},
    {"Merchant-Serial-Number": SUBSCRIPTION_KEY},
    {"Merchant-Serial-Number": CANARY},
    {"client_secret": ""},
    {"Ocp-Apim-Subscription-Key": ""},
    {"Authorization": None, "Ocp-Apim-Subscription-Key": None},
]


def test_no_secret_ever_appears_in_a_finding() -> None:
    """No finding's value or message ever contains any part of a credential (the canary)."""
    seen = 0
    for operation in OPERATIONS:
        for mutation in SECRET_MUTATIONS:
            req = request(operation.key, mutation)
            for rule in RULES:
                for finding in findings(rule, req):
                    seen += 1
                    assert CANARY not in finding.message, (operation.key, mutation)
                    assert CANARY not in (finding.value or ""), (operation.key, mutation)
    assert seen > 100


@pytest.mark.parametrize(
    ("value", "described"),
    [
        pytest.param("bearer abc", "scheme 'bearer' and 3 more characters", id="known-scheme"),
        pytest.param("secret123 abc", "an unknown scheme and 3 more characters", id="unknown"),
        pytest.param("abcdef", "6 characters, no scheme", id="no-scheme"),
        pytest.param("Bearer", "scheme 'Bearer' and no token", id="scheme-only"),
    ],
)
def test_credentials_are_described_by_scheme_and_length_only(value: str, described: str) -> None:
    """An Authorization value is described without any character of what may be a secret."""
    assert describe_credentials(value) == described
