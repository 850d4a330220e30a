"""Phone number fields of the Vipps APIs, and the rules that check how they are written.

Each API wants its own form. ePayment, Recurring and Checkout take MSISDN digits: country code
and subscriber number, no `+`, no `00` (`4791234567`). eCom takes the 8-digit Norwegian number
(`91234567`). Merchants write numbers the way people do (`+47 912 34 567`), which Vipps rejects
(ePayment 4070 "Invalid phone number", eCom error 81) or, for a Checkout prefill, answers by asking
the user to type the number again. Numbers are read with libphonenumber (`phonenumbers`), and a
value is repaired only where that reading is certain.

Which fields hold a number, and in which form, is in `policies.catalogue.phone_fields`; the rules
read each operation's fields from its catalogue entry (`policies.catalogue.spec`). Phone numbers are
personal data: findings carry them masked (`mask_phone`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import ClassVar

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber

from policies.catalogue.operations import Operation
from policies.catalogue.phone_fields import (
    MSISDN,
    PhoneField,
    PhoneFormat,
)
from policies.catalogue.spec import spec_of
from policies.core.model import (
    Action,
    AuditedRequest,
    Condition,
    Evidence,
    Finding,
    JsonValue,
    Repair,
    Source,
    describe_value,
    format_path,
)
from policies.core.phone_mask import SEPARATORS, mask_phone
from policies.rules.evidence import EPAYMENT_INVALID_PHONE, KB_ERROR_81

__all__ = ["PhoneNumberFormat", "PhoneNumberRecognised", "is_clean_phone"]


# Where a number without a country code is read: the country of the body's currency (the
# catalogue's `currency`, the main amount's), since a sales unit's currency matches its market.
# EUR is Finland: the one euro market of Vipps MobilePay.
_REGION_OF_CURRENCY: Mapping[str, str] = MappingProxyType(
    {"NOK": "NO", "DKK": "DK", "EUR": "FI", "SEK": "SE"}
)

_NORWAY = 47
_MSISDN_SHAPE = MSISDN.fits
_MAX_DIGITS = 17  # 15 (E.164) plus a 00 prefix


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
    # "empty" or "foreign" (a number eCom cannot take) where that is what is wrong.
    kind: str = ""


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
        return _Reading(problem="is an empty string", kind="empty")
    compact = text.translate(SEPARATORS)
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
                kind="foreign",
            )
        target = phonenumbers.national_significant_number(number)
        if region is None:
            # For eCom the + or 00 is part of the country code that has to go.
            slips = [s for s in slips if not s.endswith("prefix")] + ["the country code +47"]
    else:
        code = str(number.country_code)
        if region is not None and digits.startswith(code):
            # `47234567` may be +47 with two digits lost (a converter that cut a country code
            # off `912 34 567`) or a national number: prefixing 47 could reach someone else.
            return _Reading(
                number,
                problem=f"has no country code, yet starts with {code}, the code of the region it"
                " would be read in: either digits are missing or the country code is, so it is"
                " not repaired",
                kind="ambiguous",
            )
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
    at = spec_of(request.operation).currency
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
    for field in spec_of(request.operation).phones:
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
    be read, a foreign number for eCom, or 8 digits that start with the country code they would
    be given (`47234567`: digits or the code are missing, the proxy cannot tell which), has no
    repair and is blocked (ePayment "Invalid
    phone number", eCom error 81), except for Checkout, where Vipps asks the user to re-enter
    an invalid prefill, for Recurring, which states no format to refuse by, and for an empty
    string: those are only reported.
    """

    code: ClassVar[str] = "phone.format"
    default_action: ClassVar[Action] = Action.REPAIR
    can_repair: ClassVar[bool] = True
    summary: ClassVar[str] = "phone numbers are in the form each API takes; slips are repaired"
    conditions: ClassVar[tuple[Condition, ...]] = (
        Condition("notation", Action.REPAIR, (EPAYMENT_INVALID_PHONE, KB_ERROR_81)),
        Condition("unreadable", Action.BLOCK, (EPAYMENT_INVALID_PHONE, KB_ERROR_81)),
        Condition("foreign", Action.BLOCK, (KB_ERROR_81,)),
        Condition(
            "ambiguous",
            Action.BLOCK,
            (
                EPAYMENT_INVALID_PHONE,
                Evidence(
                    "[EP #/components/schemas/CustomerPhoneNumber/properties/phoneNumber]",
                    "MSISDN is the country code and the subscriber number, 9 to 15 digits",
                ),
            ),
        ),
        Condition(
            "recurring",
            Action.REPORT,
            why="Recurring states no pattern for phoneNumber (MSISDN by description only) and"
            " documents no refusal",
        ),
        Condition(
            "empty",
            Action.REPORT,
            why="an empty string in an optional number: no refusal is documented, and Vipps"
            " asks the user for a number it does not have",
        ),
        Condition(
            "prefill",
            Action.REPORT,
            why="advice: Checkout asks the user to enter an invalid prefill again",
        ),
    )
    default_region: str = "NO"

    def __post_init__(self) -> None:
        _check_region(self.default_region)

    def applies_to(self, operation: Operation) -> bool:
        return bool(spec_of(operation).phones)

    def check(self, request: AuditedRequest) -> Iterable[Finding]:
        for field, value, reading in _readings(request, self.default_region):
            if reading.fits:
                continue
            problem, advisory = reading.problem, False
            condition = _condition(request, field, reading)
            if condition == "prefill":
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
                condition=condition,
            )


def _condition(request: AuditedRequest, field: PhoneField, reading: _Reading) -> str:
    """Which of `phone.format`'s conditions a reading that does not fit falls under."""
    if reading.repair is not None:
        return "notation"
    if field.format.lenient:
        return "prefill"
    if reading.kind:
        return reading.kind
    return "recurring" if request.api == "recurring" else "unreadable"


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
    conditions: ClassVar[tuple[Condition, ...]] = (
        Condition(
            "unallocated", Action.REPORT, why="advice: Vipps' own test users have such numbers"
        ),
    )

    default_region: str = "NO"

    def __post_init__(self) -> None:
        _check_region(self.default_region)

    def applies_to(self, operation: Operation) -> bool:
        return bool(spec_of(operation).phones)

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
                condition="unallocated",
            )
