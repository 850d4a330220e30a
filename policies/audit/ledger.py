"""The payment ledger (what each payment reserved, captured, refunded, cancelled) and its rules.

The ledger learns from the traffic through the proxy (`observe` after each upstream answer);
its rules keep captures within the reservation and refunds within the captured amount, which
Vipps enforces too (ePayment 6090 "Capture amount too high", 6150 "Not enough refundable"; eCom
61 and 71: facts §10.2, §10.3). Only what is known is blocked; an unknown payment never is:

* The capture ceiling is the amount created (facts §4.2, §5.2, §6.2, §7) until Vipps reports
  the authorised amount; an express payment (the user picks shipping) has none until then.
  Captures add up as they pass; one made elsewhere (the portal) can only make the proxy block less.
* Refunds are judged only once Vipps has confirmed the captured amount after the reservation
  (ePayment `aggregate`, eCom `transactionSummary`, Recurring charge `summary`), since Vipps may
  capture unseen: direct capture, Recurring charges on their due date. Every ePayment and eCom
  capture answer carries one [EP ModificationResponse], [EC TransactionResponse].
* Vipps' own figures replace local arithmetic whenever an answer carries them.
* A retry with the same idempotency key (facts §2.2) is the same operation: counted once.
* An operation with an unknown outcome (no answer, a 5xx, or 202 "Accepted": a Recurring capture
  succeeded only on 204, facts §6.1) is pending under its key. Rules block only when the certain
  figures exceed the limit, counting pending captures as failed for captures and as done for
  refunds; an advisory finding (never blocked) says when the pending amounts would tip it. The
  retry that settles the key, or Vipps' next figures, resolve it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar, TypeAlias

from policies.audit.state import PaymentKey, Store, field_at, idempotency_key, payment_key
from policies.catalogue.money_fields import MoneyField
from policies.catalogue.operations import Operation
from policies.catalogue.spec import EXPRESS_PAYMENT, PAYMENT_TYPE, spec_of
from policies.core.jsonbody import JsonValue, Path, format_path
from policies.core.model import Action, AuditedRequest, Condition, Evidence, Finding, Source

__all__ = [
    "CaptureWithinReserved",
    "CurrencyMatches",
    "Figures",
    "PaymentLedger",
    "PaymentRecord",
    "RefundWithinCaptured",
    "figures_in",
]

# An express payment may reserve the shipping the user picks on top of the amount created.
_EXPRESS_FIELDS: tuple[Path, ...] = (
    ("shipping",),
    ("logistics",),
    ("merchantInfo", "staticShippingDetails"),
)
# Vipps charges nothing more on its own after these [RC #/components/schemas/ChargeStatus].
_SETTLED_CHARGE = frozenset(
    {
        "RESERVED",
        "CHARGED",
        "PARTIALLY_CAPTURED",
        "PARTIALLY_REFUNDED",
        "REFUNDED",
        "CANCELLED",
        "FAILED",
    }
)
_AGGREGATE = tuple(
    (n, "value")
    for n in ("authorizedAmount", "capturedAmount", "refundedAmount", "cancelledAmount")
)
_ECOM_SUMMARY: tuple[Path, ...] = (
    ("capturedAmount",),
    ("remainingAmountToCapture",),
    ("refundedAmount",),
)
_CHARGE: tuple[Path, ...] = (
    ("amount",),
    ("summary", "captured"),
    ("summary", "refunded"),
    ("summary", "cancelled"),
)
_STILL_OPEN = frozenset({409, 423, 429})  # the earlier attempt may still be in progress
_KEYS_KEPT = 32


def minor_units(value: JsonValue) -> int | None:
    """A non-negative whole amount, else None (a boolean is not one).

    An integral decimal such as `49900.0` counts as its integer: `amount.not_integer` repairs
    exactly that before forwarding, and the ledger sees the request as the merchant sent it.
    """
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        value = int(value) if value.adjusted() < 19 else None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _amounts(node: JsonValue, paths: tuple[Path, ...]) -> list[int] | None:
    found: list[int] = []
    for path in paths:
        value = minor_units(field_at(node, path))
        if value is None:
            return None
        found.append(value)
    return found


def _text(value: JsonValue) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class Figures:
    """Amounts Vipps reported; `reserved` is 0 while the user has not approved the payment."""

    reserved: int
    captured: int
    refunded: int
    cancelled: int
    currency: str | None
    confirmed: bool


def figures_in(operation: Operation, body: JsonValue) -> Figures | None:
    """Vipps' own figures in an answer, or None.

    ePayment `aggregate` [EP #/components/schemas/Aggregate] (Checkout: `paymentDetails.aggregate`
    [CO TransactionAggregate]); eCom `transactionSummary` [EC TransactionSummary], whose
    remaining amount is net of cancellations; Recurring charge `amount`, `status`, `summary` [RC
    ChargeResponseV3].
    """
    api = operation.api
    if api in ("epayment", "checkout"):
        node = field_at(
            body, ("paymentDetails", "aggregate") if api == "checkout" else ("aggregate",)
        )
        got = _amounts(node, _AGGREGATE)
        if got is None:
            return None
        authorized, captured, refunded, cancelled = got
        currency = _text(field_at(node, ("authorizedAmount", "currency")))
        return Figures(authorized, captured, refunded, cancelled, currency, authorized > 0)
    if api == "ecom":
        got = _amounts(field_at(body, ("transactionSummary",)), _ECOM_SUMMARY)
        if got is None:
            return None
        captured, remaining, refunded = got
        return Figures(captured + remaining, captured, refunded, 0, "NOK", captured + remaining > 0)
    got = _amounts(body, _CHARGE) if api == "recurring" else None
    if got is None:
        return None
    amount, captured, refunded, cancelled = got
    currency = _text(field_at(body, ("currency",)))
    settled = field_at(body, ("status",)) in _SETTLED_CHARGE
    return Figures(amount, captured, refunded, cancelled, currency, settled)


@dataclass(slots=True)
class PaymentRecord:
    """What the proxy knows of one payment, in minor units.

    `reserved` is the capture ceiling before cancellations (None: unknown); `confirmed` says
    Vipps reported the captured amount after the reservation. `pending_*` hold the amounts of
    operations of unknown outcome by idempotency mark; `applied` the marks already counted.
    """

    currency: str | None = None
    reserved: int | None = None
    captured: int = 0
    refunded: int = 0
    cancelled: int = 0
    confirmed: bool = False
    pending_captures: dict[str, int] = field(default_factory=dict)
    pending_refunds: dict[str, int] = field(default_factory=dict)
    applied: dict[str, None] = field(default_factory=dict)

    @property
    def capture_ceiling(self) -> int | None:
        return None if self.reserved is None else max(self.reserved - self.cancelled, 0)

    def absorb(self, figures: Figures) -> None:
        """Take Vipps' figures; whatever was pending is in them or never happened."""
        if figures.reserved:
            self.reserved = figures.reserved
        self.captured, self.refunded = figures.captured, figures.refunded
        self.cancelled = figures.cancelled
        self.currency = figures.currency or self.currency
        self.confirmed = self.confirmed or figures.confirmed
        for mark in [*self.pending_captures, *self.pending_refunds]:
            self.remember(mark)
        self.pending_captures.clear()
        self.pending_refunds.clear()

    def remember(self, mark: str) -> None:
        """Note an operation as counted (the newest few per payment are kept)."""
        self.applied[mark] = None
        while len(self.applied) > _KEYS_KEPT:
            del self.applied[next(iter(self.applied))]


