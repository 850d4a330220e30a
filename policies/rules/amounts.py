"""Rules on money: whole minor units, within Vipps' limits, in a currency the API takes.

Which fields hold money, and the limits each API states, live in `policies.catalogue.money_fields`;
the rules read each operation's fields from its catalogue entry and only judge values, so each rule
runs on exactly the operations that carry money.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import ClassVar

from policies.catalogue.money_fields import (
    INT32,
    INT64,
    MoneyField,
    amounts_in,
    currency_of,
)
from policies.catalogue.operations import Operation
from policies.catalogue.spec import spec_of
from policies.core.jsonbody import JsonValue, Path, encode_value, format_path
from policies.core.model import (
    Action,
    AuditedRequest,
    Condition,
    Evidence,
    Finding,
    Repair,
    Source,
    describe_value,
)
from policies.rules.evidence import (
    EPAYMENT_AMOUNT_INVALID,
    EPAYMENT_AMOUNT_LIMITS,
    EPAYMENT_AMOUNT_TOO_SMALL,
    KB_HTTP_500,
    NEWSLETTER_AMOUNTS,
)

_SHOWN_CHARS = 40
_CURRENCY_CODE = re.compile(r"[A-Z]{3}")
# Every currency any Vipps API takes has two decimals; the name is for messages.
_MINOR_UNITS: Mapping[str, str] = MappingProxyType(
    {"NOK": "øre", "DKK": "øre", "SEK": "öre", "EUR": "cents", "USD": "cents", "GBP": "pence"}
)


def _shown(value: JsonValue) -> str:
    """The value as it was sent, cut to a length that a log line and an error body can carry."""
    text = encode_value(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def _units(amount: int, currency: str | None) -> str:
    """`100 minor units (1.00 NOK)`; the major amount only when the currency is known."""
    if currency not in _MINOR_UNITS:
        return f"{amount} minor units"
    return f"{amount} minor units ({Decimal(amount).scaleb(-2):.2f} {currency})"


def _kind(value: JsonValue) -> str:
    """`a string`, `an object`: the JSON kind of a value with its article, for problems."""
    kind = describe_value(value)
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _as_int64(value: JsonValue) -> int | None:
    """The value when it is a JSON integer within signed 64 bits (a boolean is not)."""
    if isinstance(value, int) and not isinstance(value, bool) and INT64[0] <= value <= INT64[1]:
        return value
    return None


def _whole_amount(value: JsonValue) -> int | None:
    """The whole number a value stands for, within signed 64 bits (a boolean is not one).

    An integral float such as `99.0` counts as 99 here, so that limits and bounds judge the
    number an opt-in repair would forward, not only numbers already written as integers.
    """
    if isinstance(value, Decimal) and value.is_finite() and value.adjusted() < 19:
        if value != value.to_integral_value():
            return None
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and INT64[0] <= value <= INT64[1]:
        return value
    return None


def _finding(
    rule: str,
    at: Path,
    problem: str,
    expected: str,
    value: JsonValue,
    *,
    repair: Repair | None = None,
    advisory: bool = False,
    condition: str,
) -> Finding:
    field = format_path(at)
    return Finding(
        rule,
        Source.BODY,
        field,
        problem,
        expected,
        _shown(value),
        repair,
        advisory,
        condition=condition,
    )


# --- Integers -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AmountIsInteger:
    """Every amount must be a JSON integer of minor units within signed 64 bits.

    Vipps counts money in øre and cents: `49900` is 499.00 NOK [EP
    #/components/schemas/Amount/properties/value]. A decimal point, an exponent, quotes or a
    boolean fail ("Amount invalid ... must be integers, no decimals" [EPDOC faq.md]; eCom answers
    HTTP 500 [KB errors.md §HTTP 500]; amounts ending in `.0000001` fail initiate, capture and
    refund [technical newsletter 2022-11]). The repair writes an integral number such as `49900.0`
    or `4.99E+4` as the integer it already is; it never rounds, so nothing else is repaired.
    """

    code: ClassVar[str] = "amount.not_integer"
    default_action: ClassVar[Action] = Action.BLOCK
    can_repair: ClassVar[bool] = True
    summary: ClassVar[str] = (
        'Amounts must be whole JSON integers of minor units (49900, not 49900.0 or "49900").'
    )
    conditions: ClassVar[tuple[Condition, ...]] = (
        Condition("fraction", Action.BLOCK, (NEWSLETTER_AMOUNTS, EPAYMENT_AMOUNT_INVALID)),
        Condition("integral_float", Action.BLOCK, (EPAYMENT_AMOUNT_INVALID, KB_HTTP_500)),
        Condition("not_a_number", Action.BLOCK, (EPAYMENT_AMOUNT_INVALID, KB_HTTP_500)),
        Condition(
            "out_of_range",
            Action.BLOCK,
            (
                EPAYMENT_AMOUNT_INVALID,
                Evidence(
                    "[EP #/components/schemas/Amount/properties/value]",
                    "amounts are int64 (format) and at most 65 000 000 (description)",
                ),
            ),
        ),
    )

    def applies_to(self, operation: Operation) -> bool:
        return bool(spec_of(operation).money)

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        for money, at, value in amounts_in(request, spec_of(request.operation).money):
            if _as_int64(value) is not None:
                continue
            problem, whole, condition = _not_an_integer(value)
            expected = _integer_expected(currency_of(request, money, at))
            repair = Repair(at, whole) if whole is not None else None
            yield _finding(
                self.code, at, problem, expected, value, repair=repair, condition=condition
            )


def _not_an_integer(value: JsonValue) -> tuple[str, int | None, str]:
    """What is wrong with an amount that is not an int64, the exact integer it is, if any, and
    the condition it falls under."""
    out_of_range = "is outside the signed 64-bit integer range"
    if isinstance(value, int) and not isinstance(value, bool):
        return out_of_range, None, "out_of_range"
    if isinstance(value, Decimal) and value.is_finite():
        # Before int(): `1E+999999999` is integral, and int() of it would not finish.
        if value.adjusted() >= 19:
            return out_of_range, None, "out_of_range"
        if value == value.to_integral_value():
            whole = int(value)
            if INT64[0] <= whole <= INT64[1]:
                return "is a float, not an integer", whole, "integral_float"
            return out_of_range, None, "out_of_range"
        return f"is {_kind(value)}, not an integer", None, "fraction"
    return f"is {_kind(value)}, not an integer", None, "not_a_number"


def _integer_expected(currency: str | None) -> str:
    code = currency if currency is not None and currency in _MINOR_UNITS else "NOK"
    return f"an integer number of minor units ({_MINOR_UNITS[code]}), e.g. 49900 for 499.00 {code}"


# --- Limits ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AmountWithinLimits:
    """Every integer amount must lie within the minimum and maximum its API documents.

    ePayment: a payment is at least NOK 100 øre, SEK 100 öre, DKK/EUR/USD/GBP 1 minor unit, and
    any Amount at most 65 000 000 [EP #/components/schemas/Amount/properties/value]; shipping
    options, captures and refunds only have the schema's floor of 0. eCom: at least 100 øre [EC
    #/components/schemas/TransactionInfoInitiate/properties/amount]. Recurring: at least 100 where
    the spec says so, `suggestedMaxAmount` at most 2 000 000, int32 elsewhere [RC
    #/components/schemas/pricingRequest]. Checkout: at least 1 minor unit (quick start; ePayment's
    NOK 100 conflicts, facts §14.8), int32 [CO #/components/schemas/Amount]. Receipt lines only
    have the `minimum: 0` their schema states. A maximum documented only for some currencies is
    advisory for the others. Non-integers are `amount.not_integer`'s business.
    """

    code: ClassVar[str] = "amount.limits"
    default_action: ClassVar[Action] = Action.BLOCK
    can_repair: ClassVar[bool] = False
    summary: ClassVar[str] = (
        "Amounts must be within the minimum and maximum Vipps documents per API and currency."
    )
    conditions: ClassVar[tuple[Condition, ...]] = (
        Condition(
            "minimum",
            Action.BLOCK,
            (
                EPAYMENT_AMOUNT_TOO_SMALL,
                EPAYMENT_AMOUNT_LIMITS,
                Evidence(
                    "[ECDOC vipps-ecom-api.md §Initiate]",
                    'amounts "must be in NOK, be non-zero and larger than 1 NOK"',
                ),
                Evidence(
                    "[KB payments.md §testing in production], [RC #/components/schemas/"
                    "CreateChargeV3/properties/amount]",
                    "1 NOK is the smallest amount; Recurring charges state minimum 100",
                ),
                Evidence(
                    "[SITE https://developer.vippsmobilepay.com/docs/APIs/checkout-api/"
                    "checkout-api-quick-start/]",
                    'Checkout\'s minimum amounts are "NOK 1 øre, DKK 1 øre, EUR 1 cent"',
                ),
            ),
        ),
        Condition(
            "negative",
            Action.REPORT,
            why="below zero where the spec states only `minimum: 0` (receipt lines, shipping,"
            " captures and refunds) and no refusal is documented",
        ),
        Condition(
            "maximum",
            Action.BLOCK,
            (
                EPAYMENT_AMOUNT_LIMITS,
                Evidence(
                    "[RCDOC recurring-api-guide.md §Amount limits], [RCDOC"
                    " recurring-api-problems.md]",
                    "a variable agreement's suggestedMaxAmount is at most 20 000 NOK; problem"
                    " type invalid-suggested-max-amount",
                ),
            ),
        ),
        Condition(
            "int32",
            Action.REPORT,
            why="above 2 147 483 647 where only the schema's `format: int32` sets a ceiling",
        ),
        Condition(
            "maximum_other_currency",
            Action.REPORT,
            why="advice: the maximum is documented for other currencies only",
        ),
    )

    def applies_to(self, operation: Operation) -> bool:
        return bool(spec_of(operation).money)

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        for money, at, value in amounts_in(request, spec_of(request.operation).money):
            amount = _whole_amount(value)
            if amount is None:
                continue
            currency = currency_of(request, money, at)
            finding = self._judge(money, at, amount, currency)
            if finding is not None:
                yield finding

    def _judge(
        self, money: MoneyField, at: Path, amount: int, currency: str | None
    ) -> Finding | None:
        floor = money.minimum_for(currency)
        if floor is not None and amount < floor:
            per = f" for {currency}" if currency in money.currency_minimum else ""
            problem = f"is below the minimum the API accepts{per}"
            expected = f"at least {_units(floor, currency)}"
            # A floor of 0 is the schema's `minimum: 0` alone; above it, Vipps documents it.
            condition = "minimum" if floor > 0 else "negative"
            return _finding(self.code, at, problem, expected, amount, condition=condition)
        ceiling = money.maximum
        if ceiling is None or amount <= ceiling:
            return None
        firm_for = money.maximum_currencies
        if firm_for is None or currency in firm_for:
            expected = f"at most {_units(ceiling, currency)}"
            condition = "int32" if ceiling == INT32[1] else "maximum"
            problem = "is above the maximum the API accepts"
            return _finding(self.code, at, problem, expected, amount, condition=condition)
        # Documented for some currencies only: Vipps may accept more in this one.
        which = currency if currency is not None else "a currency the request does not state"
        problem = (
            f"is above the maximum documented for {', '.join(sorted(firm_for))}, not for {which}"
        )
        expected = f"at most {_units(ceiling, None)} where that maximum applies"
        return _finding(
            self.code,
            at,
            problem,
            expected,
            amount,
            advisory=True,
            condition="maximum_other_currency",
        )


# --- Currencies -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CurrencyPolicy:
    """Which currency codes one API takes; `tolerated` codes are only reported (sources differ)."""

    api: str
    accepted: frozenset[str]
    expected: str
    card_passthrough_only: frozenset[str] = frozenset()
    tolerated: frozenset[str] = frozenset()
    any_well_formed_tolerated: bool = False

    def tolerates(self, code: str) -> bool:
        return code in self.tolerated or (
            self.any_well_formed_tolerated and _CURRENCY_CODE.fullmatch(code) is not None
        )


_NOK_DKK_EUR = frozenset({"NOK", "DKK", "EUR"})
_CURRENCY_POLICIES: Mapping[str, CurrencyPolicy] = MappingProxyType(
    {
        # [EP #/components/schemas/Currency]: SEK, USD and GBP only for CARD_PASSTHROUGH payments.
        "epayment": CurrencyPolicy(
            "ePayment",
            _NOK_DKK_EUR,
            "NOK, DKK or EUR (SEK, USD or GBP only when paymentMethod.type is CARD_PASSTHROUGH)",
            card_passthrough_only=frozenset({"SEK", "USD", "GBP"}),
        ),
        # [RC #/components/schemas/CurrencyV3] says NOK only (2023); newer docs add DKK and EUR.
        "recurring": CurrencyPolicy("Recurring", _NOK_DKK_EUR, "NOK, DKK or EUR"),
        # [CO #/components/schemas/Amount/properties/currency] is a free string; the text names
        # NOK now and EUR, DKK, SEK to come. Other well-formed codes are left for Vipps to judge.
        "checkout": CurrencyPolicy(
            "Checkout",
            _NOK_DKK_EUR | {"SEK"},
            "an ISO 4217 code in capitals: NOK, DKK, EUR or SEK",
            any_well_formed_tolerated=True,
        ),
        # [OM #/components/schemas/CurrencyEnum] is NOK, DKK, EUR; ePayment 1.8.1 payments may be
        # in SEK, USD or GBP, and their receipts go here, so those are only reported.
        "order_management": CurrencyPolicy(
            "Order Management",
            _NOK_DKK_EUR,
            "NOK, DKK or EUR",
            tolerated=frozenset({"SEK", "USD", "GBP"}),
        ),
    }
)


def accepted_currencies(api: str) -> frozenset[str] | None:
    """The codes `amount.currency` passes without a finding for `api` (None: no policy)."""
    policy = _CURRENCY_POLICIES.get(api)
    return policy.accepted if policy is not None else None


@dataclass(frozen=True, slots=True)
class CurrencyAllowed:
    """Every currency code that governs an amount must be one the API takes.

    ePayment 1.8.1: NOK, DKK, EUR; SEK, USD and GBP only for `CARD_PASSTHROUGH` payments [EP
    #/components/schemas/Currency] (a capture or refund cannot tell, so they pass there).
    Recurring: the 2023 spec says NOK [RC #/components/schemas/CurrencyV3], newer docs add DKK
    and EUR, so all three pass. Checkout: a free string [CO #/components/schemas/Amount]; only a
    code that is not three capital letters is blocked, a well-formed code outside NOK, DKK, EUR,
    SEK is reported. Order Management: NOK, DKK, EUR [OM #/components/schemas/CurrencyEnum].
    eCom has no currency field (NOK only). Null is left to the shape rules.
    """

    code: ClassVar[str] = "amount.currency"
    default_action: ClassVar[Action] = Action.BLOCK
    can_repair: ClassVar[bool] = False
    summary: ClassVar[str] = (
        "Currency codes must be ones the API accepts (ePayment: NOK, DKK, EUR; ...)."
    )
    conditions: ClassVar[tuple[Condition, ...]] = (
        Condition(
            "card_passthrough_only",
            Action.BLOCK,
            (
                Evidence(
                    "[EP #/components/schemas/Amount/properties/value]",
                    '"SEK, USD, and GBP are only supported for CARD_PASSTHROUGH payments"',
                ),
            ),
        ),
        Condition(
            "unsupported",
            Action.BLOCK,
            (
                Evidence(
                    "[SITE https://developer.vippsmobilepay.com/docs/knowledge-base/across-borders]",
                    "the currency must match the country where the sales unit is registered",
                ),
                Evidence(
                    "[EP #/components/schemas/Currency], [RC #/components/schemas/CurrencyV3],"
                    " [OM #/components/schemas/CurrencyEnum]",
                    "each API names the currencies it supports (NOK, DKK, EUR)",
                ),
            ),
        ),
        Condition(
            "malformed",
            Action.REPORT,
            why="not three capital letters (`nok`, a number): only the schema's enum or type;"
            " an enum may be read ignoring case",
        ),
        Condition(
            "undocumented",
            Action.REPORT,
            why="advice: a well-formed code the API does not document but may accept",
        ),
    )

    def applies_to(self, operation: Operation) -> bool:
        return bool(spec_of(operation).currencies) and operation.api in _CURRENCY_POLICIES

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        policy = _CURRENCY_POLICIES.get(request.api)
        if policy is None:
            return
        for pattern in spec_of(request.operation).currencies:
            for at, value in request.json.walk(pattern):
                finding = self._judge(policy, request, at, value)
                if finding is not None:
                    yield finding

    def _judge(
        self, policy: CurrencyPolicy, request: AuditedRequest, at: Path, value: JsonValue
    ) -> Finding | None:
        if value is None or (isinstance(value, str) and value in policy.accepted):
            return None
        if not isinstance(value, str):
            problem, condition = f"is {_kind(value)}, not a currency code", "malformed"
        elif value in policy.card_passthrough_only:
            method = request.field(("paymentMethod", "type"))
            if request.operation.name != "create_payment" or method == "CARD_PASSTHROUGH":
                return None
            shown = method if isinstance(method, str) else "WALLET"
            problem = f"is accepted only for CARD_PASSTHROUGH payments, not {shown}"
            condition = "card_passthrough_only"
        elif policy.tolerates(value):
            problem = f"is not a currency the {policy.api} API documents"
            return _finding(
                self.code,
                at,
                problem,
                policy.expected,
                value,
                advisory=True,
                condition="undocumented",
            )
        else:
            problem = f"is not a currency the {policy.api} API accepts"
            condition = "unsupported" if _CURRENCY_CODE.fullmatch(value) else "malformed"
        return _finding(self.code, at, problem, policy.expected, value, condition=condition)


# --- House bounds ---------------------------------------------------------------------------

_BOUNDS_FORM = (
    "CURRENCY=MIN..MAX in minor units, comma-separated, e.g. NOK=1000..10000000,EUR=100..1000000"
)
_BOUND = re.compile(r"\s*([A-Za-z]*)\s*=\s*(\d+)\s*\.\.\s*(\d+)\s*")


def parse_bounds(text: str) -> dict[str, tuple[int, int]]:
    """Read a setting like `NOK=1000..10000000,EUR=100..1000000`; an empty text is no bounds.

    Raises ValueError naming the bad part and the expected form.
    """
    bounds: dict[str, tuple[int, int]] = {}
    if not text.strip():
        return bounds
    for part in text.split(","):
        match = _BOUND.fullmatch(part)
        if match is None:
            raise ValueError(
                f"amount bounds: cannot read {part.strip()!r}; expected {_BOUNDS_FORM}"
            )
        currency, low, high = match[1], int(match[2]), int(match[3])
        if not _CURRENCY_CODE.fullmatch(currency):
            raise ValueError(
                f"amount bounds: {part.strip()!r} needs a currency of three capital letters "
                f"such as NOK; expected {_BOUNDS_FORM}"
            )
        if low > high:
            raise ValueError(
                f"amount bounds: {part.strip()!r} has its minimum above its maximum; "
                f"expected {_BOUNDS_FORM}"
            )
        if currency in bounds:
            raise ValueError(f"amount bounds: {currency} is given twice; expected {_BOUNDS_FORM}")
        bounds[currency] = (low, high)
    return bounds


@dataclass(frozen=True, slots=True)
class AmountBounds:
    """A house rule: the main amount of a payment, agreement or charge lies in a set range.

    Catches the x100 mistake (kroner sent as øre, or øre as kroner) that Vipps itself accepts.
    `bounds` maps a currency to an inclusive (min, max) in minor units; an amount in a currency
    without bounds, or with no currency in the request (Recurring v3 charges, whose currency is
    the agreement's), is not checked. Receipt lines, shipping, captures and refunds never are.
    """

    code: ClassVar[str] = "amount.bounds"
    default_action: ClassVar[Action] = Action.REPORT
    can_repair: ClassVar[bool] = False
    summary: ClassVar[str] = (
        "Main payment amounts must lie in the configured per-currency range (the x100 mistake)."
    )
    conditions: ClassVar[tuple[Condition, ...]] = (
        Condition(
            "house_range",
            Action.REPORT,
            why="a house rule: Vipps accepts such amounts; the range is the operator's own",
        ),
    )

    bounds: Mapping[str, tuple[int, int]]

    def __post_init__(self) -> None:
        for currency, (low, high) in self.bounds.items():
            if low > high:
                raise ValueError(
                    f"amount bounds for {currency}: minimum {low} above maximum {high}"
                )
        object.__setattr__(self, "bounds", MappingProxyType(dict(self.bounds)))

    def applies_to(self, operation: Operation) -> bool:
        return bool(self.bounds) and any(f.main for f in spec_of(operation).money)

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        for money, at, value in amounts_in(request, spec_of(request.operation).money):
            amount = _whole_amount(value)
            if not money.main or amount is None:
                continue
            currency = currency_of(request, money, at)
            if currency is None or currency not in self.bounds:
                continue
            low, high = self.bounds[currency]
            if not low <= amount <= high:
                unit = _MINOR_UNITS.get(currency, "minor units")
                problem = (
                    f"is outside the range set for {currency} amounts, which suggests "
                    f"whole {currency} sent as {unit} or the reverse"
                )
                expected = f"between {_units(low, currency)} and {_units(high, currency)}"
                yield _finding(self.code, at, problem, expected, amount, condition="house_range")
