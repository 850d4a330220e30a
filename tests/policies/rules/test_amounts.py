"""Tests for the money rules: whole minor units, Vipps' limits, currencies and house bounds."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.catalogue.money_fields import MONEY_FIELDS
from policies.catalogue.operations import OPERATIONS, find
from policies.core.engine import PolicyConfigError, PolicyEngine, resolve_actions
from policies.core.jsonbody import Path, format_path, walk
from policies.core.model import (
    Action,
    AuditedRequest,
    Finding,
    Outcome,
    Repair,
    Rule,
    Verdict,
    audited_request,
)
from policies.rules.amounts import (
    AmountBounds,
    AmountIsInteger,
    AmountWithinLimits,
    CurrencyAllowed,
    parse_bounds,
)
from tests.samples import VALID as SAMPLES

Body = dict[str, Any]

# The operations that carry money, from the specs; their valid bodies are the shared samples,
# which hold every money field of each.
MONEY_OPERATIONS = (
    "epayment.create_payment",
    "epayment.capture_payment",
    "epayment.refund_payment",
    "ecom.initiate_payment",
    "ecom.capture_payment",
    "ecom.refund_payment",
    "recurring.draft_agreement",
    "recurring.update_agreement",
    "recurring.create_charge",
    "recurring.capture_charge",
    "recurring.refund_charge",
    "recurring.draft_agreement_v2",
    "recurring.update_agreement_v2",
    "recurring.patch_agreement_v2",
    "recurring.create_charge_v2",
    "recurring.refund_charge_v2",
    "checkout.create_session",
    "checkout.create_session_v2",
    "order_management.add_receipt",
    "order_management.add_receipt_v1",
)
VALID: dict[str, tuple[str, str, Body]] = {
    key: (SAMPLES[key].method, SAMPLES[key].path, SAMPLES[key].json) for key in MONEY_OPERATIONS
}

BOUNDS = {"NOK": (1000, 10_000_000)}


def _steps(dotted: str) -> Path:
    """`receipt.orderLines.0.totalAmount` as a body path (digits are array indices)."""
    return tuple(int(step) if step.isdigit() else step for step in dotted.split("."))


def request_with(key: str, changes: dict[str, str] | None = None) -> AuditedRequest:
    """The valid request of `key`, with each JSON text of `changes` written verbatim at its path."""
    method, path, body = VALID[key]
    changed = copy.deepcopy(body)
    placeholders: dict[str, str] = {}
    for number, (dotted, raw) in enumerate((changes or {}).items()):
        *parents, last = _steps(dotted)
        node: Any = changed
        for step in parents:
            node = node[step]
        node[last] = placeholder = f"__value_under_test_{number}__"
        placeholders[json.dumps(placeholder)] = raw
    text = json.dumps(changed)
    for placeholder, raw in placeholders.items():
        text = text.replace(placeholder, raw)
    return audited_request(method, path, [], text.encode())


def _dotted(at: Path) -> str:
    """A body path written the way `request_with` takes it."""
    return ".".join(map(str, at))


def all_rules() -> list[Rule]:
    """The four money rules, the house bounds set to `BOUNDS`."""
    return [AmountIsInteger(), AmountWithinLimits(), CurrencyAllowed(), AmountBounds(BOUNDS)]


def findings(rule: Rule, request: AuditedRequest) -> list[Finding]:
    """The rule's findings for a request it applies to."""
    assert rule.applies_to(request.operation)
    return list(rule.check(request))


def only(rule: Rule, request: AuditedRequest) -> Finding:
    """The rule's single finding for the request."""
    found = findings(rule, request)
    assert len(found) == 1, [f.message for f in found]
    return found[0]


# Every money field of every covered operation, at its first place in the valid body.
MONEY_PLACES: list[tuple[str, Path]] = [
    (key, walk(VALID[key][2], money.pattern)[0][0])
    for key, fields in MONEY_FIELDS.items()
    for money in fields
]


# --- The table ------------------------------------------------------------------------------


def test_table_names_catalogue_operations_and_each_has_a_valid_body() -> None:
    """Every operation of the money table is in the catalogue and has a valid body here."""
    assert set(VALID) == set(MONEY_FIELDS)
    for key, (method, _, _) in VALID.items():
        api, name = key.split(".")
        assert request_with(key).operation is find(api, name)
        assert method == find(api, name).method


@pytest.mark.parametrize("key", sorted(MONEY_FIELDS))
def test_valid_body_holds_every_money_field(key: str) -> None:
    """Each valid body carries every money field of its operation, so the cases reach them all."""
    for money in MONEY_FIELDS[key]:
        assert walk(VALID[key][2], money.pattern), money.pattern


