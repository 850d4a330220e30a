"""Tests for the phone number rules: repairs of notation slips, blocks, masking and the splice."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import cast

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.catalogue.operations import OPERATIONS, find
from policies.catalogue.phone_fields import PHONE_FIELDS, PHONE_TABLE
from policies.core.engine import PolicyConfigError, PolicyEngine, PolicyMode
from policies.core.model import Action, AuditedRequest, Finding, JsonValue, Outcome, Path, Rule
from policies.core.model import audited_request as build_request
from policies.core.phone_mask import mask_phone
from policies.rules.phones import PhoneNumberFormat, PhoneNumberRecognised
from tests.samples import VALID as SAMPLES

# Operation keys, short enough for one-line test parameters.
EP, EPF = "epayment.create_payment", "epayment.force_approve"
EC, ECF = "ecom.initiate_payment", "ecom.force_approve"
RC, RCF = "recurring.draft_agreement", "recurring.force_accept_agreement"
RC2, RCF2 = "recurring.draft_agreement_v2", "recurring.force_accept_agreement_v2"
CO, CO2 = "checkout.create_session", "checkout.create_session_v2"

FORMAT = PhoneNumberFormat()
RECOGNISED = PhoneNumberRecognised()

# The operations with phone fields, from the specs; their valid requests are the shared samples.
VALID: dict[str, tuple[str, str, dict[str, JsonValue]]] = {
    key: (SAMPLES[key].method, SAMPLES[key].path, SAMPLES[key].json)
    for key in (EP, EPF, EC, ECF, RC, RCF, RC2, RCF2, CO, CO2)
}

ABSENT = object()  # a marker for "remove this field"


def request_for(key: str, changes: Mapping[Path, object] | None = None) -> AuditedRequest:
    """The valid request of `key` with each path in `changes` set to a value (or removed)."""
    method, path, body = VALID[key]
    body = copy.deepcopy(body)
    for at, value in (changes or {}).items():
        node: dict[str, JsonValue] = body
        for step in at[:-1]:
            child = node.setdefault(str(step), {})
            assert isinstance(child, dict)
            node = child
        if value is ABSENT:
            node.pop(str(at[-1]), None)
        else:
            node[str(at[-1])] = cast(JsonValue, value)
    raw = json.dumps(body).encode()
    return build_request(method, path, [("Content-Type", "application/json")], raw)


CURRENCY_AT: dict[str, Path] = {
    EP: ("amount", "currency"),
    RC: ("pricing", "currency"),
    RC2: ("currency",),
    CO: ("transaction", "amount", "currency"),
    CO2: ("transaction", "amount", "currency"),
}


def phone_request(key: str, value: object, currency: str | None = None) -> AuditedRequest:
    """The valid request of `key` with its first phone field (and maybe its currency) changed."""
    changes: dict[Path, object] = {PHONE_FIELDS[key][0]: value}
    if currency is not None:
        changes[CURRENCY_AT[key]] = currency
    return request_for(key, changes)


def findings(rule: Rule, request: AuditedRequest) -> list[Finding]:
    """The findings of one rule for one request, as a list."""
    return list(rule.check(request))


def engine() -> PolicyEngine:
    """An engine with both phone rules at their default actions."""
    return PolicyEngine([PhoneNumberFormat(), PhoneNumberRecognised()])


def digits(text: str) -> str:
    """The ASCII digits of `text`, in order."""
    return re.sub(r"\D", "", text)


# --- the table ----------------------------------------------------------------------------------


def test_table_names_catalogue_operations_with_bodies() -> None:
    """Every operation in the phone table is in the catalogue and takes a body."""
    for key in PHONE_TABLE:
        api, name = key.split(".")
        assert find(api, name).method in {"POST", "PUT", "PATCH"}
    assert set(PHONE_TABLE) == set(VALID)


def test_phone_fields_are_the_ones_the_specs_name() -> None:
    """The phone fields per operation are those of the OpenAPI files, each citing its source."""
    porterbuddy_origin = ("logistics", "integrations", "porterbuddy", "origin", "phoneNumber")
    assert dict(PHONE_FIELDS) == {
        EP: (("customer", "phoneNumber"),),
        EPF: (("customer", "phoneNumber"),),
        EC: (("customerInfo", "mobileNumber"),),
        ECF: (("customerPhoneNumber",),),
        RC: (("phoneNumber",),),
        RCF: (("phoneNumber",),),
        RC2: (("customerPhoneNumber",),),
        RCF2: (("customerPhoneNumber",),),
        CO: (("prefillCustomer", "phoneNumber"), porterbuddy_origin),
        CO2: (("prefillCustomer", "phoneNumber"),),
    }
    for fields in PHONE_TABLE.values():
        assert all(
            f.spec.split()[0] in {"EP", "EC", "RC", "CO", "checkout-v2.yaml"} for f in fields
        )


def test_rules_apply_only_to_operations_with_phone_fields() -> None:
    """Both rules apply exactly to the operations that have a valid body with a phone here."""
    for rule in (FORMAT, RECOGNISED):
        chosen = {op.key for op in OPERATIONS if rule.applies_to(op)}
        assert chosen == set(VALID)


def test_unrecognised_numbers_cannot_be_set_to_repair() -> None:
    """phone.unrecognised has no repair, so an engine asked to repair with it is refused."""
    with pytest.raises(PolicyConfigError, match=r"phone\.unrecognised has no safe repair"):
        PolicyEngine([FORMAT, RECOGNISED], actions={"phone.unrecognised": Action.REPAIR})


def test_unknown_default_region_is_refused() -> None:
    """A default region libphonenumber does not know fails at construction."""
    with pytest.raises(ValueError, match="default_region 'XX'"):
        PhoneNumberFormat(default_region="XX")
    with pytest.raises(ValueError, match="default_region"):
        PhoneNumberRecognised(default_region="norway")


# --- values that are fine ----------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(VALID))
def test_valid_body_has_no_findings(key: str) -> None:
    """The valid body of each operation gives no phone finding."""
    request = request_for(key)
    assert findings(FORMAT, request) == []
    assert findings(RECOGNISED, request) == []


@pytest.mark.parametrize("key", sorted(VALID))
@pytest.mark.parametrize("value", [None, ABSENT], ids=["null", "absent"])
def test_null_or_absent_phone_is_fine(key: str, value: object) -> None:
    """An optional phone field sent as null, or left out, is never a finding."""
    request = request_for(key, dict.fromkeys(PHONE_FIELDS[key], value))
    assert findings(FORMAT, request) == []
    assert findings(RECOGNISED, request) == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param(EP, "4791234567", id="epayment-msisdn"),
        pytest.param(EP, "4520123456", id="epayment-danish"),
        pytest.param(EP, "358401234567", id="epayment-finnish"),
        pytest.param(EP, "4712345678", id="epayment-vipps-example"),
        pytest.param(EP, "123456789", id="epayment-9-digits-of-1.8.1"),
        pytest.param(EC, "91234567", id="ecom-8-digits"),
        pytest.param(EC, "12345678", id="ecom-unallocated-8-digits"),
        pytest.param(ECF, "41234567", id="ecom-force-approve"),
        pytest.param(RC, "4712345678", id="recurring-v3"),
        pytest.param(RCF2, "91234567", id="recurring-v2-example"),
        pytest.param(RCF2, "4791234567", id="recurring-v2-msisdn"),
        pytest.param(CO, "4791234567", id="checkout-msisdn"),
        pytest.param(CO2, "91234567", id="checkout-v2-defaults-to-47"),
    ],
)
def test_value_in_api_form_is_untouched(key: str, value: str) -> None:
    """A value already in the API's documented form is never a phone.format finding."""
    assert findings(FORMAT, phone_request(key, value)) == []


