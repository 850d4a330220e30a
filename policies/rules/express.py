"""Advice on eCom express checkout ("Vipps Hurtigkasse"): ask for the explicit checkout flow.

Nothing here blocks: Vipps accepts an express payment without the flag, it only converts worse.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from policies.catalogue.operations import Operation
from policies.catalogue.spec import EXPRESS_PAYMENT, PAYMENT_TYPE, spec_of
from policies.core.jsonbody import Path, encode_value, format_path
from policies.core.model import Action, AuditedRequest, Condition, Finding, Source, describe_value

__all__ = ["ExplicitCheckoutFlow"]

_EXPLICIT_FLOW: Path = ("transaction", "useExplicitCheckoutFlow")


@dataclass(frozen=True, slots=True)
class ExplicitCheckoutFlow:
    """An eCom express payment should set `transaction.useExplicitCheckoutFlow` to true.

    The flag (boolean, default false) gives the newer express flow, where the user confirms
    address and shipping [EC #/components/schemas/TransactionInfoInitiate/properties/
    useExplicitCheckoutFlow]; Vipps' technical newsletter of November 2022 recommends it "to
    reduce drop-off, left shopping carts" [SITE
    https://developer.vippsmobilepay.com/docs/technical-updates/2022-11]. An express
    payment is `merchantInfo.paymentType` = `eComm Express Payment` [EC
    #/components/schemas/MerchantInfo/properties/paymentType]. The findings are advisory: Vipps
    accepts the payment either way.
    """

    code: ClassVar[str] = "express.explicit_flow"
    default_action: ClassVar[Action] = Action.REPORT
    can_repair: ClassVar[bool] = False
    summary: ClassVar[str] = (
        "eCom express payments should set transaction.useExplicitCheckoutFlow to true."
    )
    conditions: ClassVar[tuple[Condition, ...]] = (
        Condition("advice", Action.REPORT, why="advice: Vipps accepts the payment either way"),
    )

    def applies_to(self, operation: Operation) -> bool:
        return spec_of(operation).express

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        if request.field(PAYMENT_TYPE) != EXPRESS_PAYMENT:
            return
        transaction = request.field(_EXPLICIT_FLOW[:1])
        if isinstance(transaction, dict) and _EXPLICIT_FLOW[1] in transaction:
            flag = transaction[_EXPLICIT_FLOW[1]]
            if flag is True:
                return
            problem = (
                "is false, so the express payment uses the old checkout flow"
                if flag is False
                else f"is a JSON {describe_value(flag)}, not the boolean true"
            )
            sent: str | None = encode_value(flag)[:40]
        else:
            problem, sent = "is not set, so the express payment uses the old checkout flow", None
        yield Finding(
            self.code,
            Source.BODY,
            format_path(_EXPLICIT_FLOW),
            problem,
            "true, which Vipps recommends for express checkout (better conversion)",
            sent,
            advisory=True,
            condition="advice",
        )