@pytest.mark.parametrize("key", sorted(MONEY_FIELDS))
def test_valid_bodies_give_no_findings(key: str) -> None:
    """A valid body gives no finding from any money rule."""
    request = request_with(key)
    for rule in all_rules():
        if rule.applies_to(request.operation):
            assert list(rule.check(request)) == [], rule.code


@pytest.mark.parametrize(
    "raw", [pytest.param(b"", id="empty"), pytest.param(b'{"amount": ', id="not-json")]
)
def test_request_without_a_parsed_body_gives_no_findings(raw: bytes) -> None:
    """Without a parsed body there is no amount to judge; the body rules report that instead."""
    request = audited_request("POST", "/epayment/v1/payments", [], raw)
    for rule in all_rules():
        assert list(rule.check(request)) == [], rule.code


def test_rules_apply_only_to_operations_with_money() -> None:
    """The rules run exactly on the operations that have a valid body with money here."""
    for operation in OPERATIONS:
        carries_money = operation.key in VALID
        assert AmountIsInteger().applies_to(operation) is carries_money
        assert AmountWithinLimits().applies_to(operation) is carries_money
        if not carries_money:
            assert not CurrencyAllowed().applies_to(operation)
            assert not AmountBounds(BOUNDS).applies_to(operation)


# --- amount.not_integer ---------------------------------------------------------------------

_EP, _EPC, _EPR = "epayment.create_payment", "epayment.capture_payment", "epayment.refund_payment"
_EC, _ECC, _ECR = "ecom.initiate_payment", "ecom.capture_payment", "ecom.refund_payment"
_RC, _RCU, _RCC = (
    "recurring.draft_agreement",
    "recurring.update_agreement",
    "recurring.create_charge",
)
_RC2, _RC2C = "recurring.draft_agreement_v2", "recurring.create_charge_v2"
_CO, _CO2 = "checkout.create_session", "checkout.create_session_v2"
_OM = "order_management.add_receipt"
_SHIP, _LINE, _BOTTOM = (
    "shipping.fixedOptions.0.options.0.amount",
    "receipt.orderLines.0",
    "receipt.bottomLine",
)
_CO_LINE = "transaction.orderSummary.orderLines.0"
_CO_BOTTOM = "transaction.orderSummary.orderBottomLine"
_CO_SHIP = "logistics.fixedOptions.0.amount"


@pytest.mark.parametrize(
    ("raw", "problem", "repair"),
    [
        pytest.param("49900.0000001", "is a number with a fraction", None, id="amount-float-tail"),
        pytest.param("499.5", "is a number with a fraction", None, id="amount-half"),
        pytest.param("49900.0", "is a float", 49900, id="amount-float-zero"),
        pytest.param("4.99E+4", "is a float", 49900, id="amount-exponent"),
        pytest.param("1E+2", "is a float", 100, id="amount-exponent-plus"),
        pytest.param("-0.0", "is a float", 0, id="amount-negative-zero"),
        pytest.param('"49900"', "is a string", None, id="amount-string"),
        pytest.param("true", "is a boolean", None, id="amount-boolean"),
        pytest.param("[49900]", "is an array", None, id="amount-array"),
        pytest.param('{"value":49900}', "is an object", None, id="amount-object"),
        pytest.param("9223372036854775808", "64-bit", None, id="amount-int64-overflow"),
        pytest.param("-9223372036854775809", "64-bit", None, id="amount-int64-underflow"),
        pytest.param("9.3E+18", "64-bit", None, id="amount-float-beyond-int64"),
        pytest.param("1E+999999999", "64-bit", None, id="amount-huge-exponent"),
        pytest.param("1" * 4001, "64-bit", None, id="amount-4001-digits"),
        pytest.param("NaN", "is a non-finite number", None, id="amount-nan"),
        pytest.param("-Infinity", "is a non-finite number", None, id="amount-infinity"),
    ],
)
def test_not_integer(raw: str, problem: str, repair: int | None) -> None:
    """A non-int64 amount gives one finding; only an integral number is repaired, exactly."""
    found = only(AmountIsInteger(), request_with(_EP, {"amount.value": raw}))
    assert (found.rule, found.field) == ("amount.not_integer", "amount.value")
    assert problem in found.problem
    assert found.value == (raw if len(raw) <= 40 else raw[:39] + "…")
    assert found.repair == (Repair(("amount", "value"), repair) if repair is not None else None)
    if found.repair is not None:
        assert type(found.repair.value) is int


