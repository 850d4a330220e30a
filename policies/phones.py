"""Phone number fields of the Vipps APIs, and the rules that check how they are written.

Each API wants its own form. ePayment, Recurring and Checkout take MSISDN digits: country code
and subscriber number, no `+`, no `00` (`4791234567`). eCom takes the 8-digit Norwegian number
(`91234567`). Merchants write numbers the way people do (`+47 912 34 567`), which Vipps rejects
(ePayment 4070 "Invalid phone number", eCom error 81) or, for a Checkout prefill, answers by asking
the user to type the number again. Numbers are read with libphonenumber (`phonenumbers`), and a
value is repaired only where that reading is certain.

Phone numbers are personal data: findings carry them masked (`mask_phone`), and `PHONE_FIELDS`
tells other modules (the audit log) which body fields of which operation hold one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import ClassVar

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber

from policies.model import (
    Action,
    AuditedRequest,
    Finding,
    JsonValue,
    Path,
    Repair,
    Source,
    describe_value,
    format_path,
)
from policies.operations import Operation

__all__ = [
    "PHONE_FIELDS",
    "PHONE_TABLE",
    "PhoneField",
    "PhoneFormat",
    "PhoneNumberFormat",
    "PhoneNumberRecognised",
    "is_clean_phone",
    "mask_phone",
]


@dataclass(frozen=True, slots=True)
class PhoneFormat:
    """The form in which one API takes a phone number."""

    expected: str  # what a merchant is told the API accepts
    fits: re.Pattern[str]  # the documented form: a value matching it is never `phone.format`
    national: bool = False  # repairs give the 8-digit Norwegian number (eCom), not MSISDN
    lenient: bool = False  # Vipps asks the user to re-enter an invalid value, never rejects it


# `^\d{9,15}$` in [EP #/components/schemas/CustomerPhoneNumber/properties/phoneNumber], which also
# says "no prefix": a leading 0 is always a prefix (00, or a national trunk 0), never the start of a
# country code (E.164), so `004791234567` and `0401234567` are not MSISDN even though they match.
_MSISDN = r"[1-9]\d{8,14}"
_MSISDN_TEXT = "MSISDN digits with country code, no + or 00, e.g. 4791234567"

MSISDN = PhoneFormat(_MSISDN_TEXT, re.compile(_MSISDN))
# [RC #/components/schemas/DraftAgreementV2/properties/customerPhoneNumber]: `^\d{10,15}$`.
MSISDN_10_15 = PhoneFormat(
    "MSISDN digits with country code (10 to 15 digits), no + or 00, e.g. 4791234567",
    re.compile(r"[1-9]\d{9,14}"),
)
# [RC #/components/schemas/ForceAcceptAgreement/properties/customerPhoneNumber] has no format, and
# its own example is the national `91234567`: both forms are accepted, repairs give MSISDN.
MSISDN_OR_NATIONAL = PhoneFormat(
    f"{_MSISDN_TEXT} (the spec's example 91234567 is also accepted)",
    re.compile(rf"{_MSISDN}|\d{{8}}"),
)
ECOM = PhoneFormat(
    "the 8-digit Norwegian number, no +47, 0047 or spaces, e.g. 91234567",
    re.compile(r"\d{8}"),
    national=True,
)
CHECKOUT = PhoneFormat(_MSISDN_TEXT, re.compile(_MSISDN), lenient=True)
# Checkout v2 prefill: "If no country code is provided, defaults to Norway (47)".
CHECKOUT_V2 = PhoneFormat(
    f"{_MSISDN_TEXT} (8 digits without a country code are read as Norwegian)",
    re.compile(rf"{_MSISDN}|\d{{8}}"),
    lenient=True,
)


@dataclass(frozen=True, slots=True)
class PhoneField:
    """One body field that holds a phone number, its API's form, and the spec pointer."""

    path: Path
    format: PhoneFormat
    spec: str