# --- repairs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "currency", "repaired"),
    [
        pytest.param(EP, "+47 912 34 567", None, "4791234567", id="ep-plus-spaces"),
        pytest.param(EP, "0047 91234567", None, "4791234567", id="ep-00-prefix"),
        pytest.param(EP, "004791234567", None, "4791234567", id="ep-00-prefix-digits-only"),
        pytest.param(EP, "+4791234567", None, "4791234567", id="ep-plus"),
        pytest.param(EP, "47 91 23 45 67", None, "4791234567", id="ep-country-code-spaces"),
        pytest.param(EP, "91234567", None, "4791234567", id="ep-national-nok"),
        pytest.param(EP, "(+47) 91 23 45 67", None, "4791234567", id="ep-vipps-doc-notation"),
        pytest.param(EP, "+47-912-34-567", None, "4791234567", id="ep-dashes"),
        pytest.param(EP, "912.34.567", None, "4791234567", id="ep-dots"),
        pytest.param(EP, " 4791234567 ", None, "4791234567", id="ep-surrounding-spaces"),
        pytest.param(EP, "+47\u00a0912\u00a034\u00a0567", None, "4791234567", id="ep-nbsp"),
        pytest.param(EP, 4791234567, None, "4791234567", id="ep-json-number"),
        pytest.param(EP, "+45 20 12 34 56", None, "4520123456", id="ep-danish-plus"),
        pytest.param(EP, "20 12 34 56", "DKK", "4520123456", id="ep-national-dkk"),
        pytest.param(EP, "+358 40 123 4567", None, "358401234567", id="ep-finnish-plus"),
        pytest.param(EP, "040 123 4567", "EUR", "358401234567", id="ep-national-eur"),
        pytest.param(EP, "070-123 45 67", "SEK", "46701234567", id="ep-national-sek"),
        pytest.param(EP, "47 91 23 45 67", "EUR", "4791234567", id="ep-cc-beats-eur"),
        pytest.param(EPF, "+47 912 34 567", None, "4791234567", id="ep-force-approve"),
        pytest.param(EC, "+47 912 34 567", None, "91234567", id="ecom-plus-spaces"),
        pytest.param(EC, "4791234567", None, "91234567", id="ecom-msisdn"),
        pytest.param(EC, "0047 91234567", None, "91234567", id="ecom-00-prefix"),
        pytest.param(EC, "912 34 567", None, "91234567", id="ecom-spaces"),
        pytest.param(EC, 91234567, None, "91234567", id="ecom-json-number"),
        pytest.param(ECF, "+47 912 34 567", None, "91234567", id="ecom-force"),
        pytest.param(RC, "+47 912 34 567", None, "4791234567", id="recurring-plus"),
        pytest.param(RC, "91234567", None, "4791234567", id="recurring-national"),
        pytest.param(RCF, "0047 912 34 567", None, "4791234567", id="recurring-force-accept"),
        pytest.param(RC2, "91234567", None, "4791234567", id="recurring-v2-8-digit"),
        pytest.param(RCF2, "+47 91234567", None, "4791234567", id="recurring-v2-force-accept"),
        pytest.param(RC, "20 12 34 56", "DKK", "4520123456", id="recurring-national-dkk"),
        pytest.param(RC2, "20 12 34 56", "DKK", "4520123456", id="recurring-v2-national-dkk"),
        pytest.param(CO, "+4748644347", None, "4748644347", id="checkout-spec-example"),
        pytest.param(CO, "20 12 34 56", "DKK", "4520123456", id="checkout-national-dkk"),
        pytest.param(CO, "040 123 4567", "EUR", "358401234567", id="checkout-national-eur"),
        pytest.param(CO2, "+47 912 34 567", None, "4791234567", id="checkout-v2"),
    ],
)
def test_notation_slip_is_repaired(
    key: str, value: object, currency: str | None, repaired: str
) -> None:
    """A notation slip that keeps the number is repaired into exactly the API's form."""
    request = phone_request(key, value, currency)
    (finding,) = findings(FORMAT, request)
    assert finding.repair is not None
    assert finding.repair.path == PHONE_FIELDS[key][0]
    assert finding.repair.value == repaired
    assert not finding.advisory
    assert finding.field == ".".join(str(s) for s in PHONE_FIELDS[key][0])
    assert findings(RECOGNISED, request) == []


