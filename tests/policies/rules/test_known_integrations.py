"""Requests public production integrations send, which Vipps accepts and the defaults once
blocked (one pure test per case, named after the integration and the request).

Each is rebuilt from the samples with the one thing the integration does differently; the
default rules must forward it (at most reporting a finding), never block it.
"""

from __future__ import annotations

import base64

import orjson
import pytest

from policies.catalogue.body_limits import (
    IMAGE_MAX_FILE_BYTES,
    LARGEST_DOCUMENTED_BODY,
    base64_length,
)
from policies.core.engine import PolicyEngine
from policies.core.model import AuditedRequest, Outcome
from policies.rules.listing import default_rules
from tests.policies.rules.conditions import build
from tests.samples import (
    ACCESS_TOKEN,
    CHECKOUT_SESSION,
    ECOM_CAPTURE,
    ECOM_INITIATE,
    EPAYMENT_CAPTURE,
    EPAYMENT_CREATE,
    EPAYMENT_REFUND,
    Sample,
)

SHOP_DOMAIN = "https://shop.example-with-domains.no"  # 36 characters, a shop's domain URL
ECOM_REFUND = Sample(
    "POST",
    "/ecomm/v2/payments/order-123456/refund",
    ECOM_CAPTURE.headers,
    ECOM_CAPTURE.json,
)
_LINE = {
    "name": "Socks",
    "id": "sku-1",
    "totalAmount": 49900,
    "totalAmountExcludingTax": 39920,
    "totalTaxAmount": 9980,
    "taxRate": 2500,
}


def forwarded(request: AuditedRequest) -> list[tuple[str, str, Outcome]]:
    """What the default rules found, asserting the request is forwarded unchanged."""
    verdict = PolicyEngine(default_rules()).evaluate(request)
    assert not verdict.blocked
    assert verdict.body is None
    return [(d.finding.rule, d.finding.condition, d.outcome) for d in verdict.decisions]


def test_woocommerce_checkout_session_with_tax_rate() -> None:
    """WooCommerce sends Checkout order lines with `taxRate`, not `taxPercentage`."""
    summary = {"orderLines": [_LINE], "orderBottomLine": {"currency": "NOK"}}
    request = build(CHECKOUT_SESSION, (("transaction", "orderSummary"), summary))
    assert forwarded(request) == []


@pytest.mark.parametrize(
    "sample",
    [ACCESS_TOKEN, EPAYMENT_CREATE, EPAYMENT_CAPTURE, EPAYMENT_REFUND],
    ids=["accesstoken", "create", "capture", "refund"],
)
def test_shopware_long_system_name(sample: Sample) -> None:
    """Shopware sends the shop's domain URL (36 characters) as Vipps-System-Name on every call."""
    request = build(sample, headers={"Vipps-System-Name": SHOP_DOMAIN})
    would = ("header.format", "system_header_length", Outcome.WOULD_BLOCK)
    assert forwarded(request) == [would]


def test_episerver_ecom_initiate_with_empty_mobile_number() -> None:
    """The Optimizely plugin sends `"mobileNumber": ""` when the billing address has none."""
    request = build(ECOM_INITIATE, (("customerInfo", "mobileNumber"), ""))
    assert forwarded(request) == [("phone.format", "empty", Outcome.WOULD_BLOCK)]


@pytest.mark.parametrize(
    "sample", [ECOM_REFUND, ECOM_CAPTURE], ids=["episerver-refund", "pyvipps-capture"]
)
def test_ecom_full_amount_without_request_id(sample: Sample) -> None:
    """The Optimizely plugin refunds and vipps-python captures the full amount without
    X-Request-Id ("Required if the amount is partial")."""
    request = build(sample, headers={"X-Request-Id": None})
    would = ("header.missing", "ecom_request_id", Outcome.WOULD_BLOCK)
    assert forwarded(request) == [would]


@pytest.mark.parametrize("sample", [ECOM_INITIATE, ECOM_CAPTURE, ECOM_REFUND])
def test_omnipay_bare_access_token(sample: Sample) -> None:
    """omnipay-vipps sends the access token without the word Bearer on every eCom call."""
    request = build(sample, headers={"Authorization": "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"})
    assert forwarded(request) == [("header.format", "bare_token", Outcome.WOULD_BLOCK)]


def test_a_lower_case_bearer_still_blocks() -> None:
    """`bearer <token>` is what the KB names as a 401: that still blocks."""
    request = build(EPAYMENT_CAPTURE, headers={"Authorization": "bearer abc.def.ghi"})
    assert PolicyEngine(default_rules()).evaluate(request).blocked


def test_woocommerce_image_upload_fits_the_body_limit() -> None:
    """The worst 2 MB image as base64 JSON with PHP's escaped slashes fits the documented
    maximum the body limit is held to."""
    # 0xFF bytes encode to "////": every character doubles when `/` is written `\\/`.
    encoded = base64.b64encode(b"\xff" * IMAGE_MAX_FILE_BYTES).decode().replace("/", "\\/")
    body = orjson.dumps({"imageId": "i" * 128, "src": "", "type": "base64"})
    body = body.replace(b'"src":""', b'"src":"' + encoded.encode() + b'"')
    assert len(body) > 2 * base64_length(IMAGE_MAX_FILE_BYTES)
    assert len(body) <= LARGEST_DOCUMENTED_BODY


def test_shopware_mangled_phone_is_blocked_not_repaired() -> None:
    """Shopware turns `912 34 567` into `47234567`; the proxy must not forward 4747234567."""
    request = build(EPAYMENT_CREATE, (("customer", "phoneNumber"), "47234567"))
    verdict = PolicyEngine(default_rules()).evaluate(request)
    assert verdict.blocked
    assert verdict.body is None
    [(rule, condition)] = [(d.finding.rule, d.finding.condition) for d in verdict.decisions]
    assert (rule, condition) == ("phone.format", "ambiguous")
