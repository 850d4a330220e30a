"""Payment-level state shared by several replicas: its encoding, its keys, and reservations.

When several proxies serve one merchant, the payment-level stores live in a shared store (the
proxy's Redis backend, `proxy.state_redis`). This module holds the pure part of that: how each
store's values are encoded (compact JSON, so a server-side script could read them too), which
payment a request's state belongs to (one tag per payment, so all of it lives under one key),
and captures and refunds in flight, which the ledger rules must count while they are forwarded
so that two concurrent captures through two proxies cannot both pass.

Times in shared state are wall-clock seconds: monotonic clocks of different hosts do not compare.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, replace

import orjson

from policies.audit.ledger import PaymentRecord, requested_amount
from policies.audit.polling import PollState
from policies.audit.ratelimit import RateWindow
from policies.audit.state import PaymentKey, idempotency_key, merchant_serial_number, payment_key
from policies.catalogue.spec import spec_of
from policies.core.jsonbody import JsonValue
from policies.core.model import AuditedRequest

__all__ = [
    "InFlight",
    "add_in_flight",
    "decode_in_flight",
    "decode_poll",
    "decode_record",
    "decode_window",
    "encode_in_flight",
    "encode_poll",
    "encode_record",
    "encode_window",
    "environment_tag",
    "idempotency_tag",
    "in_flight_mark",
    "payment_tag",
    "request_tag",
    "touched_payments",
    "with_in_flight",
]

_TAG_BYTES = 12


def _digest(*parts: str, size: int = _TAG_BYTES) -> str:
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=size).hexdigest()


def environment_tag(upstream_base: str) -> str:
    """A short digest of the upstream URL: the test and production environments never share keys."""
    return _digest(upstream_base.rstrip("/").lower(), size=6)


def payment_tag(key: PaymentKey) -> str:
    """The tag of one payment's state (a digest: references never appear in key names)."""
    return _digest("p", *key)


def request_tag(request: AuditedRequest) -> str:
    """Where a request's rate windows (and, about a payment, its idempotency keys) live: its
    payment's tag, or, for a call about no single payment, a tag of its API, its
    Merchant-Serial-Number and its path parameters (a Recurring agreement's, say)."""
    key = payment_key(request)
    if key is not None:
        return payment_tag(key)
    params = (f"{k}={v}" for k, v in sorted(request.path_params.items()))
    return _digest("m", request.api, merchant_serial_number(request), *params)


def idempotency_tag(scope: bytes) -> str:
    """Where an idempotency key of a call about no single payment lives: a key of its own, so
    that a merchant's agreement drafts do not pile up under one key."""
    return "i" + scope.hex()


def touched_payments(request: AuditedRequest, response: JsonValue) -> list[PaymentKey]:
    """The payments whose state learning from `response` may change (the request's own, one
    the answer names, and each charge of a Recurring charge list)."""
    keys = [payment_key(request), payment_key(request, response)]
    if spec_of(request.operation).reads_list and isinstance(response, list):
        keys.extend(payment_key(request, charge) for charge in response)
    found: list[PaymentKey] = []
    for key in keys:
        if key is not None and key not in found:
            found.append(key)
    return found


# --- Encodings --------------------------------------------------------------------------------


