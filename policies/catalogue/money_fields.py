"""Where the money is: the minor-unit amount fields of each catalogue operation, with their limits.

Every path and limit was read from the official OpenAPI files (`vipps-api-facts.md` §4.2, §5.2,
§6.2, §7, §8): ePayment 1.8.1 [EP], eCom 2.0.3 [EC], Recurring 2.6.17 [RC], Checkout v3 and v2
[CO], Order Management 2.1 [OM]. Patterns use the `walk` syntax of `policies.core.jsonbody`: `*` is
every item of an array. Operations whose bodies hold no amount (cancel, force approve, Recurring
v2 capture, Order Management `put_order_v1`, ...) are absent, so no money rule runs on them.

eCom's `merchantInfo.staticShippingDetails[].shippingCost` is absent on purpose: it is a decimal
amount in NOK by design ("not øre, and different from other amounts" [EC
#/components/schemas/ShippingCost]), so `49.5` there is correct and must never be flagged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from policies.core.jsonbody import JsonValue, Path
from policies.core.model import AuditedRequest

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)

# [EP #/components/schemas/Amount/properties/value]: "NOK 100 øre, DKK 1 øre, EUR 1 cent,
# SEK 100 öre, USD 1 cent, GBP 1 penny"; maximum 65000000 minor units.
EPAYMENT_MINIMUMS: Mapping[str, int] = MappingProxyType(
    {"NOK": 100, "DKK": 1, "EUR": 1, "SEK": 100, "USD": 1, "GBP": 1}
)
EPAYMENT_MAXIMUM = 65_000_000
# The Checkout quick start says "NOK 1 øre, DKK 1 øre, EUR 1 cent"; ePayment (which Checkout runs
# on) says NOK 100. The sources conflict (facts §14.8), so the lower, documented floor holds.
CHECKOUT_MINIMUMS: Mapping[str, int] = MappingProxyType({"NOK": 1, "DKK": 1, "EUR": 1})
# [RC #/components/schemas/pricingRequest/properties/suggestedMaxAmount], written when NOK was
# the only currency; newer (secondary) notes give other caps for DKK and EUR: firm for NOK only.
SUGGESTED_MAX = 2_000_000


@dataclass(frozen=True, slots=True)
class MoneyField:
    """One amount field: where it is, which currency governs it, and the limits its API states.

    `currency` is a pattern like the field's own; its `*` steps take the field's array indices,
    so each shipping option is judged by its own currency. `minimum` is the floor the spec
    states for the field; `currency_minimum` replaces it when the currency is known and listed.
    `maximum` is firm for every currency unless `maximum_currencies` names the only ones it is
    documented for. `main` marks the amount a payment, agreement or charge is for.
    """

    pattern: Path
    source: str
    currency: Path | None = None
    fixed_currency: str | None = None
    minimum: int | None = None
    currency_minimum: Mapping[str, int] = field(default_factory=dict)
    maximum: int | None = None
    maximum_currencies: frozenset[str] | None = None
    main: bool = False

    def currency_path(self, at: Path) -> Path | None:
        """The concrete path of the currency that governs the amount found at `at`."""
        if self.currency is None:
            return None
        indices = iter(step for step, pat in zip(at, self.pattern, strict=True) if pat == "*")
        return tuple(next(indices) if step == "*" else step for step in self.currency)

    def minimum_for(self, currency: str | None) -> int | None:
        """The floor for an amount in `currency` (None when unknown)."""
        if currency is not None and currency in self.currency_minimum:
            return self.currency_minimum[currency]
        return self.minimum


def _path(dotted: str) -> Path:
    return tuple(dotted.split("."))


def _field(
    dotted: str,
    source: str,
    currency: str | None = None,
    *,
    bounds: tuple[int | None, int | None] = (None, None),
    currency_minimum: Mapping[str, int] | None = None,
    maximum_currencies: frozenset[str] | None = None,
    fixed_currency: str | None = None,
    main: bool = False,
) -> MoneyField:
    low, high = bounds
    return MoneyField(
        _path(dotted),
        source,
        _path(currency) if currency else None,
        fixed_currency=fixed_currency,
        minimum=low,
        currency_minimum=currency_minimum or {},
        maximum=high,
        maximum_currencies=maximum_currencies,
        main=main,
    )


def _suggested_max(dotted: str, source: str, currency: str | None = None) -> MoneyField:
    """A variable agreement's suggested cap: 100 to 2 000 000, the cap confirmed for NOK only."""
    return _field(
        dotted,
        source,
        currency,
        bounds=(100, SUGGESTED_MAX),
        maximum_currencies=frozenset({"NOK"}),
    )