# Operation.key, field, form, spec key and schema (the field's pointer is its `properties/` entry).
_ROWS: tuple[tuple[str, str, PhoneFormat, str, str], ...] = (
    ("epayment.create_payment", "customer.phoneNumber", MSISDN, "EP", "CustomerPhoneNumber"),
    # ForceApprove.customer is the same Customer schema.
    ("epayment.force_approve", "customer.phoneNumber", MSISDN, "EP", "CustomerPhoneNumber"),
    ("ecom.initiate_payment", "customerInfo.mobileNumber", ECOM, "EC", "CustomerInfo"),
    ("ecom.force_approve", "customerPhoneNumber", ECOM, "EC", "ForceApproveRequest"),
    ("recurring.draft_agreement", "phoneNumber", MSISDN, "RC", "DraftAgreementV3"),
    ("recurring.force_accept_agreement", "phoneNumber", MSISDN, "RC", "ForceAcceptAgreementV3"),
    ("recurring.draft_agreement_v2", "customerPhoneNumber", MSISDN_10_15, "RC", "DraftAgreementV2"),
    (
        "recurring.force_accept_agreement_v2",
        "customerPhoneNumber",
        MSISDN_OR_NATIONAL,
        "RC",
        "ForceAcceptAgreement",
    ),
    ("checkout.create_session", "prefillCustomer.phoneNumber", CHECKOUT, "CO", "PrefillCustomer"),
    # The merchant's own number for Porterbuddy deliveries, also documented as MSISDN.
    (
        "checkout.create_session",
        "logistics.integrations.porterbuddy.origin.phoneNumber",
        CHECKOUT,
        "CO",
        "PorterbuddyOrigin",
    ),
    (
        "checkout.create_session_v2",
        "prefillCustomer.phoneNumber",
        CHECKOUT_V2,
        "checkout-v2.yaml",
        "PrefillCustomer",
    ),
)


def _table() -> dict[str, tuple[PhoneField, ...]]:
    table: dict[str, tuple[PhoneField, ...]] = {}
    for key, dotted, fmt, spec, schema in _ROWS:
        path = tuple(dotted.split("."))
        pointer = f"{spec} #/components/schemas/{schema}/properties/{path[-1]}"
        table[key] = (*table.get(key, ()), PhoneField(path, fmt, pointer))
    return table


PHONE_TABLE: Mapping[str, tuple[PhoneField, ...]] = MappingProxyType(_table())
"""The phone fields of each operation (keyed by `Operation.key`), with their API's form."""

PHONE_FIELDS: Mapping[str, tuple[Path, ...]] = MappingProxyType(
    {key: tuple(f.path for f in fields) for key, fields in PHONE_TABLE.items()}
)
"""The JSON paths of phone fields per `Operation.key`, e.g. for masking logged bodies."""

# Where the body names its currency: a number without a country code is most likely from the
# merchant's market, which the currency gives away (a sales unit's currency matches its country).
_CURRENCY_AT: Mapping[str, Path] = MappingProxyType(
    {
        "epayment.create_payment": ("amount", "currency"),
        "recurring.draft_agreement": ("pricing", "currency"),
        "recurring.draft_agreement_v2": ("currency",),
        "checkout.create_session": ("transaction", "amount", "currency"),
        "checkout.create_session_v2": ("transaction", "amount", "currency"),
    }
)
# EUR is Finland: the one euro market of Vipps MobilePay.
_REGION_OF_CURRENCY: Mapping[str, str] = MappingProxyType(
    {"NOK": "NO", "DKK": "DK", "EUR": "FI", "SEK": "SE"}
)

_NORWAY = 47
# Characters people put between digits; anything else (letters, "ext") is not a notation slip.
_SEPARATORS = str.maketrans(dict.fromkeys(" \t\u00a0\u2009\u202f-.()"))
_MSISDN_SHAPE = re.compile(_MSISDN)
_MAX_DIGITS = 17  # 15 (E.164) plus a 00 prefix
_MASK = "******"


def mask_phone(text: str) -> str:
    """Mask a phone-like string, keeping at most the country code and the last two digits.

    `+47 912 34 567` and `0047 91234567` give `+47******67`, `4791234567` gives `******67`. With
    fewer than six digits after the country code nothing of the number is kept, so a short value
    is never shown whole. The number of stars is fixed, so the length is not shown either.
    """
    if not text:
        return ""
    compact = text.strip().translate(_SEPARATORS)
    digits = "".join(c for c in compact if c in "0123456789")
    prefix = ""
    if compact.startswith(("+", "00")):
        international = digits if compact.startswith("+") else digits[2:]
        code = _country_code(international)
        if code:
            prefix, digits = f"+{code}", international[len(code) :]
    if len(digits) < 6:
        return _MASK
    return f"{prefix}{_MASK}{digits[-2:]}"


def _country_code(digits: str) -> str:
    # Country codes are prefix-free, so the first known one of length 1 to 3 is the one.
    for size in (1, 2, 3):
        code = digits[:size]
        if len(code) == size and (
            phonenumbers.region_code_for_country_code(int(code)) != phonenumbers.UNKNOWN_REGION
        ):
            return code
    return ""


def _check_region(region: str) -> None:
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"default_region {region!r} is not a region libphonenumber knows")


@dataclass(frozen=True, slots=True)
class _Reading:
    """What a phone value means, whether it is in the API's form, and the repair if it is not."""

    number: PhoneNumber | None = None
    fits: bool = False
    repair: str | None = None
    problem: str = ""


def _parse(text: str, region: str | None) -> PhoneNumber | None:
    try:
        return phonenumbers.parse(text, region)
    except NumberParseException:
        return None


def _possible(number: PhoneNumber | None) -> bool:
    return number is not None and phonenumbers.is_possible_number(number)