@pytest.mark.parametrize(
    ("key", "dotted", "raw", "repair"),
    [
        pytest.param(_EP, f"{_SHIP}.value", "9900.00", 9900, id="epayment-shipping-option"),
        pytest.param(_EP, f"{_LINE}.totalAmount", "40000.5", None, id="epayment-receipt-line"),
        pytest.param(_EP, f"{_LINE}.unitInfo.unitPrice", "2E+4", 20000, id="epayment-unit-price"),
        pytest.param(_EP, f"{_BOTTOM}.paymentSources.card", '"499"', None, id="epayment-card"),
        pytest.param(
            _EP, f"{_BOTTOM}.shippingInfo.amount", "99.0", 99, id="epayment-shipping-info"
        ),
        pytest.param(_EPC, "modificationAmount.value", "100.0", 100, id="epayment-capture"),
        pytest.param(_EPR, "modificationAmount.value", "99.99", None, id="epayment-refund"),
        pytest.param(_EC, "transaction.amount", "499.00", 499, id="ecom-initiate"),
        pytest.param(_ECC, "transaction.amount", "499.5", None, id="ecom-capture"),
        pytest.param(_ECR, "transaction.amount", "99.9", None, id="ecom-refund"),
        pytest.param(_RC, "pricing.amount", "49900.0000001", None, id="recurring-pricing"),
        pytest.param(_RC, "campaign.price", "1500.0", 1500, id="recurring-campaign"),
        pytest.param(_RCU, "pricing.suggestedMaxAmount", "1e5", 100000, id="recurring-update"),
        pytest.param(_RCC, "amount", '"49900"', None, id="recurring-charge"),
        pytest.param(_RC2, "initialCharge.amount", "199.5", None, id="recurring-v2-initial"),
        pytest.param(_CO, f"{_CO_LINE}.discount", "0.5", None, id="checkout-line"),
        pytest.param(_CO, f"{_CO_BOTTOM}.tipAmount", "100.0", 100, id="checkout-tip"),
        pytest.param(_CO2, f"{_CO_SHIP}.value", "false", None, id="checkout-v2-logistics"),
        pytest.param(_OM, "bottomLine.tipAmount", "10.5", None, id="order-management-tip"),
        pytest.param(_OM, "orderLines.0.totalAmount", "1.0E+3", 1000, id="order-management-line"),
    ],
)
def test_not_integer_in_every_api(key: str, dotted: str, raw: str, repair: int | None) -> None:
    """Money fields of every API are checked, each finding naming its own JSON path."""
    found = only(AmountIsInteger(), request_with(key, {dotted: raw}))
    assert found.field == format_path(_steps(dotted))
    assert found.repair == (Repair(_steps(dotted), repair) if repair is not None else None)


def test_not_integer_message() -> None:
    """The merchant reads where, what and the expected form, with the value exactly as sent."""
    found = only(AmountIsInteger(), request_with(_EP, {"amount.value": "49900.0000001"}))
    assert found.message == (
        "amount.value: is a number with a fraction, not an integer (sent 49900.0000001); "
        "expected an integer number of minor units (øre), e.g. 49900 for 499.00 NOK"
    )


def test_not_integer_names_the_currency_minor_unit() -> None:
    """The expected form speaks of the governing currency's minor unit."""
    changes = {"transaction.amount.value": "12.5", "transaction.amount.currency": '"EUR"'}
    request = request_with("checkout.create_session_v2", changes)
    assert "(cents), e.g. 49900 for 499.00 EUR" in only(AmountIsInteger(), request).expected


def test_long_values_are_cut() -> None:
    """A value longer than 40 characters is shown cut, so responses and logs stay small."""
    raw = "1" * 60 + ".5"
    found = only(AmountIsInteger(), request_with(_EP, {"amount.value": raw}))
    assert found.value == "1" * 39 + "…"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("49.5", id="fraction"),
        pytest.param("49.90", id="two-decimals"),
        pytest.param("0.99", id="below-one"),
        pytest.param("4.95e1", id="exponent"),
        pytest.param("0", id="free"),
    ],
)
def test_ecom_shipping_cost_is_never_flagged(raw: str) -> None:
    """eCom's staticShippingDetails[].shippingCost is decimal NOK by design: never flagged."""
    request = request_with(_EC, {"merchantInfo.staticShippingDetails.0.shippingCost": raw})
    for rule in all_rules():
        assert list(rule.check(request)) == [], rule.code