def _receipt(prefix: str, source: str) -> tuple[MoneyField, ...]:
    """ePayment `receipt` and Order Management receipts share OrderLine and BottomLine."""
    line, bottom = f"{prefix}orderLines.*.", f"{prefix}bottomLine."
    currency = f"{bottom}currency"
    # The spec gives line totals and payment sources no minimum; the other fields `minimum: 0`.
    unbounded = [f"{line}{n}" for n in ("totalAmount", "totalAmountExcludingTax", "totalTaxAmount")]
    unbounded += [f"{bottom}totalAmount"]
    unbounded += [f"{bottom}paymentSources.{n}" for n in ("giftCard", "card", "voucher", "cash")]
    floored = [f"{line}discount", f"{line}unitInfo.unitPrice"]
    floored += [
        f"{bottom}{n}"
        for n in ("tipAmount", "giftCardAmount", "totalTax", "totalDiscount", "shippingAmount")
    ]
    floored += [f"{bottom}shippingInfo.{n}" for n in ("amount", "amountExcludingTax", "taxAmount")]
    return tuple(_field(p, source, currency) for p in unbounded) + tuple(
        _field(p, source, currency, bounds=(0, None)) for p in floored
    )


_EP = "[EP #/components/schemas/Amount/properties/value]"
_EP_RECEIPT = "[EP #/components/schemas/Receipt]"
_EC = "[EC #/components/schemas/TransactionInfoInitiate/properties/amount]"
_EC_ACTION = "[EC #/components/schemas/Transaction/properties/amount]"
_RC = "[RC #/components/schemas/pricingRequest]"
_RC_CHARGE = "[RC #/components/schemas/CreateChargeV3/properties/amount]"
_RC_ACTION = "[RC #/components/schemas/CaptureRequestV3/properties/amount]"
_RC_PATCH = "[RC #/components/schemas/PricingUpdateRequest]"
_RC2 = "[RC #/components/schemas/DraftAgreementV2]"
_RC2_PATCH = "[RC #/components/schemas/PatchAgreementV2]"
_CO = "[CO #/components/schemas/Amount/properties/value]"
_CO_LINES = "[CO #/components/schemas/OrderSummary]"
_OM = "[OM #/components/schemas/Receipt]"

_MODIFICATION = (
    _field(
        "modificationAmount.value",
        _EP,
        "modificationAmount.currency",
        bounds=(0, EPAYMENT_MAXIMUM),
    ),
)
_ECOM_ACTION = (_field("transaction.amount", _EC_ACTION, bounds=(100, None), fixed_currency="NOK"),)
_RECURRING_ACTION = (_field("amount", _RC_ACTION, bounds=(100, INT32[1])),)
_RECURRING_V2_PATCH = (
    _field("price", _RC2_PATCH, bounds=(0, INT32[1])),
    _suggested_max("suggestedMaxAmount", _RC2_PATCH),
    _field("campaign.campaignPrice", _RC2_PATCH, bounds=INT32),
)

