"""Phone number fields of the Vipps APIs: which body field of which operation holds a number, and
the form its API takes it in.

Each API wants its own form. ePayment, Recurring and Checkout take MSISDN digits: country code
and subscriber number, no `+`, no `00` (`4791234567`). eCom takes the 8-digit Norwegian number
(`91234567`). The rules that read these fields are in `policies.rules.phones`; the catalogue
(`policies.catalogue.spec`) gives each operation its fields.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from policies.core.jsonbody import Path

__all__ = [
    "CHECKOUT",
    "CHECKOUT_V2",
    "ECOM",
    "MSISDN",
    "MSISDN_10_15",
    "MSISDN_OR_NATIONAL",
    "PHONE_FIELDS",
    "PHONE_TABLE",
    "PhoneField",
    "PhoneFormat",
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