def _ok(status: int | None) -> bool:
    return status is not None and 200 <= status < 300 and status != 202


def _kind(operation: Operation) -> str:
    spec = spec_of(operation)
    if spec.refunds:
        return "refund"
    return "cancel" if spec.cancels else "capture"


class PaymentLedger:
    """Payment figures by `PaymentKey` in a bounded store: rules read it, `observe` moves it."""

    def __init__(self, store: Store[PaymentKey, PaymentRecord], replica: str = "") -> None:
        self._store = store
        self._unkeyed = 0
        # Tells this process's marks of unkeyed operations from another's in a shared store.
        self._replica = replica

    def get(self, key: PaymentKey) -> PaymentRecord | None:
        """The record for `key` (None: an unknown payment); read it, do not change it."""
        return self._store.get(key)

    def observe(self, request: AuditedRequest, status: int | None, response: JsonValue) -> None:
        """Move the ledger on Vipps' answer to a forwarded request.

        `status` is None when no answer came; `response` is the parsed answer body (or None).
        Creates count on a 2xx; captures, refunds and cancels as the module docstring says;
        reads teach Vipps' own figures.
        """
        op = request.operation
        spec = spec_of(op)
        if spec.reads_list:
            if status == 200 and isinstance(response, list):
                for charge in response:
                    self._learn(payment_key(request, charge), op, charge)
            return
        key = payment_key(request, response)
        if key is None:
            return
        if spec.reads:
            if status == 200:
                self._learn(key, op, response)
        elif spec.creates:
            if _ok(status) and self._store.get(key) is None:
                self._store.put(key, _created(request))
        elif spec.captures or spec.refunds or spec.cancels:
            self._modify(key, request, status, response)

    def _learn(self, key: PaymentKey | None, operation: Operation, body: JsonValue) -> None:
        figures = figures_in(operation, body)
        if key is not None and figures is not None:
            record = self._store.get(key) or PaymentRecord()
            record.absorb(figures)
            self._store.put(key, record)

    def _modify(
        self, key: PaymentKey, request: AuditedRequest, status: int | None, response: JsonValue
    ) -> None:
        record = self._store.get(key)
        if record is None and not _ok(status):
            return
        # A payment first seen here was made before the proxy: its figures stay partial.
        record = record or PaymentRecord()
        kind, raw = _kind(request.operation), idempotency_key(request)
        if raw is None:
            self._unkeyed += 1  # nothing to recognise its retry by: a mark of its own
        mark = f"{kind}:{raw}" if raw is not None else f"{kind}:#{self._replica}{self._unkeyed}"
        pending = record.pending_refunds if kind == "refund" else record.pending_captures
        if _ok(status):
            pending.pop(mark, None)
            figures = figures_in(request.operation, response)
            if figures is not None:
                record.absorb(figures)
            elif mark not in record.applied:
                _apply(record, kind, requested_amount(request, record))
            record.remember(mark)
        elif status is None or status >= 500 or status == 202:
            if kind != "cancel" and mark not in record.applied:
                pending[mark] = requested_amount(request, record)
        elif status not in _STILL_OPEN:
            pending.pop(mark, None)  # Vipps refused it: it never happened
        self._store.put(key, record)