def _read(value: JsonValue, fmt: PhoneFormat, regions: tuple[str, ...]) -> _Reading:
    if isinstance(value, str):
        return _read_text(value, fmt, regions)
    if isinstance(value, int) and not isinstance(value, bool) and fmt.fits.fullmatch(str(value)):
        # Only the JSON type is wrong: the same digits as a string mean the same number.
        problem = "is a JSON number, but the API takes phone numbers as strings"
        return _Reading(_read_fitting(str(value)), repair=str(value), problem=problem)
    numeric = isinstance(value, int | Decimal) and not isinstance(value, bool)
    kind = "number" if numeric else describe_value(value)
    return _Reading(problem=f"is a JSON {kind}, but the API takes phone numbers as strings")


# Parsing is the costliest step of any rule, and both phone rules read the same value: keep
# recent readings (a reading is immutable once made).
@functools.lru_cache(maxsize=2048)
def _read_text(value: str, fmt: PhoneFormat, regions: tuple[str, ...]) -> _Reading:
    if fmt.fits.fullmatch(value):
        return _Reading(_read_fitting(value), fits=True)
    return _read_notation(value, fmt, regions)


def _valid(reading: _Reading) -> bool:
    return reading.number is not None and phonenumbers.is_valid_number(reading.number)


def _read_fitting(digits: str) -> PhoneNumber | None:
    # No form takes MSISDN shorter than 9 digits, so 8 digits are always the Norwegian number.
    return _parse(digits, "NO") if len(digits) == 8 else _parse(f"+{digits}", None)


def _read_notation(raw: str, fmt: PhoneFormat, regions: tuple[str, ...]) -> _Reading:
    text = raw.strip()
    if not text:
        return _Reading(problem="is an empty string")
    compact = text.translate(_SEPARATORS)
    international = compact.startswith("+")
    digits = compact[1:] if international else compact
    if not (digits.isascii() and digits.isdigit()):
        return _Reading(
            problem="is not a phone number (it holds characters other than digits, a leading +,"
            " spaces, dashes, dots or brackets)"
        )
    if len(digits) > _MAX_DIGITS:
        return _Reading(problem="has more digits than any phone number")
    slips = ["a + prefix"] if international else []
    if not international and digits.startswith("00"):
        international, digits = True, digits[2:]
        slips.append("a 00 prefix")
    number, region = _pick(digits, international, regions)
    if number is None:
        return _Reading(
            problem="cannot be read as a possible phone number (too few or too many digits,"
            " or no known country code)"
        )
    if compact != raw:
        slips.append("spaces or punctuation")
    if fmt.national:
        if number.country_code != _NORWAY:
            return _Reading(
                number,
                problem=f"is a number with country code +{number.country_code}; eCom takes only"
                " Norwegian 8-digit numbers and Vipps rejects others with error 81",
            )
        target = phonenumbers.national_significant_number(number)
        if region is None:
            # For eCom the + or 00 is part of the country code that has to go.
            slips = [s for s in slips if not s.endswith("prefix")] + ["the country code +47"]
    else:
        target = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]
        if region is not None:
            slips.append(f"no country code (read as +{number.country_code} for region {region})")
    if not fmt.fits.fullmatch(target):
        return _Reading(number, problem="is a possible phone number, but not one the API can take")
    return _Reading(
        number, repair=target, problem=f"is not in the API's form: it has {_join(slips)}"
    )


def _pick(
    digits: str, international: bool, regions: tuple[str, ...]
) -> tuple[PhoneNumber | None, str | None]:
    """The number `digits` denote, and the region it was read in (None: read with country code)."""
    if international or _MSISDN_SHAPE.fullmatch(digits):
        # Digits shaped like MSISDN are taken as written (`47 91 23 45 67` is +47 with spaces)
        # before any national reading, so the same digits never mean two numbers.
        number = _parse(f"+{digits}", None)
        if _possible(number):
            return number, None
        if international:
            return None, None
    readings = [(n, r) for r in regions if _possible(n := _parse(digits, r))]
    for number, region in readings:
        if number is not None and phonenumbers.is_valid_number(number):
            return number, region
    return readings[0] if readings else (None, None)


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts) or "a notation the API does not take"
    return f"{', '.join(parts[:-1])} and {parts[-1]}"


def _regions(request: AuditedRequest, fmt: PhoneFormat, default_region: str) -> tuple[str, ...]:
    """Where to read a number without a country code: the currency's country, then the default."""
    if fmt.national:
        return ("NO",)  # eCom's numbers are Norwegian by definition
    at = _CURRENCY_AT.get(request.operation.key)
    currency = request.field(at) if at else None
    region = _REGION_OF_CURRENCY.get(currency) if isinstance(currency, str) else None
    return tuple(dict.fromkeys(r for r in (region, default_region) if r))