def test_porterbuddy_origin_is_repaired() -> None:
    """The Checkout Porterbuddy origin number is checked and repaired like the prefill."""
    path = PHONE_FIELDS[CO][1]
    (finding,) = findings(FORMAT, request_for(CO, {path: "+47 22 12 34 56"}))
    assert finding.repair is not None
    assert finding.repair.value == "4722123456"
    assert finding.field == "logistics.integrations.porterbuddy.origin.phoneNumber"


def test_currency_comes_before_the_default_region() -> None:
    """A number without country code is read in the currency's country before the default."""
    danish = PhoneNumberFormat(default_region="DK")
    (norwegian,) = findings(danish, phone_request(EP, "912 34 567"))
    assert norwegian.repair is not None
    assert norwegian.repair.value == "4791234567"
    # No currency in a force approval body: the configured default region counts.
    (dk,) = findings(danish, phone_request(EPF, "20 12 34 56"))
    assert dk.repair is not None
    assert dk.repair.value == "4520123456"


def test_repair_message_names_field_slip_and_form() -> None:
    """The repair's message says which field, what slip, and the expected form."""
    (finding,) = findings(FORMAT, phone_request(EP, "91234567"))
    assert finding.message == (
        "customer.phoneNumber: is not in the API's form: it has no country code (read as +47 for"
        " region NO) (sent ******67); expected MSISDN digits with country code, no + or 00,"
        " e.g. 4791234567"
    )