def _amount(request: AuditedRequest) -> MoneyField | None:
    """The amount field the ledger counts for the request's operation (catalogue `amount`)."""
    return spec_of(request.operation).amount


def _created(request: AuditedRequest) -> PaymentRecord:
    money = _amount(request)
    currency_at = money.currency if money is not None else None
    # A fixed currency is the API's only one: eCom takes NOK only (facts §5.2).
    currency = request.field(currency_at) if currency_at is not None else None
    if money is not None and money.fixed_currency is not None:
        currency = money.fixed_currency
    express = any(request.field(p) is not None for p in _EXPRESS_FIELDS) or (
        request.field(PAYMENT_TYPE) == EXPRESS_PAYMENT
    )
    amount = request.field(money.pattern) if money is not None else None
    reserved = None if express else minor_units(amount)
    return PaymentRecord(currency=_text(currency), reserved=reserved)


def _apply(record: PaymentRecord, kind: str, amount: int) -> None:
    if kind == "capture":
        record.captured += amount
    elif kind == "refund":
        record.refunded += amount
    elif record.reserved is not None:  # a cancel releases what is left of the reservation
        record.cancelled = max(record.reserved - record.captured, 0)


def requested_amount(request: AuditedRequest, record: PaymentRecord | None = None) -> int:
    """The amount a capture or refund asks for; an eCom one without it asks for all that is left.

    eCom `transaction.amount` is optional on capture and refund [EC #/components/schemas/
    Transaction]: without it Vipps captures the rest of the reservation, or refunds the rest.
    """
    money = _amount(request)
    sent = request.field(money.pattern) if money is not None else None
    if sent is not None or record is None or request.api != "ecom":
        return minor_units(sent) or 0
    if spec_of(request.operation).refunds:
        return max(record.captured - record.refunded, 0)
    return max((record.capture_ceiling or 0) - record.captured, 0)


# --- Rules ------------------------------------------------------------------------------------

