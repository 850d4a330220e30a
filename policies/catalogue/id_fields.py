"""Id fields of the Vipps APIs: where each operation names the payment, and the id formats.

Formats from the OpenAPI files: ePayment `reference` [EP #/components/schemas/Reference],
Checkout `transaction.reference` [CO #/components/schemas/PaymentTransaction/properties/reference],
eCom `transaction.orderId` [EC #/components/schemas/TransactionInfoInitiate/properties/orderId],
Recurring charge `orderId` [RC #/components/schemas/CreateChargeV3/properties/orderId] and
Order Management `orderId` [OM #/components/parameters/Order-Id]. The rules that judge them are
in `policies.rules.references`; the catalogue (`policies.catalogue.spec`) gives each operation its
ids.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from policies.core.jsonbody import Path

__all__ = [
    "BODY_IDS",
    "CHECKOUT_REFERENCE",
    "ECHOED_IDS",
    "ECOM_ORDER_ID",
    "EPAYMENT_REFERENCE",
    "ORDER_MANAGEMENT_ORDER_ID",
    "PATH_IDS",
    "RECURRING_ORDER_ID",
    "RECURRING_ORDER_ID_V2",
    "EchoedId",
    "IdFormat",
]


@dataclass(frozen=True, slots=True)
class IdFormat:
    """The format of one kind of id: allowed characters and length, as its spec writes them.

    `whole=False` models a pattern anchored only at its start (Recurring writes
    `^[a-zA-Z\\d-]+` with no `$`): then only the first character is constrained, as a JSON
    Schema validator reads it.
    """

    label: str
    pattern: str
    allowed: str
    min_length: int
    max_length: int | None
    whole: bool = True
    # The `reference.format` condition a value of this format falls under when it is wrong.
    condition: str = ""

    @property
    def expected(self) -> str:
        length = (
            f"{self.min_length}-{self.max_length}"
            if self.max_length is not None
            else f"at least {self.min_length}"
        )
        return f"{length} characters matching {self.pattern} ({self.label})"

    def problem(self, value: str) -> str | None:
        """What is wrong with `value`, or None when it has this format."""
        size = len(value)
        if size == 0:
            return "is empty"
        if size < self.min_length or (self.max_length is not None and size > self.max_length):
            return f"is {size} characters long"
        checked = value if self.whole else value[0]
        bad = sorted(set(re.findall(f"[^{self.allowed}]", checked)))
        if bad:
            return ("starts with " if not self.whole else "contains ") + ", ".join(map(repr, bad))
        return None


EPAYMENT_REFERENCE = IdFormat(
    "ePayment reference", "^[a-zA-Z0-9-]{8,64}$", "a-zA-Z0-9-", 8, 64, condition="epayment"
)
# 8-50 characters, `^[-a-zA-Z0-9]*$` (the pattern alone would allow an empty string).
CHECKOUT_REFERENCE = IdFormat(
    "Checkout reference", "^[-a-zA-Z0-9]*$", "a-zA-Z0-9-", 8, 50, condition="checkout"
)
ECOM_ORDER_ID = IdFormat(
    "eCom orderId", "^[a-zA-Z0-9-]{1,50}$", "a-zA-Z0-9-", 1, 50, condition="ecom"
)
# Unanchored at the end in the spec; v3 adds length 1-50, v2 states no length.
RECURRING_ORDER_ID = IdFormat(
    "Recurring charge orderId",
    "^[a-zA-Z\\d-]+",
    "a-zA-Z0-9-",
    1,
    50,
    whole=False,
    condition="recurring",
)
RECURRING_ORDER_ID_V2 = IdFormat(
    "Recurring charge orderId",
    "^[a-zA-Z\\d-]+",
    "a-zA-Z0-9-",
    1,
    None,
    whole=False,
    condition="recurring",
)
ORDER_MANAGEMENT_ORDER_ID = IdFormat(
    "Order Management orderId",
    "^[0-9A-Za-z-_\\.]+$",
    "0-9A-Za-z_.\\-",
    1,
    None,
    condition="order_management",
)

# Body fields holding the payment's id, per operation (`walk` patterns).
BODY_IDS: Mapping[str, tuple[tuple[Path, IdFormat], ...]] = MappingProxyType(
    {
        "epayment.create_payment": ((("reference",), EPAYMENT_REFERENCE),),
        "checkout.create_session": ((("transaction", "reference"), CHECKOUT_REFERENCE),),
        "checkout.create_session_v2": ((("transaction", "reference"), CHECKOUT_REFERENCE),),
        "ecom.initiate_payment": ((("transaction", "orderId"), ECOM_ORDER_ID),),
        "recurring.create_charge": ((("orderId",), RECURRING_ORDER_ID),),
        "recurring.create_charge_v2": ((("orderId",), RECURRING_ORDER_ID_V2),),
        "order_management.create_category": ((("orderId",), ORDER_MANAGEMENT_ORDER_ID),),
    }
)

# Path parameters holding the payment's id, per operation.
_EPAYMENT_BY_REFERENCE = (
    "get_payment",
    "get_payment_events",
    "cancel_payment",
    "capture_payment",
    "refund_payment",
    "force_approve",
)
_ECOM_BY_ORDER_ID = (
    "capture_payment",
    "cancel_payment",
    "refund_payment",
    "force_approve",
    "get_payment_details",
    "get_order_status",
)
PATH_IDS: Mapping[str, tuple[str, IdFormat]] = MappingProxyType(
    {
        **{f"epayment.{n}": ("reference", EPAYMENT_REFERENCE) for n in _EPAYMENT_BY_REFERENCE},
        **{f"ecom.{n}": ("orderId", ECOM_ORDER_ID) for n in _ECOM_BY_ORDER_ID},
        "checkout.get_session": ("reference", CHECKOUT_REFERENCE),
        **{
            f"order_management.{n}": ("orderId", ORDER_MANAGEMENT_ORDER_ID)
            for n in ("add_receipt", "set_category", "get_order")
        },
    }
)


@dataclass(frozen=True, slots=True)
class EchoedId:
    """A body field some integrations send that names the payment the path already names."""

    param: str
    body_paths: tuple[Path, ...]


# No catalogued operation's spec carries the payment's id in both the path and the body: the
# ePayment, eCom and Recurring modification bodies and the Order Management receipt and
# category bodies name the payment only in the path. Integrations still echo it in the body;
# Vipps ignores the field and acts on the path's payment, so a disagreement is reported.
_EPAYMENT_ECHO = EchoedId("reference", (("reference",),))
_ECOM_ECHO = EchoedId("orderId", (("orderId",), ("transaction", "orderId")))
_RECURRING_ECHO = EchoedId("chargeId", (("chargeId",), ("orderId",)))
_OM_ECHO = EchoedId("orderId", (("orderId",),))
ECHOED_IDS: Mapping[str, EchoedId] = MappingProxyType(
    {
        **{
            f"epayment.{n}": _EPAYMENT_ECHO
            for n in ("cancel_payment", "capture_payment", "refund_payment", "force_approve")
        },
        **{
            f"ecom.{n}": _ECOM_ECHO
            for n in ("capture_payment", "cancel_payment", "refund_payment", "force_approve")
        },
        **{
            f"recurring.{n}": _RECURRING_ECHO
            for n in ("capture_charge", "refund_charge", "capture_charge_v2", "refund_charge_v2")
        },
        **{f"order_management.{n}": _OM_ECHO for n in ("add_receipt", "set_category")},
    }
)
