"""Valid requests, one per operation the tests use, as a merchant backend sends them.

This is the one table of valid bodies: end-to-end tests and rule tests alike start from these
and change one thing. Each body holds every field a rule looks at (every money field, every
phone field, the required fields), and a test checks that each request passes every default
rule untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
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
CHECKOUT_HEADERS = {
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "Ocp-Apim-Subscription-Key": SUBSCRIPTION_KEY,
    "Merchant-Serial-Number": MSN,
    "Content-Type": "application/json",
    **SYSTEM,
}
TOKEN_HEADERS = {
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "Ocp-Apim-Subscription-Key": SUBSCRIPTION_KEY,
    "Merchant-Serial-Number": MSN,
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


ACCESS_TOKEN = Sample(
    "POST",
    "/accesstoken/get",
    TOKEN_HEADERS,
)

CHECKOUT_SESSION = Sample(
    "POST",
    "/checkout/v3/session",
    CHECKOUT_HEADERS,
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
            "orderSummary": {
                "orderLines": [
                    {
                        "name": "Socks",
                        "id": "line-1",
                        "totalAmount": 40000,
                        "totalAmountExcludingTax": 32000,
                        "totalTaxAmount": 8000,
                        "taxRate": 2500,
                        "discount": 0,
                        "unitInfo": {"unitPrice": 20000, "quantity": "2", "quantityUnit": "PCS"},
                        "taxPercentage": 25,
                    }
                ],
                "orderBottomLine": {
                    "currency": "NOK",
                    "tipAmount": 0,
                    "giftCardAmount": 0,
                    "paymentSources": {"giftCard": 0, "card": 49900, "voucher": 0, "cash": 0},
                },
            },
        },
        "logistics": {
            "fixedOptions": [
                {
                    "brand": "POSTEN",
                    "type": "PICKUP_POINT",
                    "id": "posten-1",
                    "priority": 1,
                    "isDefault": True,
                    "amount": {"value": 9900, "currency": "NOK"},
                }
            ],
            "integrations": {
                "porterbuddy": {
                    "publicToken": "pt",
                    "apiKey": "ak",
                    "origin": {
                        "name": "Sock shop",
                        "email": "shop@example.com",
                        "phoneNumber": "4722123456",
                        "address": {
                            "streetAddress": "Storgata 1",
                            "postalCode": "0155",
                            "city": "Oslo",
                            "country": "NO",
                        },
                    },
                }
            },
        },
        "prefillCustomer": {"firstName": "Ada", "phoneNumber": "4791234567"},
    },
)

CHECKOUT_CREATE_SESSION_V2 = Sample(
    "POST",
    "/checkout/v2/session",
    CHECKOUT_HEADERS,
    {
        "merchantInfo": {
            "callbackUrl": "https://example.com/vipps/callback",
            "returnUrl": "https://example.com/return",
            "callbackAuthorizationToken": "5b8e2b4c-3e2f-4e5a-9c1d-0e6f8a7b9c0d",
            "callbackPrefix": "https://shop.example.com/vipps/callbacks",
        },
        "transaction": {
            "amount": {"value": 49900, "currency": "NOK"},
            "reference": "acme-shop-123-order123abc",
            "paymentDescription": "One pair of socks",
        },
        "logistics": {
            "fixedOptions": [
                {
                    "id": "posten-1",
                    "brand": "Posten",
                    "priority": 1,
                    "amount": {"value": 9900, "currency": "NOK"},
                    "product": "Package to pickup point",
                }
            ]
        },
        "prefillCustomer": {
            "firstName": "Ada",
            "phoneNumber": "4791234567",
            "lastName": "Lovelace",
            "email": "ada@example.com",
            "streetAddress": "Storgata 1",
            "city": "Oslo",
            "postalCode": "0155",
            "country": "NO",
        },
        "contactFields": True,
        "addressFields": True,
    },
)

ECOM_CAPTURE = Sample(
    "POST",
    "/ecomm/v2/payments/order-123456/capture",
    {**BEARER, "X-Request-Id": "req-capture-0001"},
    {
        "merchantInfo": {"merchantSerialNumber": "123456"},
        "transaction": {"amount": 20000, "transactionText": "Shipped"},
    },
)

ECOM_FORCE_APPROVE = Sample(
    "POST",
    "/ecomm/v2/integration-test/payments/order-20240101-0001/approve",
    BEARER,
    {"customerPhoneNumber": "91234567", "token": "eyJraWQiOiJqd3R"},
)

ECOM_INITIATE = Sample(
    "POST",
    "/ecomm/v2/payments",
    BEARER,
    {
        "customerInfo": {"mobileNumber": "91234567"},
        "merchantInfo": {
            "merchantSerialNumber": "123456",
            "callbackPrefix": "https://shop.example.com/vipps/callbacks",
            "fallBack": "https://shop.example.com/vipps/fallback/order-123456",
            "staticShippingDetails": [
                {
                    "isDefault": "Y",
                    "shippingCost": 49.5,
                    "shippingMethod": "Posten Servicepakke",
                    "shippingMethodId": "posten",
                }
            ],
            "isApp": False,
        },
        "transaction": {
            "orderId": "order-123456",
            "amount": 49900,
            "transactionText": "Two pairs of socks",
        },
    },
)

ECOM_REFUND_PAYMENT = Sample(
    "POST",
    "/ecomm/v2/payments/acme-shop-123/refund",
    {**BEARER, "X-Request-Id": "req-refund-0001"},
    {
        "merchantInfo": {"merchantSerialNumber": "123456"},
        "transaction": {"amount": 10000, "transactionText": "Returned"},
    },
)

EPAYMENT_CAPTURE = Sample(
    "POST",
    "/epayment/v1/payments/order-123456/capture",
    {**BEARER, "Idempotency-Key": "idem-capture-0001"},
    {"modificationAmount": {"currency": "NOK", "value": 20000}},
)

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
                    "discount": 0,
                }
            ],
            "bottomLine": {
                "currency": "NOK",
                "tipAmount": 0,
                "giftCardAmount": 0,
                "totalAmount": 49900,
                "totalTax": 9980,
                "totalDiscount": 0,
                "shippingAmount": 9900,
                "shippingInfo": {
                    "amount": 9900,
                    "amountExcludingTax": 7920,
                    "taxAmount": 1980,
                    "taxPercentage": 25,
                },
                "paymentSources": {"giftCard": 0, "card": 49900, "voucher": 0, "cash": 0},
            },
        },
        "shipping": {
            "fixedOptions": [
                {
                    "type": "HOME_DELIVERY",
                    "brand": "POSTEN",
                    "options": [
                        {
                            "id": "home",
                            "name": "Home delivery",
                            "amount": {"value": 9900, "currency": "NOK"},
                        }
                    ],
                }
            ]
        },
        "metadata": {"Reference": "free map keys are never checked", "reference": "x"},
    },
)

# The same payment without shipping options: an express payment's reservation is known only
# from Vipps' answers, so the ledger can hold captures against this one from its create alone.
EPAYMENT_CREATE_PLAIN = replace(
    EPAYMENT_CREATE, json={k: v for k, v in EPAYMENT_CREATE.json.items() if k != "shipping"}
)

EPAYMENT_FORCE_APPROVE = Sample(
    "POST",
    "/epayment/v1/test/payments/order-20240101-0001/approve",
    BEARER,
    {"customer": {"phoneNumber": "4791234567"}},
)

EPAYMENT_GET = Sample(
    "GET",
    "/epayment/v1/payments/order-123456",
    BEARER,
)

EPAYMENT_REFUND = Sample(
    "POST",
    "/epayment/v1/payments/order-123456/refund",
    {**BEARER, "Idempotency-Key": "idem-refund-0001"},
    {"modificationAmount": {"currency": "NOK", "value": 10000}},
)

ORDER_MANAGEMENT_ADD_RECEIPT = Sample(
    "POST",
    "/order-management/v2/ECOM/receipts/acme-shop-123-order123abc",
    BEARER,
    {
        "orderLines": [
            {
                "name": "Socks",
                "id": "line-1",
                "totalAmount": 40000,
                "totalAmountExcludingTax": 32000,
                "totalTaxAmount": 8000,
                "taxRate": 2500,
                "discount": 0,
                "unitInfo": {"unitPrice": 20000, "quantity": "2"},
            }
        ],
        "bottomLine": {
            "currency": "NOK",
            "tipAmount": 0,
            "giftCardAmount": 0,
            "totalAmount": 49900,
            "totalTax": 8000,
            "totalDiscount": 0,
            "shippingAmount": 9900,
            "shippingInfo": {
                "amount": 9900,
                "amountExcludingTax": 7920,
                "taxAmount": 1980,
                "taxPercentage": 25,
            },
            "paymentSources": {"giftCard": 0, "card": 49900, "voucher": 0, "cash": 0},
        },
    },
)

ORDER_MANAGEMENT_ADD_RECEIPT_V1 = Sample(
    "POST",
    "/order-management/v1/receipts/acme-shop-123-order123abc",
    BEARER,
    {
        "orderLines": [
            {
                "name": "Socks",
                "id": "line-1",
                "totalAmount": 40000,
                "totalAmountExcludingTax": 32000,
                "totalTaxAmount": 8000,
                "taxRate": 2500,
                "discount": 0,
                "unitInfo": {"unitPrice": 20000, "quantity": "2"},
            }
        ],
        "bottomLine": {
            "currency": "NOK",
            "tipAmount": 0,
            "giftCardAmount": 0,
            "totalAmount": 49900,
            "totalTax": 8000,
            "totalDiscount": 0,
            "shippingAmount": 9900,
            "shippingInfo": {
                "amount": 9900,
                "amountExcludingTax": 7920,
                "taxAmount": 1980,
                "taxPercentage": 25,
            },
            "paymentSources": {"giftCard": 0, "card": 49900, "voucher": 0, "cash": 0},
        },
    },
)

ORDER_MANAGEMENT_SET_CATEGORY = Sample(
    "PUT",
    "/order-management/v2/ECOM/categories/order-123456",
    BEARER,
    {"category": "GENERAL", "orderDetailsUrl": "https://example.com/orders/1"},
)

RECURRING_CAPTURE_CHARGE = Sample(
    "POST",
    "/recurring/v3/agreements/agr_5kSeqz/charges/chr-4assY8f/capture",
    {**BEARER, "Idempotency-Key": "idem-capture-charge-0001"},
    {"amount": 49900, "description": "Delivered"},
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

RECURRING_CREATE_CHARGE_V2 = Sample(
    "POST",
    "/recurring/v2/agreements/agr_5kSeqz/charges",
    BEARER,
    {
        "amount": 49900,
        "currency": "NOK",
        "description": "October",
        "due": "2030-10-01",
        "retryDays": 5,
    },
)

RECURRING_DRAFT_AGREEMENT = Sample(
    "POST",
    "/recurring/v3/agreements",
    {**BEARER, "Idempotency-Key": "idem-draft-agreement-0001"},
    {
        "pricing": {
            "type": "LEGACY",
            "amount": 49900,
            "currency": "NOK",
            "suggestedMaxAmount": 100000,
        },
        "initialCharge": {
            "amount": 19900,
            "description": "First month",
            "transactionType": "DIRECT_CAPTURE",
        },
        "campaign": {"type": "PRICE_CAMPAIGN", "price": 1500, "end": "2030-06-01T00:00:00Z"},
        "interval": {"unit": "MONTH", "count": 1},
        "productName": "Premium",
        "merchantRedirectUrl": "https://example.com/redirect",
        "merchantAgreementUrl": "https://example.com/my-subscriptions",
        "phoneNumber": "4791234567",
    },
)

RECURRING_DRAFT_AGREEMENT_V2 = Sample(
    "POST",
    "/recurring/v2/agreements",
    BEARER,
    {
        "currency": "NOK",
        "price": 49900,
        "interval": "MONTH",
        "intervalCount": 1,
        "productName": "Premium",
        "variableAmount": {"suggestedMaxAmount": 100000},
        "campaign": {"campaignPrice": 1500, "end": "2030-06-01T00:00:00Z"},
        "initialCharge": {
            "amount": 19900,
            "currency": "NOK",
            "description": "First month",
            "transactionType": "DIRECT_CAPTURE",
        },
        "merchantRedirectUrl": "https://example.com/redirect",
        "merchantAgreementUrl": "https://example.com/my-subscriptions",
        "customerPhoneNumber": "4791234567",
        "productDescription": "MyNews on web",
    },
)

RECURRING_FORCE_ACCEPT_AGREEMENT = Sample(
    "PATCH",
    "/recurring/v3/agreements/agr_5kSeqz/accept",
    {**BEARER, "Idempotency-Key": "idem-force-accept-agreement-0001"},
    {"phoneNumber": "4791234567"},
)

RECURRING_FORCE_ACCEPT_AGREEMENT_V2 = Sample(
    "PATCH",
    "/recurring/v2/agreements/agr_5kSeqz/accept",
    BEARER,
    {"customerPhoneNumber": "91234567"},
)

RECURRING_PATCH_AGREEMENT_V2 = Sample(
    "PATCH",
    "/recurring/v2/agreements/agr_5kSeqz",
    BEARER,
    {
        "price": 59900,
        "suggestedMaxAmount": 100000,
        "campaign": {"campaignPrice": 1500, "end": "2030-06-01T00:00:00Z"},
    },
)

RECURRING_REFUND_CHARGE = Sample(
    "POST",
    "/recurring/v3/agreements/agr_5kSeqz/charges/chr-4assY8f/refund",
    {**BEARER, "Idempotency-Key": "idem-refund-charge-0001"},
    {"amount": 10000, "description": "Discount"},
)

RECURRING_REFUND_CHARGE_V2 = Sample(
    "POST",
    "/recurring/v2/agreements/agr_5kSeqz/charges/chr-4assY8f/refund",
    BEARER,
    {"amount": 10000, "description": "Discount"},
)

RECURRING_UPDATE_AGREEMENT = Sample(
    "PATCH",
    "/recurring/v3/agreements/agr_5kSeqz",
    {**BEARER, "Idempotency-Key": "idem-update-agreement-0001"},
    {"pricing": {"amount": 59900, "suggestedMaxAmount": 100000}},
)

RECURRING_UPDATE_AGREEMENT_V2 = Sample(
    "PUT",
    "/recurring/v2/agreements/agr_5kSeqz",
    BEARER,
    {
        "price": 59900,
        "suggestedMaxAmount": 100000,
        "campaign": {"campaignPrice": 1500, "end": "2030-06-01T00:00:00Z"},
    },
)

WEBHOOKS_REGISTER_WEBHOOK = Sample(
    "POST",
    "/webhooks/v1/webhooks",
    BEARER,
    {"url": "https://example.com/hooks", "events": ["epayments.payment.captured.v1"]},
)

VALID: Mapping[str, Sample] = MappingProxyType(
    {
        "access_token.fetch_access_token": ACCESS_TOKEN,
        "checkout.create_session": CHECKOUT_SESSION,
        "checkout.create_session_v2": CHECKOUT_CREATE_SESSION_V2,
        "ecom.capture_payment": ECOM_CAPTURE,
        "ecom.force_approve": ECOM_FORCE_APPROVE,
        "ecom.initiate_payment": ECOM_INITIATE,
        "ecom.refund_payment": ECOM_REFUND_PAYMENT,
        "epayment.capture_payment": EPAYMENT_CAPTURE,
        "epayment.create_payment": EPAYMENT_CREATE,
        "epayment.force_approve": EPAYMENT_FORCE_APPROVE,
        "epayment.get_payment": EPAYMENT_GET,
        "epayment.refund_payment": EPAYMENT_REFUND,
        "order_management.add_receipt": ORDER_MANAGEMENT_ADD_RECEIPT,
        "order_management.add_receipt_v1": ORDER_MANAGEMENT_ADD_RECEIPT_V1,
        "order_management.set_category": ORDER_MANAGEMENT_SET_CATEGORY,
        "recurring.capture_charge": RECURRING_CAPTURE_CHARGE,
        "recurring.create_charge": RECURRING_CHARGE,
        "recurring.create_charge_v2": RECURRING_CREATE_CHARGE_V2,
        "recurring.draft_agreement": RECURRING_DRAFT_AGREEMENT,
        "recurring.draft_agreement_v2": RECURRING_DRAFT_AGREEMENT_V2,
        "recurring.force_accept_agreement": RECURRING_FORCE_ACCEPT_AGREEMENT,
        "recurring.force_accept_agreement_v2": RECURRING_FORCE_ACCEPT_AGREEMENT_V2,
        "recurring.patch_agreement_v2": RECURRING_PATCH_AGREEMENT_V2,
        "recurring.refund_charge": RECURRING_REFUND_CHARGE,
        "recurring.refund_charge_v2": RECURRING_REFUND_CHARGE_V2,
        "recurring.update_agreement": RECURRING_UPDATE_AGREEMENT,
        "recurring.update_agreement_v2": RECURRING_UPDATE_AGREEMENT_V2,
        "webhooks.register_webhook": WEBHOOKS_REGISTER_WEBHOOK,
    }
)