@pytest.mark.parametrize(
    ("key", "at"), MONEY_PLACES, ids=[f"{k}:{format_path(p)}" for k, p in MONEY_PLACES]
)
def test_null_amounts_are_never_flagged(key: str, at: Path) -> None:
    """An amount sent as null is absent, not wrong: no money rule reports it."""
    request = request_with(key, {_dotted(at): "null"})
    for rule in all_rules():
        if rule.applies_to(request.operation):
            assert list(rule.check(request)) == [], rule.code


def test_null_currency_is_never_flagged() -> None:
    """A currency sent as null is left to the shape rules."""
    request = request_with("order_management.add_receipt", {"bottomLine.currency": "null"})
    assert findings(CurrencyAllowed(), request) == []


_NON_INTEGER_NUMBERS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.builds(
        "{}{}{}{}".format,
        st.integers(-(10**30), 10**30),
        st.sampled_from([".", ".0", ".5", ".0000001", "e", "E", "E+", "e-", ".25E"]),
        st.integers(0, 40),
        st.sampled_from(["", "0"]),
    ),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "-0.0", "0.0", "0E-7"]),
).filter(lambda text: any(c in text for c in ".eEIN"))


@given(place=st.sampled_from(MONEY_PLACES), raw=_NON_INTEGER_NUMBERS)
def test_any_non_integer_number_in_any_money_field_is_found(
    place: tuple[str, Path], raw: str
) -> None:
    """Any JSON number that is not written as an integer, in any money field, gives a finding."""
    key, at = place
    request = request_with(key, {_dotted(at): raw})
    assert request.json.error is None, raw
    found = [f for f in AmountIsInteger().check(request) if f.field == format_path(at)]
    assert len(found) == 1


# --- amount.limits --------------------------------------------------------------------------

_SEK_CARD = {"amount.currency": '"SEK"', "paymentMethod.type": '"CARD_PASSTHROUGH"'}
_INT32_OVER = "2147483648"


def _first_field(changes: dict[str, str]) -> str:
    """The field under test is the first change; the others set its context."""
    return format_path(_steps(next(iter(changes))))


@pytest.mark.parametrize(
    ("key", "changes", "expected"),
    [
        pytest.param(
            _EP, {"amount.value": "99"}, "at least 100 minor units (1.00 NOK)", id="epayment-nok-99"
        ),
        pytest.param(
            _EP,
            {"amount.value": "0", "amount.currency": '"EUR"'},
            "at least 1 ",
            id="epayment-eur-0",
        ),
        pytest.param(_EP, {"amount.value": "99", **_SEK_CARD}, "(1.00 SEK)", id="epayment-sek-99"),
        pytest.param(
            _EP, {"amount.value": "65000001"}, "at most 65000000", id="epayment-above-max"
        ),
        pytest.param(
            _EP, {"amount.value": "-1", "amount.currency": '"XYZ"'}, "at least 0", id="epayment-xyz"
        ),
        pytest.param(_EP, {f"{_SHIP}.value": "-1"}, "at least 0", id="shipping-option-negative"),
        pytest.param(
            _EP, {f"{_LINE}.discount": "-500"}, "at least 0", id="receipt-discount-negative"
        ),
        pytest.param(_EPC, {"modificationAmount.value": "-1"}, "at least 0", id="capture-negative"),
        pytest.param(
            _EPR, {"modificationAmount.value": "65000001"}, "at most", id="refund-above-max"
        ),
        pytest.param(_EC, {"transaction.amount": "99"}, "at least 100", id="ecom-initiate-99"),
        pytest.param(_ECC, {"transaction.amount": "50"}, "at least 100", id="ecom-capture-50"),
        pytest.param(_RC, {"pricing.amount": "99"}, "at least 100", id="recurring-price-99"),
        pytest.param(
            _RC, {"pricing.suggestedMaxAmount": "2000001"}, "at most 2000000", id="recurring-cap"
        ),
        pytest.param(
            _RC, {"initialCharge.amount": _INT32_OVER}, "at most 2147483647", id="recurring-int32"
        ),
        pytest.param(_RCC, {"amount": "99"}, "at least 100", id="recurring-charge-99"),
        pytest.param(_RC2C, {"amount": "99"}, "at least 100", id="recurring-v2-charge-99"),
        pytest.param(
            "recurring.patch_agreement_v2", {"price": "-1"}, "at least 0", id="recurring-v2-price"
        ),
        pytest.param(_CO, {"transaction.amount.value": "0"}, "(0.01 NOK)", id="checkout-zero"),
        pytest.param(
            _CO, {"transaction.amount.value": _INT32_OVER}, "at most", id="checkout-int32"
        ),
        pytest.param(
            _CO, {f"{_CO_LINE}.totalAmount": "-1"}, "at least 0", id="checkout-line-negative"
        ),
        pytest.param(_OM, {"bottomLine.tipAmount": "-1"}, "at least 0", id="order-management-tip"),
    ],
)
def test_outside_limits_blocks(key: str, changes: dict[str, str], expected: str) -> None:
    """An integer amount outside the limits its API documents gives one blocking finding."""
    found = only(AmountWithinLimits(), request_with(key, changes))
    assert (found.field, found.advisory) == (_first_field(changes), False)
    assert expected in found.expected