# --- blocks ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        pytest.param(EP, "abc", "is not a phone number", id="ep-letters"),
        pytest.param(EP, "12", "cannot be read as a possible phone number", id="ep-two-digits"),
        pytest.param(EP, "+47", "cannot be read as a possible phone number", id="ep-only-cc"),
        pytest.param(EP, "91234567 ext 12", "is not a phone number", id="ep-extension"),
        pytest.param(EP, "+47 (0) 91234567", "cannot be read", id="ep-uk-style-trunk"),
        pytest.param(EP, "+47 02800", "not one the API can take", id="ep-short-number"),
        pytest.param(EP, "1" * 20, "more digits than any phone number", id="ep-too-long"),
        pytest.param(EP, 91234567, "is a JSON number", id="ep-json-number-not-msisdn"),
        pytest.param(EP, True, "is a JSON boolean", id="ep-boolean"),
        pytest.param(EP, ["4791234567"], "is a JSON array", id="ep-array"),
        pytest.param(EC, "abc", "is not a phone number", id="ecom-letters"),
        pytest.param(EC, "+45 20 12 34 56", "only Norwegian 8-digit numbers", id="ecom-danish"),
        pytest.param(EC, "4520123456", "only Norwegian 8-digit numbers", id="ecom-danish-digits"),
        pytest.param(EC, "+46 70 123 45 67", "country code +46", id="ecom-swedish"),
    ],
)
def test_unrepairable_value_is_blocked(key: str, value: object, problem: str) -> None:
    """A value that cannot be read as a number in the API's form is blocked with a clear message."""
    request = phone_request(key, value)
    (finding,) = findings(FORMAT, request)
    assert finding.repair is None
    assert not finding.advisory
    assert problem in finding.problem
    field = ".".join(str(s) for s in PHONE_FIELDS[key][0])
    assert finding.message.startswith(f"{field}: ")
    assert finding.message.endswith(f"expected {finding.expected}")
    verdict = engine().evaluate(request)
    assert verdict.blocked
    assert verdict.body is None