_REJECTED_BY = {
    ("capture", "epayment"): "ePayment rejects more with error 6090 (Capture amount too high)",
    ("capture", "ecom"): "eCom rejects more with error 61 (capture exceeds reserved)",
    ("refund", "epayment"): "ePayment rejects more with error 6150 (Not enough refundable)",
    ("refund", "ecom"): "eCom rejects more with error 71 (refund exceeds captured)",
}

# What a payment's record allows: (the limit on the certain figures, the limit if operations of
# unknown outcome go against it, a note for the message), or None when it is not known.
_Limits: TypeAlias = Callable[[PaymentRecord], tuple[int, int, str] | None]


def _findings_over_limit(
    code: str,
    kind: str,
    ledger: PaymentLedger,
    request: AuditedRequest,
    limits: _Limits,
    names: tuple[str, str],
) -> Iterator[Finding]:
    """A capture or refund judged against a limit: a finding if the certain figures exceed it,
    an advisory one if only operations of unknown outcome could make them.

    `kind` is "capture" or "refund" (the operation, and its idempotency marks); `names` are the
    words for what is done so far and for the limit (`captured`, `reserved`).
    """
    done_name, limit_name = names
    key = payment_key(request)
    record = ledger.get(key) if key is not None else None
    money = _amount(request)
    at = money.pattern if money is not None else ()
    amount = minor_units(request.field(at)) if money is not None else None
    raw = idempotency_key(request)
    mark = f"{kind}:{raw}"
    if record is None or amount is None or (raw is not None and mark in record.applied):
        return  # unknown payment, no amount to judge, or a retry of a counted operation
    allowed = limits(record)
    if allowed is None:
        return
    limit, soft_limit, note = allowed
    done = record.captured if kind == "capture" else record.refunded
    pending = record.pending_captures if kind == "capture" else record.pending_refunds
    others = sum(v for k, v in pending.items() if k != mark)
    if done + amount > limit:
        total, of, advisory, condition = done + amount, limit, False, ""
    elif done + others + amount > soft_limit:
        total, of, advisory = done + others + amount, soft_limit, True
        condition = " if operations whose outcome is unknown went against it"
    else:
        return
    problem = (
        f"{kind} of {amount} would bring {done_name} to {total} "
        f"of {of} {limit_name}{note}{condition}"
    )
    rejected = _REJECTED_BY.get((kind, request.api), "Vipps rejects more")
    expected = (
        f"at most {max(limit - done, 0)} ({limit_name} {limit}{note}, "
        f"{done_name} so far {done}); {rejected}"
    )
    field_name = format_path(at)
    yield Finding(
        code,
        Source.BODY,
        field_name,
        problem,
        expected,
        str(amount),
        advisory=advisory,
        condition="pending_may_exceed" if advisory else "exceeds",
    )


def _capture_limits(record: PaymentRecord) -> tuple[int, int, str] | None:
    """The reservation less what was cancelled, pending captures counted as failed."""
    ceiling = record.capture_ceiling
    if ceiling is None:
        return None
    note = f" ({record.cancelled} of {record.reserved} cancelled)" if record.cancelled else ""
    return ceiling, ceiling, note


def _refund_limits(record: PaymentRecord) -> tuple[int, int, str] | None:
    """The captured amount once Vipps confirmed it, pending captures counted as done."""
    if not record.confirmed:
        return None
    return record.captured + sum(record.pending_captures.values()), record.captured, ""


# Both limits report, never block, what only operations of unknown outcome could take over.
_PENDING_MAY_EXCEED = Condition(
    "pending_may_exceed",
    Action.REPORT,
    why="advice: only operations of unknown outcome could make it exceed",
)


class CaptureWithinReserved:
    """A capture must not bring the captured total above what the payment reserved.

    Vipps refuses it too: ePayment 6090 "Capture amount too high" (facts §10.2), eCom 61
    "capture exceeds reserved" (§10.3); KB errors.md §400 and payments.md name it a common
    cause of failed captures (rounding). The reservation is the amount created, or the
    authorised amount Vipps reports, less what was cancelled (see the module docstring).
    """

    code: ClassVar[str] = "ledger.capture_exceeds_reserved"
    default_action: ClassVar[Action] = Action.BLOCK
    can_repair: ClassVar[bool] = False
    summary: ClassVar[str] = "A capture must not take the captured total above the reserved amount."
    conditions: ClassVar[tuple[Condition, ...]] = (
        Condition(
            "exceeds",
            Action.BLOCK,
            (
                Evidence(
                    "[EPDOC faq.md §What do all the errors mean] (code 6090),"
                    " [ECDOC vipps-ecom-api.md §Error codes] (61)",
                    '"Capture amount too high"; eCom error 61, capture exceeds the reserved amount',
                ),
                Evidence(
                    "[KB errors.md §Why do I get HTTP 400]",
                    "captured amount exceeds the reserved amount: you can not capture more than"
                    " the user accepted",
                ),
            ),
        ),
        _PENDING_MAY_EXCEED,
    )

    def __init__(self, ledger: PaymentLedger) -> None:
        self.ledger = ledger

    def applies_to(self, operation: Operation) -> bool:
        return spec_of(operation).captures

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        return _findings_over_limit(
            self.code, "capture", self.ledger, request, _capture_limits, ("captured", "reserved")
        )