@pytest.mark.parametrize(
    ("key", "changes"),
    [
        pytest.param(_EP, {"amount.value": "100"}, id="epayment-nok-minimum"),
        pytest.param(_EP, {"amount.value": "1", "amount.currency": '"DKK"'}, id="epayment-dkk-1"),
        pytest.param(
            _EP, {"amount.value": "1", **_SEK_CARD, "amount.currency": '"USD"'}, id="usd-1"
        ),
        pytest.param(_EP, {"amount.value": "65000000"}, id="epayment-maximum"),
        pytest.param(_EP, {"amount.value": "0", "amount.currency": '"XYZ"'}, id="epayment-xyz-0"),
        pytest.param(_EP, {f"{_SHIP}.value": "0"}, id="shipping-free"),
        pytest.param(_EP, {f"{_LINE}.totalAmount": "-5000"}, id="receipt-line-return"),
        pytest.param(_EP, {f"{_LINE}.totalAmount": "1"}, id="receipt-line-small"),
        pytest.param(_EPC, {"modificationAmount.value": "50"}, id="capture-partial-small"),
        pytest.param(_EPR, {"modificationAmount.value": "1"}, id="refund-partial-small"),
        pytest.param(_EC, {"transaction.amount": "100"}, id="ecom-minimum"),
        pytest.param(_EC, {"transaction.amount": "9000000000"}, id="ecom-no-maximum"),
        pytest.param(_RC, {"initialCharge.amount": "0"}, id="recurring-initial-charge-free"),
        pytest.param(_RC, {"campaign.price": "0"}, id="recurring-campaign-free"),
        pytest.param(_RC, {"pricing.suggestedMaxAmount": "2000000"}, id="recurring-cap"),
        pytest.param(_CO, {"transaction.amount.value": "1"}, id="checkout-one-ore"),
        pytest.param(_CO, {f"{_CO_BOTTOM}.tipAmount": "-1"}, id="checkout-tip-unbounded"),
        pytest.param(_EP, {"amount.value": "99.5"}, id="fraction-left-to-not-integer"),
        pytest.param(_EP, {"amount.value": "9223372036854775808"}, id="int64-left-to-not-integer"),
    ],
)
def test_within_limits(key: str, changes: dict[str, str]) -> None:
    """Amounts the API accepts, and non-integers (the other rule's), give no limits finding."""
    assert findings(AmountWithinLimits(), request_with(key, changes)) == []


@pytest.mark.parametrize(
    ("key", "changes"),
    [
        pytest.param(
            _RC, {"pricing.suggestedMaxAmount": "3000000", "pricing.currency": '"DKK"'}, id="dkk"
        ),
        pytest.param(_RCU, {"pricing.suggestedMaxAmount": "3000000"}, id="patch-no-currency"),
        pytest.param(
            "recurring.update_agreement_v2", {"suggestedMaxAmount": "3000000"}, id="v2-put"
        ),
    ],
)
def test_cap_documented_for_other_currency_is_advisory(key: str, changes: dict[str, str]) -> None:
    """A cap documented for NOK only is reported, never blocked, for other or unknown currencies."""
    found = only(AmountWithinLimits(), request_with(key, changes))
    assert (found.field, found.advisory) == (_first_field(changes), True)


def test_limits_message() -> None:
    """The merchant reads the minimum in minor and major units."""
    found = only(AmountWithinLimits(), request_with(_EP, {"amount.value": "99"}))
    assert found.message == (
        "amount.value: is below the minimum the API accepts for NOK (sent 99); "
        "expected at least 100 minor units (1.00 NOK)"
    )


