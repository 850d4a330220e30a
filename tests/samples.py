"""Valid requests, one per commonly used operation, as a merchant backend sends them.

End-to-end tests start from these and change one thing; a test checks that each passes every
default rule untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import orjson

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJl"
SUBSCRIPTION_KEY = "0f14ebcab0eb4b29ae0cb90d91b4a84a"
CLIENT_ID = "fb492b5e-7907-4d83-bc20-c7fb60ca35de"
CLIENT_SECRET = "Y8Kteew6GE3ZmeycEt6egg=="
MSN = "123456"

SYSTEM = {
    "Vipps-System-Name": "acme-shop",
    "Vipps-System-Version": "3.1.2",
    "Vipps-System-Plugin-Name": "acme-vipps",
    "Vipps-System-Plugin-Version": "1.4.0",
}
BEARER = {
    "Authorization": f"Bearer {TOKEN}",
    "Ocp-Apim-Subscription-Key": SUBSCRIPTION_KEY,
    "Merchant-Serial-Number": MSN,
    "Content-Type": "application/json",
    **SYSTEM,
}


@dataclass(frozen=True)
class Sample:
    """One request: method, path, headers, and a JSON body (None for no body)."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any = None
    raw: bytes | None = field(default=None)

    @property
    def body(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return b"" if self.json is None else orjson.dumps(self.json)

    def with_headers(self, **changes: str | None) -> Sample:
        """A copy with headers set (str) or removed (None); `_` in names stands for `-`."""
        headers = dict(self.headers)
        for name, value in changes.items():
            key = name.replace("_", "-")
            if value is None:
                headers = {k: v for k, v in headers.items() if k.lower() != key.lower()}
            else:
                headers[key] = value
        return replace(self, headers=headers)

    def with_body(self, raw: bytes) -> Sample:
        return replace(self, raw=raw)


EPAYMENT_CREATE = Sample(
    "POST",
    "/epayment/v1/payments",
    {**BEARER, "Idempotency-Key": "idem-create-0001"},
    {
        "amount": {"currency": "NOK", "value": 49900},
        "paymentMethod": {"type": "WALLET"},
        "customer": {"phoneNumber": "4791234567"},
        "reference": "order-123456",
        "returnUrl": "https://shop.example.com/return?order=123456",
        "userFlow": "WEB_REDIRECT",
        "paymentDescription": "Two pairs of socks",
        "receipt": {
            "orderLines": [
                {
                    "name": "Socks",
                    "id": "sku-1",
                    "totalAmount": 49900,
                    "totalAmountExcludingTax": 39920,
                    "totalTaxAmount": 9980,
                    "taxRate": 2500,
                    "unitInfo": {"unitPrice": 24950, "quantity": "2"},
                }
            ],
            "bottomLine": {"currency": "NOK"},
        },
    },
)
EPAYMENT_GET = Sample("GET", "/epayment/v1/payments/order-123456", BEARER)
EPAYMENT_CAPTURE = Sample(
    "POST",
    "/epayment/v1/payments/order-123456/capture",
    {**BEARER, "Idempotency-Key": "idem-capture-0001"},
    {"modificationAmount": {"currency": "NOK", "value": 20000}},
)
EPAYMENT_REFUND = Sample(
    "POST",
    "/epayment/v1/payments/order-123456/refund",
    {**BEARER, "Idempotency-Key": "idem-refund-0001"},
    {"modificationAmount": {"currency": "NOK", "value": 10000}},
)
ECOM_INITIATE = Sample(
    "POST",
    "/ecomm/v2/payments",
    BEARER,
    {
        "customerInfo": {"mobileNumber": "91234567"},
        "merchantInfo": {
            "merchantSerialNumber": MSN,
            "callbackPrefix": "https://shop.example.com/vipps/callbacks",
            "fallBack": "https://shop.example.com/vipps/fallback/order-123456",
        },
        "transaction": {
            "orderId": "order-123456",
            "amount": 49900,
            "transactionText": "Two pairs of socks",
        },
    },
)
ECOM_CAPTURE = Sample(
    "POST",
    "/ecomm/v2/payments/order-123456/capture",
    {**BEARER, "X-Request-Id": "req-capture-0001"},
    {
        "merchantInfo": {"merchantSerialNumber": MSN},
        "transaction": {"amount": 20000, "transactionText": "Shipped"},
    },
)
RECURRING_CHARGE = Sample(
    "POST",
    "/recurring/v3/agreements/agr_5kSeqz/charges",
    {**BEARER, "Idempotency-Key": "idem-charge-0001"},
    {
        "amount": 19900,
        "description": "Monthly socks",
        "due": "2030-01-15",
        "retryDays": 5,
        "transactionType": "DIRECT_CAPTURE",
        "orderId": "chr-order-123456",
    },
)
CHECKOUT_SESSION = Sample(
    "POST",
    "/checkout/v3/session",
    {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "Ocp-Apim-Subscription-Key": SUBSCRIPTION_KEY,
        "Merchant-Serial-Number": MSN,
        "Content-Type": "application/json",
        **SYSTEM,
    },
    {
        "merchantInfo": {
            "callbackUrl": "https://shop.example.com/vipps/checkout-callback",
            "returnUrl": "https://shop.example.com/return",
            "callbackAuthorizationToken": "cb-token-1234567890",
        },
        "transaction": {
            "amount": {"currency": "NOK", "value": 49900},
            "reference": "order-123456",
            "paymentDescription": "Two pairs of socks",
        },
    },
)
ACCESS_TOKEN = Sample(
    "POST",
    "/accesstoken/get",
    {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "Ocp-Apim-Subscription-Key": SUBSCRIPTION_KEY,
        "Merchant-Serial-Number": MSN,
        **SYSTEM,
    },
)

ALL = {
    "epayment.create_payment": EPAYMENT_CREATE,
    "epayment.get_payment": EPAYMENT_GET,
    "epayment.capture_payment": EPAYMENT_CAPTURE,
    "epayment.refund_payment": EPAYMENT_REFUND,
    "ecom.initiate_payment": ECOM_INITIATE,
    "ecom.capture_payment": ECOM_CAPTURE,
    "recurring.create_charge": RECURRING_CHARGE,
    "checkout.create_session": CHECKOUT_SESSION,
    "access_token.fetch_access_token": ACCESS_TOKEN,
}
