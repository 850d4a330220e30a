"""Rules on money: whole minor units, within Vipps' limits, in a currency the API takes.

Which fields hold money, and the limits each API states, live in `policies.money_fields`; the
rules here only judge values, so each rule runs on exactly the operations that carry money.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from policies.jsonbody import JsonValue, Path, encode_value, format_path
from policies.model import Action, AuditedRequest, Finding, Repair, Source, describe_value
from policies.money_fields import (
    CURRENCY_FIELDS,
    INT64,
    MONEY_FIELDS,
    MoneyField,
    amounts_in,
    currency_of,
)
from policies.operations import Operation

_SHOWN_CHARS = 40
_CURRENCY_CODE = re.compile(r"[A-Z]{3}")
# Every currency any Vipps API takes has two decimals; the name is for messages.
_MINOR_UNITS: Mapping[str, str] = MappingProxyType(
    {"NOK": "øre", "DKK": "øre", "SEK": "öre", "EUR": "cents", "USD": "cents", "GBP": "pence"}
)
_MAIN_OPERATIONS = frozenset(k for k, fields in MONEY_FIELDS.items() if any(f.main for f in fields))


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
) -> Finding:
    field = format_path(at)
    return Finding(rule, Source.BODY, field, problem, expected, _shown(value), repair, advisory)


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

    code = "amount.not_integer"
    default_action = Action.BLOCK
    can_repair = True
    summary = 'Amounts must be whole JSON integers of minor units (49900, not 49900.0 or "49900").'

    def applies_to(self, operation: Operation) -> bool:
        return operation.key in MONEY_FIELDS

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        for money, at, value in amounts_in(request):
            if _as_int64(value) is not None:
                continue
            problem, whole = _not_an_integer(value)
            expected = _integer_expected(currency_of(request, money, at))
            repair = Repair(at, whole) if whole is not None else None
            yield _finding(self.code, at, problem, expected, value, repair=repair)


def _not_an_integer(value: JsonValue) -> tuple[str, int | None]:
    """What is wrong with an amount that is not an int64, and the exact integer it is, if any."""
    out_of_range = "is outside the signed 64-bit integer range"
    if isinstance(value, int) and not isinstance(value, bool):
        return out_of_range, None
    if isinstance(value, Decimal) and value.is_finite():
        # Before int(): `1E+999999999` is integral, and int() of it would not finish.
        if value.adjusted() >= 19:
            return out_of_range, None
        if value == value.to_integral_value():
            whole = int(value)
            if INT64[0] <= whole <= INT64[1]:
                return "is a float, not an integer", whole
            return out_of_range, None
    return f"is {_kind(value)}, not an integer", None


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

    code = "amount.limits"
    default_action = Action.BLOCK
    can_repair = False
    summary = "Amounts must be within the minimum and maximum Vipps documents per API and currency."

    def applies_to(self, operation: Operation) -> bool:
        return operation.key in MONEY_FIELDS

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        for money, at, value in amounts_in(request):
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
            return _finding(self.code, at, problem, f"at least {_units(floor, currency)}", amount)
        ceiling = money.maximum
        if ceiling is None or amount <= ceiling:
            return None
        firm_for = money.maximum_currencies
        if firm_for is None or currency in firm_for:
            expected = f"at most {_units(ceiling, currency)}"
            return _finding(self.code, at, "is above the maximum the API accepts", expected, amount)
        # Documented for some currencies only: Vipps may accept more in this one.
        which = currency if currency is not None else "a currency the request does not state"
        problem = (
            f"is above the maximum documented for {', '.join(sorted(firm_for))}, not for {which}"
        )
        expected = f"at most {_units(ceiling, None)} where that maximum applies"
        return _finding(self.code, at, problem, expected, amount, advisory=True)


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

    code = "amount.currency"
    default_action = Action.BLOCK
    can_repair = False
    summary = "Currency codes must be ones the API accepts (ePayment: NOK, DKK, EUR; ...)."

    def applies_to(self, operation: Operation) -> bool:
        return operation.key in CURRENCY_FIELDS and operation.api in _CURRENCY_POLICIES

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        policy = _CURRENCY_POLICIES.get(request.api)
        if policy is None:
            return
        for pattern in CURRENCY_FIELDS.get(request.operation.key, ()):
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
            problem = f"is {_kind(value)}, not a currency code"
        elif value in policy.card_passthrough_only:
            method = request.field(("paymentMethod", "type"))
            if request.operation.name != "create_payment" or method == "CARD_PASSTHROUGH":
                return None
            shown = method if isinstance(method, str) else "WALLET"
            problem = f"is accepted only for CARD_PASSTHROUGH payments, not {shown}"
        elif policy.tolerates(value):
            problem = f"is not a currency the {policy.api} API documents"
            return _finding(self.code, at, problem, policy.expected, value, advisory=True)
        else:
            problem = f"is not a currency the {policy.api} API accepts"
        return _finding(self.code, at, problem, policy.expected, value)


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

    bounds: Mapping[str, tuple[int, int]]

    code = "amount.bounds"
    default_action = Action.REPORT
    can_repair = False
    summary = (
        "Main payment amounts must lie in the configured per-currency range (the x100 mistake)."
    )

    def __post_init__(self) -> None:
        for currency, (low, high) in self.bounds.items():
            if low > high:
                raise ValueError(
                    f"amount bounds for {currency}: minimum {low} above maximum {high}"
                )
        object.__setattr__(self, "bounds", MappingProxyType(dict(self.bounds)))

    def applies_to(self, operation: Operation) -> bool:
        return bool(self.bounds) and operation.key in _MAIN_OPERATIONS

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        for money, at, value in amounts_in(request):
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
                yield _finding(self.code, at, problem, expected, amount)