# --- amount.currency ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "changes", "problem"),
    [
        pytest.param(
            _EP, {"amount.currency": '"SEK"'}, "CARD_PASSTHROUGH payments, not WALLET", id="ep-sek"
        ),
        pytest.param(
            _EP,
            {"amount.currency": '"GBP"', "paymentMethod.type": '"CARD"'},
            "not CARD",
            id="ep-gbp",
        ),
        pytest.param(
            _EP, {f"{_BOTTOM}.currency": '"USD"'}, "CARD_PASSTHROUGH", id="ep-receipt-usd"
        ),
        pytest.param(
            _EP, {"amount.currency": '"nok"'}, "the ePayment API accepts", id="ep-lower-case"
        ),
        pytest.param(_EP, {"amount.currency": '"CHF"'}, "the ePayment API accepts", id="ep-chf"),
        pytest.param(
            _EP, {"amount.currency": "578"}, "is an integer, not a currency code", id="ep-number"
        ),
        pytest.param(_EP, {f"{_SHIP}.currency": '"XYZ"'}, "accepts", id="ep-shipping-option"),
        pytest.param(_EPC, {"modificationAmount.currency": '"NKR"'}, "accepts", id="ep-capture"),
        pytest.param(
            _RC, {"pricing.currency": '"SEK"'}, "the Recurring API accepts", id="recurring-sek"
        ),
        pytest.param(
            _RC2, {"initialCharge.currency": '"USD"'}, "accepts", id="recurring-v2-initial"
        ),
        pytest.param(_RC2C, {"currency": '"Nok"'}, "accepts", id="recurring-v2-charge"),
        pytest.param(
            _CO, {"transaction.amount.currency": '"nok"'}, "the Checkout API", id="co-lower"
        ),
        pytest.param(_CO, {f"{_CO_BOTTOM}.currency": '"kr"'}, "accepts", id="co-two-letters"),
        pytest.param(_CO2, {f"{_CO_SHIP}.currency": '"NOKK"'}, "accepts", id="co-v2-four-letters"),
        pytest.param(_OM, {"bottomLine.currency": '"XYZ"'}, "Order Management API", id="om-xyz"),
    ],
)
def test_currency_blocked(key: str, changes: dict[str, str], problem: str) -> None:
    """A currency the API does not take gives one blocking finding naming the field."""
    found = only(CurrencyAllowed(), request_with(key, changes))
    assert (found.field, found.advisory) == (_first_field(changes), False)
    assert problem in found.problem


_DKK = {"amount.currency": '"DKK"', f"{_BOTTOM}.currency": '"DKK"', f"{_SHIP}.currency": '"DKK"'}
_EUR = {"amount.currency": '"EUR"', f"{_BOTTOM}.currency": '"EUR"', f"{_SHIP}.currency": '"EUR"'}


@pytest.mark.parametrize(
    ("key", "changes"),
    [
        pytest.param(_EP, _DKK, id="epayment-dkk"),
        pytest.param(_EP, _EUR, id="epayment-eur"),
        pytest.param(_EP, {**_SEK_CARD, f"{_BOTTOM}.currency": '"SEK"'}, id="epayment-sek-card"),
        pytest.param(_EPR, {"modificationAmount.currency": '"GBP"'}, id="epayment-refund-gbp"),
        pytest.param(_RC, {"pricing.currency": '"DKK"'}, id="recurring-dkk"),
        pytest.param(_RC, {"pricing.currency": '"EUR"'}, id="recurring-eur"),
        pytest.param(_CO, {"transaction.amount.currency": '"SEK"'}, id="checkout-sek"),
        pytest.param(_OM, {"bottomLine.currency": '"EUR"'}, id="order-management-eur"),
    ],
)
def test_currency_accepted(key: str, changes: dict[str, str]) -> None:
    """Currencies the API takes give no finding."""
    assert findings(CurrencyAllowed(), request_with(key, changes)) == []


@pytest.mark.parametrize(
    ("key", "changes"),
    [
        pytest.param(_CO, {"transaction.amount.currency": '"USD"'}, id="checkout-usd"),
        pytest.param(_CO, {f"{_CO_SHIP}.currency": '"ISK"'}, id="checkout-logistics-isk"),
        pytest.param(_OM, {"bottomLine.currency": '"SEK"'}, id="order-management-sek"),
    ],
)
def test_currency_sources_disagree_is_advisory(key: str, changes: dict[str, str]) -> None:
    """A well-formed code the sources disagree on is reported, never blocked."""
    found = only(CurrencyAllowed(), request_with(key, changes))
    assert (found.field, found.advisory) == (_first_field(changes), True)


