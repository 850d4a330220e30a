"""Vipps error shapes (rendering and reading) and the redaction of logged bodies."""

from __future__ import annotations

import pytest

from policies.catalogue.operations import UNKNOWN, find
from policies.core.errors import BLOCKED_TYPE, render_block, vipps_error_code, vipps_trace_id
from policies.core.jsonbody import JsonValue
from policies.core.model import Finding, Source
from policies.core.phone_mask import mask_phone
from policies.core.redaction import REDACTED, mask_text, redact_json, redact_query

FINDING = Finding(
    "amount.not_integer", Source.BODY, "amount.value", "is a fraction", "an integer", "1.5"
)


@pytest.mark.parametrize(
    ("api", "name", "content_type", "detail_key"),
    [
        ("epayment", "create_payment", "application/problem+json", "extraDetails"),
        ("webhooks", "register_webhook", "application/problem+json", "extraDetails"),
        ("recurring", "create_charge", "application/json;charset=UTF-8", "extraDetails"),
        ("checkout", "create_session", "application/json", "errors"),
        ("order_management", "add_receipt", "application/problem+json", "invalidParams"),
        ("report", "list_ledgers", "application/problem+json", "extraDetails"),
    ],
)
def test_block_is_rendered_in_the_apis_own_shape(
    api: str, name: str, content_type: str, detail_key: str
) -> None:
    """Each API's blocked response uses that API's error fields and content type."""
    doc = render_block(find(api, name), [FINDING], instance="/p", trace_id="t-1")
    assert doc.status == 400
    assert doc.content_type == content_type
    assert isinstance(doc.body, dict)
    assert doc.body["type"] == BLOCKED_TYPE
    assert doc.body[detail_key]
    assert "amount.value" in str(doc.body[detail_key])


def test_recurring_uses_field_and_text() -> None:
    """Recurring v3 names extraDetails items field/text, not name/reason."""
    doc = render_block(find("recurring", "create_charge"), [FINDING], instance="/p", trace_id="t")
    assert isinstance(doc.body, dict)
    assert doc.body["extraDetails"] == [
        {
            "field": "amount.value",
            "text": "[amount.not_integer] is a fraction (sent 1.5); expected an integer",
        }
    ]
    assert doc.body["contextId"] == "t"


def test_ecom_and_login_and_unknown_shapes() -> None:
    """eCom gets its error array, Login an OAuth error, anything else RFC 7807."""
    ecom = render_block(find("ecom", "initiate_payment"), [FINDING], instance="/p", trace_id="t")
    assert isinstance(ecom.body, list)
    assert ecom.body[0] == {
        "errorGroup": "InvalidRequest",
        "errorCode": "amount.value",
        "errorMessage": "[amount.not_integer] is a fraction (sent 1.5); expected an integer",
        "contextId": "t",
    }
    login = render_block(find("login", "fetch_token"), [FINDING], instance="/p", trace_id="t")
    assert isinstance(login.body, dict)
    assert login.body["error"] == "invalid_request"
    unknown = render_block(UNKNOWN, [FINDING], instance="/p", trace_id="t")
    assert unknown.content_type == "application/problem+json"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"extraDetails": [{"name": "ErrorCode", "reason": "6080"}]}, "6080"),
        ([{"errorGroup": "User", "errorCode": "81", "errorMessage": "x"}], "81"),
        ({"errorCode": "Validation-00001", "errors": {}}, "Validation-00001"),
        (
            {"type": "https://x/recurring-api-problems#charge-amount-too-high"},
            "charge-amount-too-high",
        ),
        ({"error": "invalid_grant"}, "invalid_grant"),
        ({"statusCode": 401, "message": "Access denied"}, None),
        ([{"field": "amount", "message": "x", "code": "11"}], "11"),
        ("plain", None),
        ([], None),
    ],
)
def test_vipps_error_code_is_read_from_every_shape(body: JsonValue, code: str | None) -> None:
    """The error code is found in ePayment, eCom, Checkout, Recurring, Login and Azure bodies."""
    assert vipps_error_code(body) == code


def test_trace_id_is_read_from_problem_and_ecom_bodies() -> None:
    """traceId (ePayment) and contextId (eCom, Recurring) are both trace ids."""
    assert vipps_trace_id({"traceId": "00-ab"}) == "00-ab"
    assert vipps_trace_id([{"contextId": "c1"}]) == "c1"
    assert vipps_trace_id({"title": "x"}) is None


def test_redaction_removes_secrets_and_masks_phones() -> None:
    """Secret fields anywhere are replaced; phone fields and phones in text are masked."""
    body: JsonValue = {
        "access_token": "tok",
        "nested": [{"client_secret": "s", "phoneNumber": "4791234567"}],
        "customerInfo": {"mobileNumber": "91234567"},
        "detail": "could not reach +47 912 34 567 or 4798765432",
        "reference": "order-123456",
    }
    out = redact_json(body)
    assert isinstance(out, dict)
    assert out["access_token"] == REDACTED
    assert out["nested"] == [{"client_secret": REDACTED, "phoneNumber": "******67"}]
    assert out["customerInfo"] == {"mobileNumber": "******67"}
    assert "912 34 567" not in str(out["detail"])
    assert "4798765432" not in str(out["detail"])
    assert out["reference"] == "order-123456"


def test_mask_phone_keeps_little() -> None:
    """At most a country-code hint and the last two digits survive."""
    assert mask_phone("4791234567") == "******67"
    assert mask_phone("+47 912 34 567") == "+47******67"
    assert mask_phone("91234567") == "******67"
    assert mask_phone("12") == "******"
    assert mask_text("no phone here, order 12345") == "no phone here, order 12345"


def test_query_secrets_are_redacted() -> None:
    """OAuth codes and client ids in query strings are redacted, other parameters kept."""
    assert redact_query(
        "code=abc&state=x&client_id=id"
    ) == f"code={REDACTED}&state=x&client_id={REDACTED}".replace("[", "%5B").replace("]", "%5D")
    assert redact_query("") == ""


def test_ecom_rate_limit_uses_ecom_code_98() -> None:
    """A local 429 for eCom carries eCom's own VippsError 98, as Vipps' would."""
    limited = Finding("rate_limit.exceeded", Source.PATH, "orderId", "too many", "wait", status=429)
    doc = render_block(find("ecom", "capture_payment"), [limited], instance="/p", trace_id="t")
    assert doc.status == 429
    assert isinstance(doc.body, list)
    assert isinstance(doc.body[0], dict)
    assert (doc.body[0]["errorGroup"], doc.body[0]["errorCode"]) == ("VippsError", "98")