@pytest.mark.parametrize(
    ("key", "value", "problem", "condition"),
    [
        pytest.param(EP, "", "is an empty string", "empty", id="ep-empty"),
        pytest.param(EP, "   ", "is an empty string", "empty", id="ep-blank"),
        pytest.param(RC, "12", "cannot be read", "recurring", id="recurring-short"),
        pytest.param(RC2, "+47 02800", "not one the API", "recurring", id="rc-v2-short"),
    ],
)
def test_unrepairable_value_without_documented_refusal_is_reported(
    key: str, value: object, problem: str, condition: str
) -> None:
    """An empty number, or an unreadable one for Recurring (no format stated), is forwarded."""
    request = phone_request(key, value)
    (finding,) = findings(FORMAT, request)
    assert (finding.repair, finding.condition) == (None, condition)
    assert problem in finding.problem
    verdict = engine().evaluate(request)
    assert not verdict.blocked
    assert [d.outcome for d in verdict.decisions] == [Outcome.WOULD_BLOCK]
    assert verdict.body is None


@pytest.mark.parametrize(
    "raw", [b"4791234567.0", b"4.791234567e9", b"-4791234567"], ids=["fraction", "exponent", "neg"]
)
def test_json_number_not_in_api_form_is_blocked(raw: bytes) -> None:
    """A JSON number whose text is not the API's digits is blocked: no repair guesses them."""
    body = b'{"amount":{"currency":"NOK","value":49900},"customer":{"phoneNumber":%s}}' % raw
    request = build_request("POST", "/epayment/v1/payments", [], body)
    (finding,) = findings(FORMAT, request)
    assert finding.repair is None
    assert finding.problem == "is a JSON number, but the API takes phone numbers as strings"
    assert finding.value is None or "4791234567" not in finding.value
    assert engine().evaluate(request).blocked


# --- Checkout never blocks ---------------------------------------------------------------------


@pytest.mark.parametrize("key", [CO, CO2])
@pytest.mark.parametrize(
    "value",
    ["abc", "12", "+47", "", "+47 02800", 91234567, True, "12345678", "+47 123 45 678"],
    ids=["letters", "short", "only-cc", "empty", "too-short", "number", "bool", "unalloc", "slip"],
)
def test_checkout_never_blocks(key: str, value: object) -> None:
    """Checkout prefill findings are repaired or reported, never blocked."""
    request = phone_request(key, value)
    verdict = engine().evaluate(request)
    assert not verdict.blocked
    assert verdict.decisions
    for decision in verdict.decisions:
        assert decision.outcome in {Outcome.REPAIRED, Outcome.REPORTED}
        if decision.outcome is Outcome.REPORTED:
            assert decision.finding.advisory


# --- unrecognised numbers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param(EP, "4712345678", id="ep-vipps-example"),
        pytest.param(EP, "999123456", id="ep-unknown-country-code"),
        pytest.param(EC, "12345678", id="ecom"),
        pytest.param(RC, "4712345678", id="recurring"),
        pytest.param(RCF2, "12345678", id="recurring-v2-8"),
    ],
)
def test_unallocated_number_is_only_reported(key: str, value: str) -> None:
    """A well-formed but unallocated number is only phone.unrecognised, reported, not blocked."""
    request = phone_request(key, value)
    assert findings(FORMAT, request) == []
    (finding,) = findings(RECOGNISED, request)
    assert finding.rule == "phone.unrecognised"
    assert finding.repair is None
    verdict = engine().evaluate(request)
    assert not verdict.blocked
    assert verdict.body is None
    assert [d.outcome for d in verdict.decisions] == [Outcome.REPORTED]