def test_currency_not_checked_for_ecom() -> None:
    """eCom has no currency field (NOK only), so the currency rule never runs on it."""
    assert not CurrencyAllowed().applies_to(find("ecom", "initiate_payment"))


def test_currency_message() -> None:
    """The merchant reads which currencies the API takes."""
    found = only(CurrencyAllowed(), request_with(_EP, {"amount.currency": '"nok"'}))
    assert found.message == (
        'amount.currency: is not a currency the ePayment API accepts (sent "nok"); expected NOK, '
        "DKK or EUR (SEK, USD or GBP only when paymentMethod.type is CARD_PASSTHROUGH)"
    )


# --- amount.bounds --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "bounds"),
    [
        pytest.param("", {}, id="empty"),
        pytest.param("  ", {}, id="blank"),
        pytest.param("NOK=1000..10000000", {"NOK": (1000, 10_000_000)}, id="one"),
        pytest.param(" NOK = 1 .. 2 , EUR=3..4 ", {"NOK": (1, 2), "EUR": (3, 4)}, id="spaces"),
        pytest.param("DKK=5..5", {"DKK": (5, 5)}, id="single-value"),
    ],
)
def test_parse_bounds(text: str, bounds: dict[str, tuple[int, int]]) -> None:
    """The bounds setting reads as currency -> inclusive (min, max) in minor units."""
    assert parse_bounds(text) == bounds


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        pytest.param("NOK=1000", "'NOK=1000'", id="no-range"),
        pytest.param("NOK:1000..2000", "'NOK:1000..2000'", id="colon"),
        pytest.param("nok=1..2", "'nok=1..2'", id="lower-case"),
        pytest.param("NORWAY=1..2", "'NORWAY=1..2'", id="long-code"),
        pytest.param("NOK=2..1", "'NOK=2..1'", id="min-above-max"),
        pytest.param("NOK=-1..2", "'NOK=-1..2'", id="negative"),
        pytest.param("NOK=1.5..2", "'NOK=1.5..2'", id="fraction"),
        pytest.param("NOK=1..2,", "''", id="trailing-comma"),
        pytest.param("NOK=1..2,NOK=3..4", "NOK is given twice", id="twice"),
    ],
)
def test_parse_bounds_rejects(text: str, bad: str) -> None:
    """A bad bounds setting raises ValueError naming the bad part and the expected form."""
    with pytest.raises(ValueError, match=r"CURRENCY=MIN\.\.MAX") as raised:
        parse_bounds(text)
    assert bad in str(raised.value)


def test_bounds_rejects_inverted_range() -> None:
    """Bounds given directly are checked too."""
    with pytest.raises(ValueError, match="minimum 5 above maximum 1"):
        AmountBounds({"NOK": (5, 1)})


@pytest.mark.parametrize(
    ("key", "changes"),
    [
        pytest.param(_EP, {"amount.value": "499"}, id="epayment-kroner-as-ore"),
        pytest.param(_EP, {"amount.value": "49900000"}, id="epayment-ore-times-100"),
        pytest.param(_EC, {"transaction.amount": "499"}, id="ecom-kroner-as-ore"),
        pytest.param(_RC, {"pricing.amount": "199"}, id="recurring-price"),
        pytest.param(_RC, {"initialCharge.amount": "199"}, id="recurring-initial-charge"),
        pytest.param(_RC2, {"price": "199"}, id="recurring-v2-price"),
        pytest.param(_RC2C, {"amount": "99900000"}, id="recurring-v2-charge"),
        pytest.param(_CO, {"transaction.amount.value": "499"}, id="checkout"),
        pytest.param(_CO2, {"transaction.amount.value": "499"}, id="checkout-v2"),
    ],
)
def test_bounds_reports_main_amounts(key: str, changes: dict[str, str]) -> None:
    """A main amount outside the configured range for its currency gives a finding."""
    found = only(AmountBounds(BOUNDS), request_with(key, changes))
    assert (found.field, found.rule) == (_first_field(changes), "amount.bounds")


@pytest.mark.parametrize(
    ("key", "changes"),
    [
        pytest.param(_EP, {f"{_LINE}.totalAmount": "1"}, id="receipt-line"),
        pytest.param(_EP, {f"{_SHIP}.value": "1"}, id="shipping-option"),
        pytest.param(
            _EP, {"amount.value": "499", "amount.currency": '"EUR"'}, id="unbounded-currency"
        ),
        pytest.param(_RC, {"campaign.price": "0"}, id="campaign-price"),
        pytest.param(_RCC, {"amount": "499"}, id="recurring-v3-charge-has-no-currency"),
        pytest.param(_EP, {"amount.value": "499.5"}, id="fraction-left-to-not-integer"),
    ],
)
def test_bounds_ignores_other_amounts(key: str, changes: dict[str, str]) -> None:
    """Receipt lines, shipping, unbounded currencies and non-integers are never bounds findings."""
    assert findings(AmountBounds(BOUNDS), request_with(key, changes)) == []