MONEY_FIELDS: Mapping[str, tuple[MoneyField, ...]] = MappingProxyType(
    {
        "epayment.create_payment": (
            _field(
                "amount.value",
                _EP,
                "amount.currency",
                bounds=(0, EPAYMENT_MAXIMUM),
                currency_minimum=EPAYMENT_MINIMUMS,
                main=True,
            ),
            # A shipping option is not a payment: free shipping (0) is fine.
            _field(
                "shipping.fixedOptions.*.options.*.amount.value",
                "[EP #/components/schemas/ShippingOption/properties/amount]",
                "shipping.fixedOptions.*.options.*.amount.currency",
                bounds=(0, EPAYMENT_MAXIMUM),
            ),
            *_receipt("receipt.", _EP_RECEIPT),
        ),
        "epayment.capture_payment": _MODIFICATION,
        "epayment.refund_payment": _MODIFICATION,
        "ecom.initiate_payment": (
            _field("transaction.amount", _EC, bounds=(100, None), fixed_currency="NOK", main=True),
        ),
        "ecom.capture_payment": _ECOM_ACTION,
        "ecom.refund_payment": _ECOM_ACTION,
        "recurring.draft_agreement": (
            _field("pricing.amount", _RC, "pricing.currency", bounds=(100, INT32[1]), main=True),
            _suggested_max("pricing.suggestedMaxAmount", _RC, "pricing.currency"),
            _field(
                "initialCharge.amount",
                "[RC #/components/schemas/InitialChargeV3/properties/amount]",
                "pricing.currency",
                bounds=INT32,
                main=True,
            ),
            _field(
                "campaign.price",
                "[RC #/components/schemas/priceCampaignV3/properties/price]",
                "pricing.currency",
                bounds=INT32,
            ),
        ),
        "recurring.update_agreement": (
            _field("pricing.amount", _RC_PATCH, bounds=(100, INT32[1])),
            _suggested_max("pricing.suggestedMaxAmount", _RC_PATCH),
        ),
        "recurring.create_charge": (
            _field("amount", _RC_CHARGE, bounds=(100, INT32[1]), main=True),
        ),
        "recurring.capture_charge": _RECURRING_ACTION,
        "recurring.refund_charge": _RECURRING_ACTION,
        "recurring.draft_agreement_v2": (
            _field("price", _RC2, "currency", bounds=INT32, main=True),
            _suggested_max("variableAmount.suggestedMaxAmount", _RC2, "currency"),
            _field("campaign.campaignPrice", _RC2, "currency", bounds=INT32),
            _field(
                "initialCharge.amount",
                "[RC #/components/schemas/InitialChargeV2/properties/amount]",
                "initialCharge.currency",
                bounds=INT32,
                main=True,
            ),
        ),
        "recurring.update_agreement_v2": _RECURRING_V2_PATCH,
        "recurring.patch_agreement_v2": _RECURRING_V2_PATCH,
        "recurring.create_charge_v2": (
            _field(
                "amount",
                "[RC #/components/schemas/CreateChargeV2/properties/amount]",
                "currency",
                bounds=(100, INT32[1]),
                main=True,
            ),
        ),
        "recurring.refund_charge_v2": (
            _field(
                "amount",
                "[RC #/components/schemas/RefundRequest/properties/amount]",
                bounds=(100, INT32[1]),
            ),
        ),
        "checkout.create_session": (
            _field(
                "transaction.amount.value",
                _CO,
                "transaction.amount.currency",
                bounds=(0, INT32[1]),
                currency_minimum=CHECKOUT_MINIMUMS,
                main=True,
            ),
            *(
                _field(
                    f"transaction.orderSummary.orderLines.*.{name}",
                    _CO_LINES,
                    "transaction.orderSummary.orderBottomLine.currency",
                    bounds=(0, None),
                )
                for name in (
                    "totalAmount",
                    "totalAmountExcludingTax",
                    "totalTaxAmount",
                    "discount",
                    "unitInfo.unitPrice",
                )
            ),
            *(
                _field(
                    f"transaction.orderSummary.orderBottomLine.{name}",
                    _CO_LINES,
                    "transaction.orderSummary.orderBottomLine.currency",
                )
                for name in (
                    "tipAmount",
                    "giftCardAmount",
                    "paymentSources.giftCard",
                    "paymentSources.card",
                    "paymentSources.voucher",
                    "paymentSources.cash",
                )
            ),
            _field(
                "logistics.fixedOptions.*.amount.value",
                "[CO #/components/schemas/PostenLogisticsOption]",
                "logistics.fixedOptions.*.amount.currency",
                bounds=(0, INT32[1]),
            ),
        ),
        "checkout.create_session_v2": (
            _field(
                "transaction.amount.value",
                "[checkout-v2.yaml #/components/schemas/RequestAmount]",
                "transaction.amount.currency",
                bounds=(0, INT32[1]),
                main=True,
            ),
            _field(
                "logistics.fixedOptions.*.amount.value",
                "[checkout-v2.yaml #/components/schemas/LogisticsOption]",
                "logistics.fixedOptions.*.amount.currency",
                bounds=(0, INT32[1]),
            ),
        ),
        "order_management.add_receipt": _receipt("", _OM),
        "order_management.add_receipt_v1": _receipt("", _OM),
    }
)


def amounts_in(
    request: AuditedRequest, fields: tuple[MoneyField, ...]
) -> Iterator[tuple[MoneyField, Path, JsonValue]]:
    """Every one of `fields` present in the body with a value (null is skipped: it means absent).

    Four rules ask for the same amounts; the body remembers each pattern's walk, so the body
    is walked once per request however many of them run.
    """
    for money in fields:
        for at, value in request.json.walk(money.pattern):
            if value is not None:
                yield money, at, value


def currency_of(request: AuditedRequest, money: MoneyField, at: Path) -> str | None:
    """The currency code governing the amount at `at`, when the request states one as a string."""
    if money.fixed_currency is not None:
        return money.fixed_currency
    path = money.currency_path(at)
    code = request.field(path) if path is not None else None
    return code if isinstance(code, str) else None