def test_repaired_unallocated_number_is_repaired_and_reported() -> None:
    """A slip in an unallocated number is repaired, and the number is reported as unrecognised."""
    verdict = engine().evaluate(phone_request(EP, "+47 123 45 678"))
    assert not verdict.blocked
    assert [(d.finding.rule, d.outcome) for d in verdict.decisions] == [
        ("phone.format", Outcome.REPAIRED),
        ("phone.unrecognised", Outcome.REPORTED),
    ]
    assert verdict.body is not None
    assert b'"4712345678"' in verdict.body


def test_unreadable_value_is_not_unrecognised() -> None:
    """A value that cannot be read is phone.format's business alone."""
    for value in ("abc", "12", "+45 20 12 34 56"):
        assert findings(RECOGNISED, phone_request(EC, value)) == []


# --- masking -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        pytest.param("+47 912 34 567", "+47******67", id="plus"),
        pytest.param("0047 91234567", "+47******67", id="00-prefix"),
        pytest.param("(+47) 91 23 45 67", "+47******67", id="brackets"),
        pytest.param("+358 40 123 4567", "+358******67", id="three-digit-cc"),
        pytest.param("+1 202 555 0143", "+1******43", id="one-digit-cc"),
        pytest.param("4791234567", "******67", id="digits-only"),
        pytest.param("91234567", "******67", id="national"),
        pytest.param("+47 12", "******", id="too-short-after-cc"),
        pytest.param("12", "******", id="too-short"),
        pytest.param("abc", "******", id="no-digits"),
        pytest.param("", "", id="empty"),
    ],
)
def test_mask_phone(text: str, masked: str) -> None:
    """mask_phone keeps at most the country code and the last two digits."""
    assert mask_phone(text) == masked


@given(st.text(alphabet="+0123456789 -.()", max_size=30))
def test_mask_phone_never_shows_the_whole_number(text: str) -> None:
    """A masked value never contains the input's digits, and always shows fewer of them."""
    masked = mask_phone(text)
    if digits(text):
        assert digits(text) not in masked
        assert len(digits(masked)) < len(digits(text))
        assert len(digits(masked)) <= 5


# Numbers other than the API's own examples, which the `expected` text quotes.
SENSITIVE = [
    (EP, "+47 413 57 924"),
    (EP, "0047 41357924"),
    (EP, "93572468"),
    (EP, "4713572468"),
    (EP, "+47 135 72 468"),
    (EP, 4741357924),
    (EP, 93572468),
    (EC, "4741357924"),
    (EC, "+45 20 12 34 56"),
    (EC, "13572468"),
    (CO, "+47 413 57 9x4"),
]


@pytest.mark.parametrize(("key", "value"), SENSITIVE, ids=[str(v) for _, v in SENSITIVE])
def test_findings_never_carry_the_whole_number(key: str, value: object) -> None:
    """Finding values and messages show phone numbers masked, never whole."""
    sent = digits(str(value))
    all_findings = findings(FORMAT, phone_request(key, value)) + findings(
        RECOGNISED, phone_request(key, value)
    )
    assert all_findings
    for finding in all_findings:
        assert finding.value is not None
        assert sent not in digits(finding.value)
        assert str(value) not in finding.message
        shown = digits(finding.message.split("(sent ")[1].split(")")[0])
        assert sent not in shown
        if finding.repair is not None:
            assert str(finding.repair.value) not in finding.message


# --- engine integration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "raw_value", "expected"),
    [
        pytest.param("/epayment/v1/payments", b'"+47 912 34 567"', b'"4791234567"', id="ep"),
        pytest.param("/epayment/v1/payments", b'"\\u002b47 912 34 567"', b'"4791234567"', id="esc"),
        pytest.param("/epayment/v1/payments", b"4791234567", b'"4791234567"', id="ep-number"),
    ],
)
def test_engine_splices_only_the_phone_value(path: str, raw_value: bytes, expected: bytes) -> None:
    """The engine's repaired body differs from the original only in the phone value's bytes."""
    template = (
        b'{ "amount" : {"currency":"NOK",  "value": 49900.0},\n'
        b'  "customer": {"phoneNumber" :  %s },\n'
        b'  "reference": "order-20240101-0001", "note": "+47 912 34 567" }'
    )
    request = build_request("POST", path, [], template % raw_value)
    verdict = engine().evaluate(request)
    assert not verdict.blocked
    assert verdict.body == template % expected