def test_bounds_applies_only_to_main_operations() -> None:
    """Captures, refunds, updates and receipts carry no main amount; empty bounds check nothing."""
    for name in ("capture_payment", "refund_payment"):
        assert not AmountBounds(BOUNDS).applies_to(find("epayment", name))
    assert not AmountBounds(BOUNDS).applies_to(find("recurring", "update_agreement"))
    assert not AmountBounds(BOUNDS).applies_to(find("order_management", "add_receipt"))
    assert not AmountBounds({}).applies_to(find("epayment", "create_payment"))


def test_bounds_message() -> None:
    """The merchant reads the configured range and the likely mistake."""
    found = only(AmountBounds(BOUNDS), request_with(_EP, {"amount.value": "499"}))
    assert found.message == (
        "amount.value: is outside the range set for NOK amounts, which suggests whole NOK sent "
        "as øre or the reverse (sent 499); expected between 1000 minor units (10.00 NOK) and "
        "10000000 minor units (100000.00 NOK)"
    )


# --- With the engine ------------------------------------------------------------------------

_RAW = (
    b'{\n  "amount" : { "currency": "NOK", "value": 49900.0 },\n'
    b'  "paymentMethod": {"type": "WALLET"},\n'
    b'  "reference": "acme-shop-123-order123abc",\n'
    b'  "receipt": {"orderLines": [{"id": "1", "totalAmount": 4.99E+4, "totalTaxAmount": 0,'
    b' "totalAmountExcludingTax":49900}],\n'
    b'    "bottomLine": {"currency": "NOK", "tipAmount": null}}\n}'
)


def _evaluate(raw: bytes, action: Action) -> Verdict:
    """The engine's verdict on an ePayment create with these bytes, integer rule set to `action`."""
    engine = PolicyEngine(
        [AmountIsInteger(), AmountWithinLimits(), CurrencyAllowed()],
        actions={"amount.not_integer": action},
    )
    return engine.evaluate(audited_request("POST", "/epayment/v1/payments", [], raw))


def test_engine_repair_splices_only_the_changed_values() -> None:
    """With action repair, only the integral floats change; every other byte is as sent."""
    verdict = _evaluate(_RAW, Action.REPAIR)
    assert not verdict.blocked
    assert [d.outcome for d in verdict.decisions] == [Outcome.REPAIRED, Outcome.REPAIRED]
    assert verdict.body == _RAW.replace(b"49900.0 ", b"49900 ").replace(b"4.99E+4", b"49900")


def test_engine_does_not_repair_a_fraction() -> None:
    """A fraction has no repair: the request is blocked and nothing is rewritten."""
    verdict = _evaluate(_RAW.replace(b"4.99E+4", b"49900.0000001"), Action.REPAIR)
    assert verdict.blocked
    assert verdict.body is None
    assert {d.finding.field: d.outcome for d in verdict.decisions} == {
        "amount.value": Outcome.REPORTED,
        "receipt.orderLines[0].totalAmount": Outcome.BLOCKED,
    }


def test_engine_blocks_by_default() -> None:
    """By default a float amount is blocked, not repaired."""
    verdict = _evaluate(_RAW, Action.BLOCK)
    assert verdict.blocked
    assert verdict.body is None
    assert verdict.rule_codes == ("amount.not_integer",)


def test_only_the_integer_rule_offers_repair() -> None:
    """Repair is a valid action for amount.not_integer only; money is never changed otherwise."""
    rules = all_rules()
    assert resolve_actions(rules, {"amount.not_integer": Action.REPAIR})
    for code in ("amount.limits", "amount.currency", "amount.bounds"):
        with pytest.raises(PolicyConfigError):
            resolve_actions(rules, {code: Action.REPAIR})


def test_limits_judge_the_number_a_repair_would_forward() -> None:
    """An integral float below the minimum is a limits finding too, so a repair cannot hide it."""
    found = findings(AmountWithinLimits(), request_with(_EP, {"amount.value": "99.0"}))
    assert [f.rule for f in found] == ["amount.limits"]
