"""The catalogue: which Vipps operation a method and path are.

Templates are written as seen from the API host (`https://api.vipps.no`), taken from the
official OpenAPI files (`servers` + `paths`). Literal segments match case-insensitively because
Vipps' gateway does (`/Ecomm/v2/payments` is accepted); parameters keep their case, since
references are case-sensitive. Anything not in the catalogue is `unknown` and still forwarded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import unquote

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
"""The methods that change something at Vipps (idempotency keys apply to them)."""


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of one Vipps API: a bounded name for metrics and the key rules select on."""

    api: str
    name: str
    method: str
    template: str
    deprecated: bool = False
    segments: tuple[str, ...] = field(init=False, repr=False, compare=False)
    key: str = field(init=False, repr=False, compare=False)
    """`api.name`, e.g. `epayment.create_payment`: the name settings and source tables use."""
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple(self.template.strip("/").split("/")))
        object.__setattr__(self, "key", f"{self.api}.{self.name}")
        # Operations key the per-operation plans looked up on every request: hash them once.
        object.__setattr__(
            self, "_hash", hash((self.api, self.name, self.method, self.template, self.deprecated))
        )

    def __hash__(self) -> int:
        return self._hash

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(s[1:-1] for s in self.segments if s.startswith("{"))


UNKNOWN = Operation("unknown", "unknown", "*", "/")

_E, _EC, _R, _C = "epayment", "ecom", "recurring", "checkout"
_OM, _WH, _RP, _LG, _AT = "order_management", "webhooks", "report", "login", "access_token"

