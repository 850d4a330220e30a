"""Reference rules: the merchant's id for a payment has the format its API accepts.

Formats from the OpenAPI files: ePayment `reference` [EP #/components/schemas/Reference],
Checkout `transaction.reference` [CO #/components/schemas/PaymentTransaction/properties/reference],
eCom `transaction.orderId` [EC #/components/schemas/TransactionInfoInitiate/properties/orderId],
Recurring charge `orderId` [RC #/components/schemas/CreateChargeV3/properties/orderId] and
Order Management `orderId` [OM #/components/parameters/Order-Id]. References are case-sensitive
[KB orderid.md], so they are compared exactly. Which field holds which id, and the formats, are
in `policies.catalogue.id_fields`; each operation's ids come from its catalogue entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from policies.catalogue.id_fields import (
    IdFormat,
)
from policies.catalogue.operations import Operation
from policies.catalogue.spec import spec_of
from policies.core.jsonbody import format_path
from policies.core.model import Action, AuditedRequest, Condition, Evidence, Finding, Source, shown
from policies.rules.evidence import KB_ORDER_ID

__all__ = ["ReferenceFormat", "ReferenceMismatch"]


# Body ids a request may leave out (Vipps then makes one up): an empty string there is
# treated as Vipps treats it, which no source documents, so it is only reported.
_OPTIONAL_BODY_IDS = frozenset({"recurring.create_charge", "recurring.create_charge_v2"})
_EPAYMENT_REFERENCE_ERROR = Evidence(
    "[SITE https://developer.vippsmobilepay.com/docs/APIs/epayment-api/errors]",
    'ePayment answers 400 "The field Reference must match the regular expression'
    " '^[a-zA-Z0-9-]{8,64}$'.\"",
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
        spec = spec_of(operation)
        return bool(spec.body_ids) or spec.path_id is not None

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        spec = spec_of(request.operation)
        if spec.path_id is not None:
            param, fmt = spec.path_id
            in_path = request.path_params.get(param)
            if in_path is not None:
                yield from self._judge(Source.PATH, param, in_path, fmt)
        optional = request.operation.key in _OPTIONAL_BODY_IDS
        for pattern, fmt in spec.body_ids:
            for at, value in request.json.walk(pattern):
                if not isinstance(value, str):
                    continue
                condition = "empty_optional" if not value and optional else ""
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
class ReferenceMismatch:
    """Where path and body both name the payment, they name the same one.

    None of the specs (ePayment 1.8.1, eCom 2.0.3, Recurring 2.6.17, Checkout v3, Order
    Management 2.1) declares the id in both places for any operation, so today the rule
    covers the id an integration echoes in a modification body (`reference` on ePayment
    capture, `transaction.orderId` on eCom capture, ...). Vipps ignores that field and
    modifies the payment the path names, so the request would succeed: a disagreement means
    the merchant may be capturing, refunding or cancelling another payment than it thinks.
    The findings are advisory, so they never block: with any action but `off` (its `block`
    default included) and in any mode that runs rules, they are recorded as reported.
    """

    code: ClassVar[str] = "reference.mismatch"
    default_action: ClassVar[Action] = Action.REPORT
    can_repair: ClassVar[bool] = False
    summary: ClassVar[str] = "a payment id in the body agrees with the one in the path"
    conditions: ClassVar[tuple[Condition, ...]] = (
        Condition("echoed_id", Action.REPORT, why="advice: Vipps acts on the path's payment"),
    )

    def applies_to(self, operation: Operation) -> bool:
        return spec_of(operation).echoed_id is not None

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        echo = spec_of(request.operation).echoed_id
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