@functools.lru_cache(maxsize=2048)
def is_clean_phone(value: str, fmt: PhoneFormat) -> bool:
    """Whether neither phone rule finds anything in `value`: in `fmt`'s form and in use.

    A value in the API's form is read without a region, so the regions do not matter here;
    one in another form is not parsed at all (the rules read it with the body's regions).
    """
    if not fmt.fits.fullmatch(value):
        return False
    reading = _read_text(value, fmt, ())
    return reading.fits and _valid(reading)


def _readings(
    request: AuditedRequest, default_region: str
) -> Iterator[tuple[PhoneField, JsonValue, _Reading]]:
    for field in PHONE_TABLE.get(request.operation.key, ()):
        value = request.field(field.path)
        if value is not None:  # absent, or an optional field sent as null: nothing to check
            regions = _regions(request, field.format, default_region)
            yield field, value, _read(value, field.format, regions)


def _shown(value: JsonValue) -> str | None:
    if isinstance(value, str):
        return mask_phone(value) or '""'
    if isinstance(value, int) and not isinstance(value, bool):
        return mask_phone(str(value))
    return None


@dataclass(frozen=True, slots=True)
class PhoneNumberFormat:
    """A phone number must be written in the form its API documents.

    ePayment: MSISDN digits, `^\\d{9,15}$` [EP #/components/schemas/CustomerPhoneNumber]; eCom:
    the 8-digit Norwegian number, `^\\d{8}$` [EC #/components/schemas/CustomerInfo]; Recurring
    and Checkout: MSISDN [RC #/components/schemas/DraftAgreementV3], [CO #/components/schemas/
    PrefillCustomer]. A notation slip that keeps the number (`+47 912 34 567`, `0047 91234567`,
    `91234567` with currency NOK) is repaired into the API's form; a number without a country code
    is read in the country of the body's currency, then in `default_region`. A value that cannot
    be read, or a foreign number for eCom, has no repair and is blocked, except for Checkout,
    where Vipps asks the user to re-enter an invalid prefill, so it is only reported.
    """

    code: ClassVar[str] = "phone.format"
    default_action: ClassVar[Action] = Action.REPAIR
    can_repair: ClassVar[bool] = True
    summary: ClassVar[str] = "phone numbers are in the form each API takes; slips are repaired"
    default_region: str = "NO"

    def __post_init__(self) -> None:
        _check_region(self.default_region)

    def applies_to(self, operation: Operation) -> bool:
        return operation.key in PHONE_TABLE

    def check(self, request: AuditedRequest) -> Iterable[Finding]:
        for field, value, reading in _readings(request, self.default_region):
            if reading.fits:
                continue
            problem, advisory = reading.problem, False
            if reading.repair is None and field.format.lenient:
                # Checkout shows the user an input field instead of rejecting: never block.
                problem += "; Vipps asks the user to enter the number again, so this is reported"
                advisory = True
            yield Finding(
                rule=self.code,
                source=Source.BODY,
                field=format_path(field.path),
                problem=problem,
                expected=field.format.expected,
                value=_shown(value),
                repair=Repair(field.path, reading.repair) if reading.repair is not None else None,
                advisory=advisory,
            )


@dataclass(frozen=True, slots=True)
class PhoneNumberRecognised:
    """A phone number in (or repairable into) its API's form should be a number in use.

    libphonenumber knows which ranges are allocated; a well-formed number outside them
    (`4712345678`) is reported, never blocked by default: Vipps' own examples and test users
    have such numbers [EP #/components/schemas/CustomerPhoneNumber/properties/phoneNumber].
    Values that cannot be read are `phone.format`'s business. Findings are always advisory:
    Vipps accepts these numbers, so the proxy never blocks them.
    """

    code: ClassVar[str] = "phone.unrecognised"
    default_action: ClassVar[Action] = Action.REPORT
    can_repair: ClassVar[bool] = False
    summary: ClassVar[str] = "phone numbers are in ranges libphonenumber knows to be allocated"
    default_region: str = "NO"

    def __post_init__(self) -> None:
        _check_region(self.default_region)

    def applies_to(self, operation: Operation) -> bool:
        return operation.key in PHONE_TABLE

    def check(self, request: AuditedRequest) -> Iterable[Finding]:
        for field, value, reading in _readings(request, self.default_region):
            if not reading.fits and reading.repair is None:
                continue
            if _valid(reading):
                continue
            yield Finding(
                rule=self.code,
                source=Source.BODY,
                field=format_path(field.path),
                problem="is well-formed but not in a range libphonenumber knows to be allocated",
                expected="a number in use (Vipps' test users have such numbers, so it is reported)",
                value=_shown(value),
                # Vipps accepts these numbers, so this is advice whatever the rule's action.
                advisory=True,
            )
