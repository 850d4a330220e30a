"""Reference rules: the merchant's id for a payment has the format its API accepts.

Formats from the OpenAPI files: ePayment `reference` [EP #/components/schemas/Reference],
Checkout `transaction.reference` [CO #/components/schemas/PaymentTransaction/properties/reference],
eCom `transaction.orderId` [EC #/components/schemas/TransactionInfoInitiate/properties/orderId],
Recurring charge `orderId` [RC #/components/schemas/CreateChargeV3/properties/orderId] and
Order Management `orderId` [OM #/components/parameters/Order-Id]. References are case-sensitive
[KB orderid.md], so they are compared exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

from policies.evidence import KB_ORDER_ID
from policies.jsonbody import Path, format_path
from policies.model import Action, AuditedRequest, Condition, Evidence, Finding, Source, shown
from policies.operations import Operation

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
    "IdFormat",
    "ReferenceFormat",
    "ReferenceMismatch",
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
# Body ids a request may leave out (Vipps then makes one up): an empty string there is
# treated as Vipps treats it, which no source documents, so it is only reported.
_OPTIONAL_BODY_IDS = frozenset({"recurring.create_charge", "recurring.create_charge_v2"})
_EPAYMENT_REFERENCE_ERROR = Evidence(
    "[SITE https://developer.vippsmobilepay.com/docs/APIs/epayment-api/errors]",
    'ePayment answers 400 "The field Reference must match the regular expression'
    " '^[a-zA-Z0-9-]{8,64}$'.\"",
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
class ReferenceFormat:
    """The payment's id, in the body or the path, has the format its API accepts.

    ePayment `reference` (create body and every `{reference}` path): `^[a-zA-Z0-9-]{8,64}$`.
    Checkout v3 (and v2) `transaction.reference` and the get-session path: 8-50 characters of
    `a-z A-Z 0-9 -`. eCom `transaction.orderId` and every `{orderId}` path:
    `^[a-zA-Z0-9-]{1,50}$`. Recurring create-charge `orderId` (optional): 1-50 characters
    starting with `a-z A-Z 0-9 -` (the spec's pattern has no `$`). Order Management
    `{orderId}` and v3 category `orderId`: `^[0-9A-Za-z-_\\.]+$`. Ids that are null or not
    strings are left to the body-shape rules. Order Management's pattern is a schema keyword
    only, and an empty optional Recurring `orderId` is left to Vipps: both only report.
    """

    code: ClassVar[str] = "reference.format"
    default_action: ClassVar[Action] = Action.BLOCK
    can_repair: ClassVar[bool] = False
    summary: ClassVar[str] = "payment references and orderIds have the format their API accepts"
    conditions: ClassVar[tuple[Condition, ...]] = (
        Condition("epayment", Action.BLOCK, (_EPAYMENT_REFERENCE_ERROR,)),
        Condition(
            "checkout",
            Action.BLOCK,
            (
                KB_ORDER_ID,
                _EPAYMENT_REFERENCE_ERROR,
                Evidence(
                    "[CODOC checkout-api-guide.md §Transaction operations]",
                    "Checkout payments are ePayment payments, captured with the ePayment API",
                ),
            ),
        ),
        Condition("ecom", Action.BLOCK, (KB_ORDER_ID,)),
        Condition(
            "recurring",
            Action.BLOCK,
            (
                KB_ORDER_ID,
                Evidence(
                    "[RCDOC recurring-api-guide.md §orderId recommendations]",
                    "a charge's orderId follows the orderId rules and is unique with eCom's",
                ),
            ),
        ),
        Condition(
            "order_management",
            Action.REPORT,
            why="only the spec's pattern ^[0-9A-Za-z-_\\.]+$",
        ),
        Condition(
            "empty_optional",
            Action.REPORT,
            why="an empty optional orderId: Vipps may treat it as absent and make one up",
        ),
    )

    def applies_to(self, operation: Operation) -> bool:
        return operation.key in BODY_IDS or operation.key in PATH_IDS

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        key = request.operation.key
        if key in PATH_IDS:
            param, fmt = PATH_IDS[key]
            in_path = request.path_params.get(param)
            if in_path is not None:
                yield from self._judge(Source.PATH, param, in_path, fmt)
        if key in BODY_IDS:
            for pattern, fmt in BODY_IDS[key]:
                for at, value in request.json.walk(pattern):
                    if not isinstance(value, str):
                        continue
                    condition = "empty_optional" if not value and key in _OPTIONAL_BODY_IDS else ""
                    yield from self._judge(Source.BODY, format_path(at), value, fmt, condition)

    def _judge(
        self, source: Source, field: str, value: str, fmt: IdFormat, condition: str = ""
    ) -> Iterator[Finding]:
        problem = fmt.problem(value)
        if problem is not None:
            yield Finding(
                self.code,
                source,
                field,
                problem,
                fmt.expected,
                shown(value),
                condition=condition or fmt.condition,
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


@dataclass(frozen=True, slots=True)
class ReferenceMismatch:
    """Where path and body both name the payment, they name the same one.

    None of the specs (ePayment 1.8.1, eCom 2.0.3, Recurring 2.6.17, Checkout v3, Order
    Management 2.1) declares the id in both places for any operation, so today the rule
    covers the id an integration echoes in a modification body (`reference` on ePayment
    capture, `transaction.orderId` on eCom capture, ...). Vipps ignores that field and
    modifies the payment the path names, so the request would succeed: a disagreement means
    the merchant may be capturing, refunding or cancelling another payment than it thinks,
    and is reported as advice, never blocked.
    """

    code: ClassVar[str] = "reference.mismatch"
    default_action: ClassVar[Action] = Action.REPORT
    can_repair: ClassVar[bool] = False
    summary: ClassVar[str] = "a payment id in the body agrees with the one in the path"
    conditions: ClassVar[tuple[Condition, ...]] = (
        Condition("echoed_id", Action.REPORT, why="advice: Vipps acts on the path's payment"),
    )

    def applies_to(self, operation: Operation) -> bool:
        return operation.key in ECHOED_IDS

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        echo = ECHOED_IDS.get(request.operation.key)
        in_path = request.path_params.get(echo.param) if echo is not None else None
        if echo is None or in_path is None:
            return
        for pattern in echo.body_paths:
            for at, value in request.json.walk(pattern):
                if isinstance(value, str) and value != in_path:
                    yield Finding(
                        rule=self.code,
                        source=Source.BODY,
                        field=format_path(at),
                        problem=f"names another payment than the path's {echo.param} "
                        f"{shown(in_path)}",
                        expected=f"the same id as the path, or no {format_path(at)} "
                        "(Vipps acts on the path's payment)",
                        value=shown(value),
                        advisory=True,
                        condition="echoed_id",
                    )
