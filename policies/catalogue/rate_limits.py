"""Vipps' documented per-payment rate limits: how many calls, per what, for each operation.

Vipps answers HTTP 429 when one payment is called too often (facts §11.1, §11.2). The tables:
ePayment [EPDOC operations/README.md §Rate limiting], eCom [ECDOC vipps-ecom-api.md §Rate
limiting], Recurring [RCDOC recurring-api-guide.md §Rate limiting]. The guard that counts them
is `policies.audit.ratelimit`; the catalogue (`policies.catalogue.spec`) keeps each operation's
limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "AGREEMENT",
    "CHARGE",
    "DEFAULT_LIMITS",
    "IDEMPOTENCY",
    "MSN",
    "PAYMENT",
    "SUBSCRIPTION",
    "Limit",
]

# What a limit is counted per (the parts of its key).
PAYMENT, MSN, SUBSCRIPTION = "payment", "msn", "subscription"
AGREEMENT, CHARGE, IDEMPOTENCY = "agreementId", "chargeId", "idempotency"


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `requests` per `window_seconds` for each distinct key made of `per`."""

    requests: int
    window_seconds: float
    per: tuple[str, ...] = (PAYMENT, MSN)

    def __str__(self) -> str:
        return f"{self.requests}/{self.window_seconds:g}"


def _limits(table: dict[str, tuple[int, tuple[str, ...]]]) -> Mapping[str, Limit]:
    return MappingProxyType({op: Limit(n, 60.0, per) for op, (n, per) in table.items()})


DEFAULT_LIMITS: Mapping[str, Limit] = _limits(
    {
        # ePayment: reference + MSN, reads reference + subscription key (facts §11.1).
        "epayment.create_payment": (5, (PAYMENT, MSN)),
        "epayment.capture_payment": (5, (PAYMENT, MSN)),
        "epayment.cancel_payment": (5, (PAYMENT, MSN)),
        "epayment.refund_payment": (5, (PAYMENT, MSN)),
        "epayment.get_payment": (120, (PAYMENT, SUBSCRIPTION)),
        "epayment.get_payment_events": (120, (PAYMENT, SUBSCRIPTION)),
        # eCom: orderId + MSN, reads orderId + subscription key.
        "ecom.initiate_payment": (2, (PAYMENT, MSN)),
        "ecom.cancel_payment": (5, (PAYMENT, MSN)),
        "ecom.capture_payment": (5, (PAYMENT, MSN)),
        "ecom.refund_payment": (5, (PAYMENT, MSN)),
        "ecom.get_order_status": (120, (PAYMENT, SUBSCRIPTION)),
        "ecom.get_payment_details": (120, (PAYMENT, SUBSCRIPTION)),
        # Recurring v3; "per merchant" is the MSN, or the subscription key without one.
        "recurring.create_charge": (2, (AGREEMENT, IDEMPOTENCY)),  # "chargeId (from the key)"
        "recurring.cancel_charge": (5, (AGREEMENT, CHARGE)),
        "recurring.capture_charge": (5, (AGREEMENT, CHARGE)),
        "recurring.refund_charge": (5, (AGREEMENT, CHARGE)),
        "recurring.list_agreements": (5, (MSN, SUBSCRIPTION)),
        "recurring.update_agreement": (5, (AGREEMENT,)),
        "recurring.get_charge": (10, (AGREEMENT, CHARGE)),
        "recurring.get_charge_by_id": (100, (CHARGE, MSN, SUBSCRIPTION)),
        "recurring.list_charges": (10, (AGREEMENT,)),
        "recurring.get_agreement": (120, (AGREEMENT,)),
        "recurring.draft_agreement": (300, (MSN, SUBSCRIPTION)),
    }
)
