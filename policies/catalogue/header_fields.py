"""Which headers each Vipps operation needs, and the shape of its idempotency header.

The matrix is the fact sheet's §2.2, read from each OpenAPI file's parameters: ePayment 1.8.1
[EP], eCom 2.0.3 [EC], Recurring 2.6.17 [RC], Checkout v3 [CO], Order Management 2.1 [OM],
Webhooks (2026 copy) [WH], Report 2.0 [RP] and Access token 2.0.0 [AT]. Where two sources
disagree the proxy takes the lenient one: a header one of them calls optional is not required.
`header_plan` gathers what one operation needs; the catalogue (`policies.catalogue.spec`) keeps it
in the operation's entry, and the rules in `policies.rules.headers` read it there.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.catalogue.operations import WRITE_METHODS, Operation

__all__ = [
    "AUTHORIZATION",
    "BEARER_APIS",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "IDEMPOTENCY_KEY",
    "MERCHANT_SERIAL_NUMBER",
    "REQUEST_ID",
    "SUBSCRIPTION_KEY",
    "SYSTEM_HEADERS",
    "HeaderPlan",
    "KeyFormat",
    "Requirement",
    "header_plan",
    "idempotency_header",
    "required_headers",
]

AUTHORIZATION = "Authorization"
SUBSCRIPTION_KEY = "Ocp-Apim-Subscription-Key"
MERCHANT_SERIAL_NUMBER = "Merchant-Serial-Number"
IDEMPOTENCY_KEY = "Idempotency-Key"
REQUEST_ID = "X-Request-Id"
CLIENT_ID = "client_id"
CLIENT_SECRET = "client_secret"  # noqa: S105 - a header name, not a secret
SYSTEM_HEADERS = (
    "Vipps-System-Name",
    "Vipps-System-Version",
    "Vipps-System-Plugin-Name",
    "Vipps-System-Plugin-Version",
)


# Every call takes `Authorization: Bearer <access token>` [EP #/security],
# [EC #/components/parameters/Authorization], [RC #/components/parameters/Authorization],
# [OM #/components/parameters/Authorization], [WH #/security]. Report declares the header on
# two of its four paths, but its own text says the token "is required for all API calls"
# [RP #/components/parameters/JWT]; no Report call can succeed without one.
BEARER_APIS = frozenset({"epayment", "ecom", "recurring", "order_management", "webhooks", "report"})
# Required by [AT], [EP], [EC], [RC] and [OM]. Optional in Checkout's parameters
# [CO #/components/parameters/Ocp-Apim-Subscription-Key] and in the 2026 Webhooks spec
# [WH #/paths/~1v1~1webhooks/post/parameters]; Report does not declare it.
_SUBSCRIPTION_KEY_APIS = frozenset({"epayment", "ecom", "recurring", "order_management"})
# Required on every ePayment and Order Management operation [EP #/components/schemas/MSN],
# [OM #/components/parameters/Merchant-Serial-Number]; optional elsewhere (partners excepted,
# which the proxy cannot tell).
_MSN_APIS = frozenset({"epayment", "order_management"})
# [EP #/components/parameters/Idempotency-Key]: required on create, capture and refund. Cancel
# needed it in 1.4.1 but no longer declares it (facts §14.7), so it is not required there.
_EPAYMENT_KEYED = frozenset({"create_payment", "capture_payment", "refund_payment"})
# [EC #/paths/~1ecomm~1v2~1payments~1{orderId}~1capture/post/parameters] and .../refund: the
# spec (generated from the service's own annotations) marks `X-Request-Id` required.
_ECOM_REQUEST_ID_REQUIRED = frozenset({"capture_payment", "refund_payment"})
_ECOM_REQUEST_ID_DECLARED = _ECOM_REQUEST_ID_REQUIRED | {"force_approve"}
# Recurring v2 declares the key on create, capture and refund charge, but the guide requires it
# only in v3 [RCDOC recurring-api-guide.md §Idempotency Key header]: checked there, not required.
_RECURRING_V2_KEYED = frozenset({"create_charge_v2", "capture_charge_v2", "refund_charge_v2"})


def _is_recurring_v3_write(operation: Operation) -> bool:
    """[RC #/components/parameters/Idempotency-Key] is required on every v3 write."""
    return (
        operation.api == "recurring"
        and operation.template.startswith("/recurring/v3/")
        and operation.method in WRITE_METHODS
    )


@dataclass(frozen=True, slots=True)
class Requirement:
    """One header an operation needs; `unless` names headers that together may stand in for it."""

    header: str
    expected: str
    # The `header.missing` condition a missing header falls under (its evidence is there).
    condition: str
    unless: tuple[str, ...] = ()


def required_headers(operation: Operation) -> tuple[Requirement, ...]:
    """The headers the spec requires on `operation` (empty for operations it does not cover)."""
    api, name = operation.api, operation.name
    needed: list[Requirement] = []
    if api in BEARER_APIS:
        needed.append(
            Requirement(
                AUTHORIZATION, "`Bearer <access token>` from /accesstoken/get", "authorization"
            )
        )
    if api in _SUBSCRIPTION_KEY_APIS or operation.key == "access_token.fetch_access_token":
        needed.append(
            Requirement(
                SUBSCRIPTION_KEY,
                "the sales unit's subscription key (as for the token)",
                "subscription_key",
            )
        )
    if api in _MSN_APIS:
        needed.append(
            Requirement(
                MERCHANT_SERIAL_NUMBER,
                "the sales unit's MSN, e.g. 123456",
                "merchant_serial_number",
            )
        )
    if api == "epayment" and name in _EPAYMENT_KEYED:
        needed.append(
            Requirement(
                IDEMPOTENCY_KEY, "a unique key of at most 50 characters", "epayment_idempotency_key"
            )
        )
    if _is_recurring_v3_write(operation):
        needed.append(
            Requirement(
                IDEMPOTENCY_KEY,
                "a unique key of 1-40 characters without # ? / \\",
                "recurring_idempotency_key",
            )
        )
    if api == "ecom" and name in _ECOM_REQUEST_ID_REQUIRED:
        needed.append(
            Requirement(REQUEST_ID, "a unique id of at most 40 characters", "ecom_request_id")
        )
    if operation.key == "access_token.fetch_access_token" or api == "checkout":
        # [AT #/paths/~1accesstoken~1get/post/parameters]; Checkout authenticates with the
        # same two headers instead of a token [CO #/components/parameters/client_id].
        needed.append(
            Requirement(
                CLIENT_ID, "the client_id of the sales unit's API keys", "client_credentials"
            )
        )
        needed.append(
            Requirement(
                CLIENT_SECRET,
                "the client_secret of the sales unit's API keys",
                "client_credentials",
            )
        )
    if operation.key == "access_token.fetch_partner_token":
        # The 2026 spec wants Basic authentication [AT #/paths/~1miami~1v1~1token/post]; the
        # 2023 one took client_id and client_secret headers [AT23]: either is accepted.
        needed.append(
            Requirement(
                AUTHORIZATION,
                "`Basic base64(client_id:client_secret)`, or client_id and client_secret",
                "partner_credentials",
                unless=(CLIENT_ID, CLIENT_SECRET),
            )
        )
    return tuple(needed)


def idempotency_header(operation: Operation) -> str | None:
    """The API's idempotency header: ePayment, Recurring `Idempotency-Key`; eCom `X-Request-Id`.

    Facts §2.2 ([EP #/components/parameters/Idempotency-Key], [EC .../capture/post/parameters],
    [RC #/components/parameters/Idempotency-Key]).
    """
    if operation.api in ("epayment", "recurring"):
        return IDEMPOTENCY_KEY
    return REQUEST_ID if operation.api == "ecom" else None


@dataclass(frozen=True, slots=True)
class KeyFormat:
    """The length (and characters) an operation's idempotency header may have."""

    header: str
    max_length: int
    expected: str
    # The `header.format` condition a key of the wrong form falls under.
    condition: str
    forbidden: str = ""


# [EP #/components/parameters/Idempotency-Key]: at most 50 characters.
_EPAYMENT_KEY = KeyFormat(IDEMPOTENCY_KEY, 50, "at most 50 characters", "epayment_idempotency_key")
# [RC #/components/parameters/Idempotency-Key]: 1-40 characters, none of `# ? / \`.
_RECURRING_KEY = KeyFormat(
    IDEMPOTENCY_KEY,
    40,
    "1-40 characters, none of # ? / \\",
    "recurring_idempotency_key",
    "#?/\\",
)
# [EC #/paths/~1ecomm~1v2~1payments~1{orderId}~1capture/post/parameters]: at most 40.
_ECOM_REQUEST_ID = KeyFormat(REQUEST_ID, 40, "at most 40 characters", "ecom_request_id")


def _key_format(operation: Operation) -> KeyFormat | None:
    if operation.api == "epayment" and operation.name in _EPAYMENT_KEYED:
        return _EPAYMENT_KEY
    if _is_recurring_v3_write(operation) or operation.name in _RECURRING_V2_KEYED:
        return _RECURRING_KEY
    if operation.api == "ecom" and operation.name in _ECOM_REQUEST_ID_DECLARED:
        return _ECOM_REQUEST_ID
    return None


@dataclass(frozen=True, slots=True)
class HeaderPlan:
    """What one operation asks of its headers.

    `bearer`: `Authorization` is `Bearer <token>`; `msn_format`: the spec states the MSN pattern
    `^[0-9]{4,10}$` (ePayment [EP #/components/schemas/MSN], Access token [AT]); `key_format`:
    the idempotency header's length and characters where the operation declares it;
    `idempotency_header`: the header the payment audit reads the key from; `system_header_limit`:
    the length of each `Vipps-System-*` header ([KB http-headers.md] and every spec say 30;
    Order Management declares 100 [OM #/components/parameters/Vipps-System-Name]).
    """

    required: tuple[Requirement, ...] = ()
    bearer: bool = False
    msn_format: bool = False
    key_format: KeyFormat | None = None
    idempotency_header: str | None = None
    system_header_limit: int = 30


def header_plan(operation: Operation) -> HeaderPlan:
    """Everything the header rules and the payment audit need to know of `operation`."""
    return HeaderPlan(
        required=required_headers(operation),
        bearer=operation.api in BEARER_APIS,
        msn_format=operation.api == "epayment"
        or operation.key == "access_token.fetch_access_token",
        key_format=_key_format(operation),
        idempotency_header=idempotency_header(operation),
        system_header_limit=100 if operation.api == "order_management" else 30,
    )
