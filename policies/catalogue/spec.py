"""The catalogue: one immutable entry per Vipps operation, with everything the proxy knows of it.

`policies.catalogue.operations` says which operation a method and path are; this module gathers,
once at import, what each operation carries and means: its money fields and currencies, phone, URL
and id fields, the headers it needs, its JSON body, its documented rate limit, its error shape and
what it does for the payment-level audit. Every rule and the payment-level audit read these
entries (`spec_of(operation)`), never a table of their own keyed by the operation's name.

Each kind of fact is written once, in the table of its kind, read from the OpenAPI files and
the fact sheet: money in `policies.catalogue.money_fields`, phone numbers in
`policies.catalogue.phone_fields`, ids in `policies.catalogue.id_fields`, URLs in
`policies.catalogue.url_fields`, headers in `policies.catalogue.header_fields`, request bodies in
the generated `policies.catalogue.request_fields`, rate limits in `policies.catalogue.rate_limits`,
error shapes in `policies.core.errors`; what each operation does for the payment audit is the table
`PARTS` below. A new field of an existing operation is one row in its kind's table; a new operation
is its `Operation` in `policies.catalogue.operations` and a row in each table that concerns it. A
table row naming an operation outside the catalogue fails the import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from policies.catalogue.header_fields import HeaderPlan, header_plan
from policies.catalogue.id_fields import BODY_IDS, ECHOED_IDS, PATH_IDS, EchoedId, IdFormat
from policies.catalogue.money_fields import MONEY_FIELDS, MoneyField
from policies.catalogue.operations import OPERATIONS, UNKNOWN, WRITE_METHODS, Operation
from policies.catalogue.phone_fields import PHONE_TABLE, PhoneField
from policies.catalogue.rate_limits import DEFAULT_LIMITS, Limit
from policies.catalogue.request_fields import REQUEST_BODIES, RequestBody
from policies.catalogue.url_fields import URL_FIELDS, UrlFields
from policies.core.errors import ErrorShape, error_shape
from policies.core.jsonbody import Path

__all__ = [
    "EXPRESS_OPERATIONS",
    "EXPRESS_PAYMENT",
    "PARTS",
    "PAYMENT_TYPE",
    "SPECS",
    "OperationSpec",
    "Part",
    "Tables",
    "build_catalogue",
    "build_spec",
    "spec_of",
]

EXPRESS_PAYMENT = "eComm Express Payment"
"""`merchantInfo.paymentType` of an express payment, spelled exactly as the API takes it."""
PAYMENT_TYPE: Path = ("merchantInfo", "paymentType")
"""Where an eCom initiate says it is an express payment [EC #/components/schemas/MerchantInfo]."""
EXPRESS_OPERATIONS = frozenset({"ecom.initiate_payment"})
"""The operations that may start an express payment ("Vipps Hurtigkasse")."""


class Part(StrEnum):
    """What an operation does for the payment-level audit (ledger, polling)."""

    CREATES = "creates"  # creates a payment or a Recurring charge: the ledger's first figures
    CAPTURES = "captures"
    REFUNDS = "refunds"
    CANCELS = "cancels"
    READS = "reads"  # the answer carries Vipps' figures for one payment or charge
    READS_LIST = "reads_list"  # the answer lists charges, each with Vipps' figures
    AWAITS_POLLS = "awaits_polls"  # creates a payment, session or agreement to be polled
    POLLS = "polls"  # reads the status of a payment, session or agreement


_C, _CP, _RF, _CN = Part.CREATES, Part.CAPTURES, Part.REFUNDS, Part.CANCELS
_RD, _AW, _PL = Part.READS, Part.AWAITS_POLLS, Part.POLLS

PARTS: Mapping[str, frozenset[Part]] = MappingProxyType(
    {
        key: frozenset(parts)
        for key, parts in {
            # A Checkout payment is an ePayment payment, polled through either API (facts §7).
            "epayment.create_payment": (_C, _AW),
            "epayment.get_payment": (_RD, _PL),
            "epayment.get_payment_events": (_PL,),
            "epayment.capture_payment": (_CP,),
            "epayment.refund_payment": (_RF,),
            "epayment.cancel_payment": (_CN,),
            "checkout.create_session": (_C, _AW),
            "checkout.get_session": (_RD, _PL),
            "ecom.initiate_payment": (_C, _AW),
            "ecom.get_payment_details": (_RD, _PL),
            "ecom.get_order_status": (_PL,),
            "ecom.capture_payment": (_CP,),
            "ecom.refund_payment": (_RF,),
            "ecom.cancel_payment": (_CN,),
            # The ledger follows charges; the polling audit follows the agreement.
            "recurring.draft_agreement": (_AW,),
            "recurring.get_agreement": (_PL,),
            "recurring.create_charge": (_C,),
            "recurring.capture_charge": (_CP,),
            "recurring.refund_charge": (_RF,),
            "recurring.cancel_charge": (_CN,),
            "recurring.get_charge": (_RD,),
            "recurring.get_charge_by_id": (_RD,),
            "recurring.list_charges": (Part.READS_LIST,),
        }.items()
    }
)
"""What each operation does for the payment-level audit, by `Operation.key` (facts §4-§7, §11.3)."""


@dataclass(frozen=True, slots=True)
class OperationSpec:
    """Everything the proxy knows of one operation, built once from the tables of each kind.

    `amount` is the amount the payment audit counts: the main amount (`MoneyField.main`), or
    the one amount of an operation that has only one (a capture or refund); `currency` is where
    the body names the currency of its main amount. `created_id` is the body field naming the
    payment or charge a create call makes; `path_id` the path parameter naming the payment,
    `echoed_id` the body fields integrations echo it in. `creates` ... `polls` spell out
    `parts` (see `Part`); `writes` says the method changes something at Vipps.
    """

    operation: Operation
    key: str
    money: tuple[MoneyField, ...]
    currencies: tuple[Path, ...]
    amount: MoneyField | None
    currency: Path | None
    phones: tuple[PhoneField, ...]
    urls: UrlFields | None
    body_ids: tuple[tuple[Path, IdFormat], ...]
    path_id: tuple[str, IdFormat] | None
    echoed_id: EchoedId | None
    created_id: Path | None
    headers: HeaderPlan
    body: RequestBody | None
    rate_limit: Limit | None
    error_shape: ErrorShape
    express: bool
    parts: frozenset[Part]
    creates: bool
    captures: bool
    refunds: bool
    cancels: bool
    reads: bool
    reads_list: bool
    awaits_polls: bool
    polls: bool
    writes: bool


@dataclass(frozen=True, slots=True)
class Tables:
    """The source tables, by `Operation.key`, that the entries are built from."""

    money: Mapping[str, tuple[MoneyField, ...]] = field(default_factory=lambda: MONEY_FIELDS)
    phones: Mapping[str, tuple[PhoneField, ...]] = field(default_factory=lambda: PHONE_TABLE)
    urls: Mapping[str, UrlFields] = field(default_factory=lambda: URL_FIELDS)
    body_ids: Mapping[str, tuple[tuple[Path, IdFormat], ...]] = field(
        default_factory=lambda: BODY_IDS
    )
    path_ids: Mapping[str, tuple[str, IdFormat]] = field(default_factory=lambda: PATH_IDS)
    echoed_ids: Mapping[str, EchoedId] = field(default_factory=lambda: ECHOED_IDS)
    bodies: Mapping[str, RequestBody] = field(default_factory=lambda: REQUEST_BODIES)
    rate_limits: Mapping[str, Limit] = field(default_factory=lambda: DEFAULT_LIMITS)
    parts: Mapping[str, frozenset[Part]] = field(default_factory=lambda: PARTS)
    express: frozenset[str] = EXPRESS_OPERATIONS

    def keys(self) -> dict[str, frozenset[str]]:
        """The operation keys each table names, by table."""
        return {
            "money": frozenset(self.money),
            "phones": frozenset(self.phones),
            "urls": frozenset(self.urls),
            "body_ids": frozenset(self.body_ids),
            "path_ids": frozenset(self.path_ids),
            "echoed_ids": frozenset(self.echoed_ids),
            "bodies": frozenset(self.bodies),
            "rate_limits": frozenset(self.rate_limits),
            "parts": frozenset(self.parts),
            "express": self.express,
        }


def build_spec(operation: Operation, tables: Tables = Tables()) -> OperationSpec:
    """The entry for `operation`, gathered from `tables`."""
    key = operation.key
    money = tables.money.get(key, ())
    main = next((f for f in money if f.main), None)
    amount = main if main is not None else (money[0] if len(money) == 1 else None)
    parts = tables.parts.get(key, frozenset())
    body_ids = tables.body_ids.get(key, ())
    creates = Part.CREATES in parts
    return OperationSpec(
        operation=operation,
        key=key,
        money=money,
        currencies=tuple(dict.fromkeys(f.currency for f in money if f.currency)),
        amount=amount,
        currency=main.currency if main is not None else None,
        phones=tables.phones.get(key, ()),
        urls=tables.urls.get(key),
        body_ids=body_ids,
        path_id=tables.path_ids.get(key),
        echoed_id=tables.echoed_ids.get(key),
        created_id=body_ids[0][0] if creates and body_ids else None,
        headers=header_plan(operation),
        body=tables.bodies.get(key),
        rate_limit=tables.rate_limits.get(key),
        error_shape=error_shape(operation),
        express=key in tables.express,
        parts=parts,
        creates=creates,
        captures=Part.CAPTURES in parts,
        refunds=Part.REFUNDS in parts,
        cancels=Part.CANCELS in parts,
        reads=Part.READS in parts,
        reads_list=Part.READS_LIST in parts,
        awaits_polls=Part.AWAITS_POLLS in parts,
        polls=Part.POLLS in parts,
        writes=operation.method in WRITE_METHODS,
    )


def build_catalogue(
    operations: tuple[Operation, ...] = OPERATIONS,
    tables: Tables = Tables(),
) -> Mapping[Operation, OperationSpec]:
    """One entry per operation (and `UNKNOWN`); raises ValueError for a table row naming an
    operation that is not in `operations`, so a misspelt key cannot go unnoticed."""
    known = {op.key for op in operations}
    for table, keys in tables.keys().items():
        stray = sorted(keys - known)
        if stray:
            raise ValueError(f"{table} names operations not in the catalogue: {', '.join(stray)}")
    specs = {op: build_spec(op, tables) for op in (*operations, UNKNOWN)}
    return MappingProxyType(specs)


SPECS: Mapping[Operation, OperationSpec] = build_catalogue()
"""Every catalogued operation's entry, keyed by the `Operation` itself."""


def spec_of(operation: Operation) -> OperationSpec:
    """The catalogue entry of `operation` (one outside the catalogue gets one built now)."""
    spec = SPECS.get(operation)
    return spec if spec is not None else build_spec(operation)