def test_engine_repairs_ecom_in_place() -> None:
    """An eCom mobile number is replaced in place by the 8-digit number, nothing else changes."""
    raw = (
        b'{"customerInfo":{"mobileNumber":"0047 912 34 567"},'
        b'"transaction":{"orderId":"order-1","amount":49900,"transactionText":"Socks"}}'
    )
    verdict = engine().evaluate(build_request("POST", "/ecomm/v2/payments", [], raw))
    assert verdict.body == raw.replace(b'"0047 912 34 567"', b'"91234567"')


def test_report_mode_changes_nothing() -> None:
    """In report mode a repairable phone is reported as would-repair; the body is untouched."""
    request = phone_request(EP, "+47 912 34 567")
    verdict = PolicyEngine([FORMAT, RECOGNISED], mode=PolicyMode.REPORT).evaluate(request)
    assert verdict.body is None
    assert not verdict.blocked
    assert [d.outcome for d in verdict.decisions] == [Outcome.WOULD_REPAIR]


def test_report_mode_still_names_unrepairable_phones_would_block() -> None:
    """In report mode a phone enforce would block (no safe repair) stays would-block."""
    request = phone_request(EC, "+45 12 34 56 78")
    verdict = PolicyEngine([FORMAT, RECOGNISED], mode=PolicyMode.REPORT).evaluate(request)
    assert verdict.body is None
    assert Outcome.WOULD_BLOCK in [d.outcome for d in verdict.decisions]


# --- property: every notation of a Norwegian mobile number -------------------------------------


def is_valid_norwegian(national: str) -> bool:
    """Whether libphonenumber knows `national` as an allocated Norwegian number."""
    return phonenumbers.is_valid_number(phonenumbers.parse(national, "NO"))


NORWEGIAN_MOBILES = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from("49"),
    st.text(alphabet="0123456789", min_size=7, max_size=7),
).filter(is_valid_norwegian)

GROUPINGS = [(8,), (3, 2, 3), (2, 2, 2, 2), (4, 4), (2, 3, 3)]


@st.composite
def notations(draw: st.DrawFn) -> tuple[str, str]:
    """A valid Norwegian mobile number and one common way of writing it."""
    national = draw(NORWEGIAN_MOBILES)
    sep = draw(st.sampled_from([" ", "-", ".", ""]))
    groups, at = [], 0
    for size in draw(st.sampled_from(GROUPINGS)):
        groups.append(national[at : at + size])
        at += size
    body = sep.join(groups)
    prefix = draw(st.sampled_from(["", "+47", "0047", "47", "(+47)", "+47-"]))
    gap = "" if not prefix or prefix.endswith("-") else draw(st.sampled_from(["", " "]))
    return national, f"{prefix}{gap}{body}"


@given(notations())
def test_any_notation_of_a_norwegian_mobile_is_repaired_exactly(case: tuple[str, str]) -> None:
    """Any notation of a valid Norwegian mobile becomes 47XXXXXXXX, or XXXXXXXX for eCom; for
    ePayment, a national number that itself starts with 47 is ambiguous and not repaired."""
    national, written = case
    compact = "".join(ch for ch in written if ch.isdigit() or ch == "+")
    for key, wanted in ((EP, f"47{national}"), (EC, national)):
        request = phone_request(key, written)
        got = findings(FORMAT, request)
        if written == wanted:
            assert got == []
        elif key == EP and compact == national and national.startswith("47"):
            (finding,) = got
            assert (finding.repair, finding.condition) == (None, "ambiguous")
        else:
            (finding,) = got
            assert finding.repair is not None
            assert finding.repair.value == wanted
        assert findings(RECOGNISED, request) == []