OPERATIONS: tuple[Operation, ...] = (
    # Access token API [AT #/paths]
    Operation(_AT, "fetch_access_token", "POST", "/accesstoken/get"),
    Operation(_AT, "fetch_partner_token", "POST", "/miami/v1/token"),
    # ePayment API v1 [EP #/servers, #/paths]
    Operation(_E, "create_payment", "POST", "/epayment/v1/payments"),
    Operation(_E, "get_payment", "GET", "/epayment/v1/payments/{reference}"),
    Operation(_E, "get_payment_events", "GET", "/epayment/v1/payments/{reference}/events"),
    Operation(_E, "cancel_payment", "POST", "/epayment/v1/payments/{reference}/cancel"),
    Operation(_E, "capture_payment", "POST", "/epayment/v1/payments/{reference}/capture"),
    Operation(_E, "refund_payment", "POST", "/epayment/v1/payments/{reference}/refund"),
    Operation(_E, "force_approve", "POST", "/epayment/v1/test/payments/{reference}/approve"),
    # eCom API v2 [EC #/paths]
    Operation(_EC, "initiate_payment", "POST", "/ecomm/v2/payments"),
    Operation(_EC, "capture_payment", "POST", "/ecomm/v2/payments/{orderId}/capture"),
    Operation(_EC, "cancel_payment", "PUT", "/ecomm/v2/payments/{orderId}/cancel"),
    Operation(_EC, "refund_payment", "POST", "/ecomm/v2/payments/{orderId}/refund"),
    Operation(
        _EC, "force_approve", "POST", "/ecomm/v2/integration-test/payments/{orderId}/approve"
    ),
    Operation(_EC, "get_payment_details", "GET", "/ecomm/v2/payments/{orderId}/details"),
    Operation(_EC, "get_order_status", "GET", "/ecomm/v2/payments/{orderId}/status", True),
    # Recurring API v3 [RC #/paths]
    Operation(_R, "list_agreements", "GET", "/recurring/v3/agreements"),
    Operation(_R, "draft_agreement", "POST", "/recurring/v3/agreements"),
    Operation(_R, "get_agreement", "GET", "/recurring/v3/agreements/{agreementId}"),
    Operation(_R, "update_agreement", "PATCH", "/recurring/v3/agreements/{agreementId}"),
    Operation(
        _R, "force_accept_agreement", "PATCH", "/recurring/v3/agreements/{agreementId}/accept"
    ),
    Operation(_R, "list_charges", "GET", "/recurring/v3/agreements/{agreementId}/charges"),
    Operation(_R, "create_charge", "POST", "/recurring/v3/agreements/{agreementId}/charges"),
    Operation(_R, "get_charge", "GET", "/recurring/v3/agreements/{agreementId}/charges/{chargeId}"),
    Operation(
        _R, "cancel_charge", "DELETE", "/recurring/v3/agreements/{agreementId}/charges/{chargeId}"
    ),
    Operation(_R, "get_charge_by_id", "GET", "/recurring/v3/charges/{chargeId}"),
    Operation(
        _R,
        "capture_charge",
        "POST",
        "/recurring/v3/agreements/{agreementId}/charges/{chargeId}/capture",
    ),
    Operation(
        _R,
        "refund_charge",
        "POST",
        "/recurring/v3/agreements/{agreementId}/charges/{chargeId}/refund",
    ),
    # Recurring API v2, deprecated but still served [RC #/paths]
    Operation(_R, "list_agreements_v2", "GET", "/recurring/v2/agreements", True),
    Operation(_R, "draft_agreement_v2", "POST", "/recurring/v2/agreements", True),
    Operation(_R, "get_agreement_v2", "GET", "/recurring/v2/agreements/{agreementId}", True),
    Operation(_R, "update_agreement_v2", "PUT", "/recurring/v2/agreements/{agreementId}", True),
    Operation(_R, "patch_agreement_v2", "PATCH", "/recurring/v2/agreements/{agreementId}", True),
    Operation(
        _R,
        "force_accept_agreement_v2",
        "PATCH",
        "/recurring/v2/agreements/{agreementId}/accept",
        True,
    ),
    Operation(_R, "list_charges_v2", "GET", "/recurring/v2/agreements/{agreementId}/charges", True),
    Operation(
        _R, "create_charge_v2", "POST", "/recurring/v2/agreements/{agreementId}/charges", True
    ),
    Operation(
        _R,
        "get_charge_v2",
        "GET",
        "/recurring/v2/agreements/{agreementId}/charges/{chargeId}",
        True,
    ),
    Operation(
        _R,
        "cancel_charge_v2",
        "DELETE",
        "/recurring/v2/agreements/{agreementId}/charges/{chargeId}",
        True,
    ),
    Operation(
        _R,
        "capture_charge_v2",
        "POST",
        "/recurring/v2/agreements/{agreementId}/charges/{chargeId}/capture",
        True,
    ),
    Operation(
        _R,
        "refund_charge_v2",
        "POST",
        "/recurring/v2/agreements/{agreementId}/charges/{chargeId}/refund",
        True,
    ),
    # Checkout API v3 and legacy v2 [CO #/servers, #/paths]
    Operation(_C, "create_session", "POST", "/checkout/v3/session"),
    Operation(_C, "get_session", "GET", "/checkout/v3/session/{reference}"),
    Operation(_C, "create_session_v2", "POST", "/checkout/v2/session", True),
    Operation(_C, "get_session_v2", "GET", "/checkout/v2/session/{sessionId}", True),
    # Order Management API [OM #/paths]
    Operation(_OM, "add_receipt", "POST", "/order-management/v2/{paymentType}/receipts/{orderId}"),
    Operation(
        _OM, "set_category", "PUT", "/order-management/v2/{paymentType}/categories/{orderId}"
    ),
    Operation(_OM, "get_order", "GET", "/order-management/v2/{paymentType}/{orderId}"),
    Operation(_OM, "upload_image", "POST", "/order-management/v1/images"),
    Operation(_OM, "create_category", "POST", "/order-management/v3/categories"),
    Operation(_OM, "list_categories", "GET", "/order-management/v3/categories"),
    Operation(_OM, "get_category", "GET", "/order-management/v3/categories/{categoryId}"),
    Operation(_OM, "delete_category", "DELETE", "/order-management/v3/categories/{categoryId}"),
    Operation(_OM, "put_order_v1", "PUT", "/order-management/v1/orders/{transactionId}", True),
    Operation(_OM, "get_order_v1", "GET", "/order-management/v1/orders/{transactionId}", True),
    Operation(_OM, "get_receipt_v1", "GET", "/order-management/v1/receipts/{transactionId}", True),
    Operation(_OM, "add_receipt_v1", "POST", "/order-management/v1/receipts/{transactionId}", True),
    # Webhooks API v1 [WH #/paths]
    Operation(_WH, "list_webhooks", "GET", "/webhooks/v1/webhooks"),
    Operation(_WH, "register_webhook", "POST", "/webhooks/v1/webhooks"),
    Operation(_WH, "delete_webhook", "DELETE", "/webhooks/v1/webhooks/{id}"),
    # Report API [RP #/paths]
    Operation(_RP, "list_ledgers", "GET", "/settlement/v1/ledgers"),
    Operation(
        _RP, "get_ledger_date", "GET", "/report/v2/ledgers/{ledgerId}/{topic}/dates/{ledgerDate}"
    ),
    Operation(_RP, "get_ledger_feed", "GET", "/report/v2/ledgers/{ledgerId}/{topic}/feed"),
    Operation(_RP, "list_ledger_transactions_v1", "GET", "/report/v1/ledgertransactions", True),
    # Login API [LG #/paths]
    Operation(
        _LG,
        "openid_configuration",
        "GET",
        "/access-management-1.0/access/.well-known/openid-configuration",
    ),
    Operation(_LG, "authorize", "GET", "/access-management-1.0/access/oauth2/auth"),
    Operation(_LG, "fetch_token", "POST", "/access-management-1.0/access/oauth2/token"),
    Operation(_LG, "jwks", "GET", "/access-management-1.0/access/.well-known/jwks.json"),
)