class RefundWithinCaptured:
    """A refund must not bring the refunded total above what was captured.

    Vipps refuses it too: ePayment 6150 "Not enough refundable" (facts §10.2), eCom 71 "refund
    > captured" (§10.3), KB errors.md §400. Judged only once Vipps has confirmed the captured
    amount (see the module docstring), since Vipps may capture on its own; captures of unknown
    outcome count as done, so a refund is blocked only when it is certainly too large.
    """

    code: ClassVar[str] = "ledger.refund_exceeds_captured"
    default_action: ClassVar[Action] = Action.BLOCK
    can_repair: ClassVar[bool] = False
    summary: ClassVar[str] = "A refund must not take the refunded total above the captured amount."
    conditions: ClassVar[tuple[Condition, ...]] = (
        Condition(
            "exceeds",
            Action.BLOCK,
            (
                Evidence(
                    "[EPDOC faq.md §What do all the errors mean] (code 6150),"
                    " [ECDOC vipps-ecom-api.md §Error codes] (71)",
                    '"Not enough refundable"; eCom error 71, refund larger than captured',
                ),
                Evidence(
                    "[KB errors.md §Why do I get HTTP 400]",
                    "cannot refund more than the captured amount",
                ),
            ),
        ),
        _PENDING_MAY_EXCEED,
    )

    def __init__(self, ledger: PaymentLedger) -> None:
        self.ledger = ledger

    def applies_to(self, operation: Operation) -> bool:
        return spec_of(operation).refunds

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        return _findings_over_limit(
            self.code, "refund", self.ledger, request, _refund_limits, ("refunded", "captured")
        )


class CurrencyMatches:
    """An ePayment capture or refund must be in the currency of the payment.

    `modificationAmount` is the same `Amount` object as the payment's own (facts §4.2, [EP
    #/components/schemas/CaptureModificationRequest]): a payment reserved in NOK is not captured
    in DKK. eCom and Recurring captures state no currency, so only ePayment (and the Checkout
    payments it captures) is judged, against the currency created or reported by Vipps.
    """

    code: ClassVar[str] = "ledger.currency_mismatch"
    default_action: ClassVar[Action] = Action.REPORT
    can_repair: ClassVar[bool] = False
    summary: ClassVar[str] = "An ePayment capture or refund must use the currency of the payment."
    conditions: ClassVar[tuple[Condition, ...]] = (
        Condition(
            "other_currency",
            Action.REPORT,
            why="no documented refusal: only that both amounts are the same Amount schema",
        ),
    )

    def __init__(self, ledger: PaymentLedger) -> None:
        self.ledger = ledger

    def applies_to(self, operation: Operation) -> bool:
        # A capture or refund whose amount states its currency: ePayment's `modificationAmount`.
        spec = spec_of(operation)
        return (
            (spec.captures or spec.refunds)
            and spec.amount is not None
            and (spec.amount.currency is not None)
        )

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        key = payment_key(request)
        record = self.ledger.get(key) if key is not None else None
        money = _amount(request)
        at = money.currency if money is not None else None
        sent = request.field(at) if at is not None else None
        if at is None or record is None or record.currency is None or not isinstance(sent, str):
            return
        if sent != record.currency:
            problem = f"is {sent}, but the payment is in {record.currency}"
            expected = f"{record.currency}, the currency of the payment"
            yield Finding(
                self.code,
                Source.BODY,
                format_path(at),
                problem,
                expected,
                sent[:10],
                condition="other_currency",
            )