def _int(value: object, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _amounts(value: object) -> dict[str, int]:
    if not isinstance(value, dict):
        return {}
    return {str(k): _int(v) for k, v in value.items()}


def encode_record(record: PaymentRecord) -> bytes:
    return orjson.dumps(
        {
            "cur": record.currency,
            "res": record.reserved,
            "cap": record.captured,
            "ref": record.refunded,
            "can": record.cancelled,
            "ok": record.confirmed,
            "pc": record.pending_captures,
            "pr": record.pending_refunds,
            "a": list(record.applied),
        }
    )


def decode_record(raw: bytes) -> PaymentRecord:
    """A ledger record from its encoding; fields of the wrong type fall back to their defaults."""
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        return PaymentRecord()
    currency, reserved = data.get("cur"), data.get("res")
    applied = data.get("a")
    return PaymentRecord(
        currency=currency if isinstance(currency, str) else None,
        reserved=reserved if isinstance(reserved, int) and not isinstance(reserved, bool) else None,
        captured=_int(data.get("cap")),
        refunded=_int(data.get("ref")),
        cancelled=_int(data.get("can")),
        confirmed=data.get("ok") is True,
        pending_captures=_amounts(data.get("pc")),
        pending_refunds=_amounts(data.get("pr")),
        applied=dict.fromkeys(str(m) for m in applied) if isinstance(applied, list) else {},
    )


def encode_window(window: RateWindow) -> bytes:
    return orjson.dumps({"s": list(window.stamps), "b": window.banned_until})


def decode_window(raw: bytes) -> RateWindow:
    data = orjson.loads(raw)
    window = RateWindow()
    if isinstance(data, dict):
        stamps = data.get("s")
        if isinstance(stamps, list):
            window.stamps = array("d", [t for t in map(_float, stamps) if t is not None])
        window.banned_until = _float(data.get("b")) or 0.0
    return window


def encode_poll(state: PollState) -> bytes:
    return orjson.dumps(
        {"api": state.api, "c": state.created_at, "l": state.last_poll, "n": state.polls}
    )


def decode_poll(raw: bytes) -> PollState:
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        return PollState("unknown")
    api = data.get("api")
    return PollState(
        api if isinstance(api, str) else "unknown",
        created_at=_float(data.get("c")),
        last_poll=_float(data.get("l")),
        polls=_int(data.get("n")),
    )


# --- Captures and refunds in flight -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InFlight:
    """A capture or refund being forwarded now: counted as done until its answer is learnt."""

    kind: str
    amount: int
    expires_at: float


def encode_in_flight(entries: Mapping[str, InFlight]) -> bytes:
    return orjson.dumps({m: [e.kind, e.amount, e.expires_at] for m, e in entries.items()})


def decode_in_flight(raw: bytes) -> dict[str, InFlight]:
    data = orjson.loads(raw)
    found: dict[str, InFlight] = {}
    if isinstance(data, dict):
        for mark, entry in data.items():
            if isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str):
                expires = _float(entry[2])
                if expires is not None:
                    found[str(mark)] = InFlight(entry[0], _int(entry[1]), expires)
    return found


def in_flight_mark(request: AuditedRequest, request_id: str) -> tuple[str, str] | None:
    """(kind, mark) of a capture or refund; a retry with the same idempotency key has the same
    mark, a request without a key one of its own."""
    spec = spec_of(request.operation)
    kind = "capture" if spec.captures else "refund" if spec.refunds else None
    if kind is None:
        return None
    raw = idempotency_key(request)
    return kind, f"{kind}:{raw}" if raw is not None else f"{kind}:#{request_id}"


def with_in_flight(
    record: PaymentRecord, entries: Mapping[str, InFlight], kind: str, mark: str, now: float
) -> PaymentRecord:
    """The record as a capture (refund) is judged: the others of its kind in flight counted done."""
    extra = sum(
        e.amount for m, e in entries.items() if e.kind == kind and m != mark and e.expires_at > now
    )
    if not extra:
        return record
    if kind == "capture":
        return replace(record, captured=record.captured + extra)
    return replace(record, refunded=record.refunded + extra)


def add_in_flight(
    entries: Mapping[str, InFlight],
    request: AuditedRequest,
    record: PaymentRecord | None,
    kind: str,
    mark: str,
    expires_at: float,
    now: float,
) -> dict[str, InFlight]:
    """The entries with this request's own added and the expired ones dropped."""
    kept = {m: e for m, e in entries.items() if e.expires_at > now}
    amount = requested_amount(request, record)
    if amount > 0:
        kept[mark] = InFlight(kind, amount, expires_at)
    return kept