APIS: tuple[str, ...] = tuple(dict.fromkeys(op.api for op in OPERATIONS))

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """The operation a request is, with its path parameters (percent-decoded)."""

    operation: Operation
    params: Mapping[str, str]


UNKNOWN_MATCH = RouteMatch(UNKNOWN, _EMPTY)


def _build_index(ops: tuple[Operation, ...]) -> dict[tuple[str, int], list[Operation]]:
    index: dict[tuple[str, int], list[Operation]] = {}
    for op in ops:
        index.setdefault((op.method, len(op.segments)), []).append(op)
    for bucket in index.values():
        # Literal segments beat parameters: `/v3/charges/{id}` before `/v3/agreements/{id}`
        # never clash, but `/v2/{paymentType}/receipts/{orderId}` must lose to a literal route.
        bucket.sort(key=lambda op: sum(s.startswith("{") for s in op.segments))
    return index


_INDEX = _build_index(OPERATIONS)


def identify(method: str, path: str) -> RouteMatch:
    """Map a method and a raw (still percent-encoded) path to the operation it calls."""
    raw_segments = path.strip("/").split("/") if path.strip("/") else []
    candidates = _INDEX.get((method.upper(), len(raw_segments)))
    if not candidates:
        return UNKNOWN_MATCH
    lowered = [s.lower() for s in raw_segments]
    for op in candidates:
        params: dict[str, str] = {}
        for tmpl, seg, low in zip(op.segments, raw_segments, lowered, strict=True):
            if tmpl.startswith("{"):
                if not seg:
                    break
                params[tmpl[1:-1]] = unquote(seg)
            elif tmpl.lower() != low:
                break
        else:
            return RouteMatch(op, MappingProxyType(params) if params else _EMPTY)
    return UNKNOWN_MATCH


def find(api: str, name: str) -> Operation:
    """The catalogue entry for `api.name` (raises KeyError for a name not in the catalogue)."""
    for op in OPERATIONS:
        if op.api == api and op.name == name:
            return op
    raise KeyError(f"{api}.{name}")
