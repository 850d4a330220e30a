"""Vipps' documented per-payment rate limits, counted before Vipps counts them.

Vipps answers HTTP 429 when one payment is called too often (facts §11.1, §11.2): the limits
"stop incorrect use", they are not capacity limits. The guard keeps a sliding-window log per
limit key of the requests the proxy forwards (the handler calls `record` just before it
sends a request on to Vipps, so a request lost in transit still counts, as it may have
reached Vipps; `check` only reads), so the sixth capture of one reference within a minute is
answered locally with 429 and a Retry-After saying when the window admits it again.

Keys follow Vipps' tables: ePayment [EPDOC operations/README.md §Rate limiting], eCom [ECDOC
vipps-ecom-api.md §Rate limiting], Recurring [RCDOC recurring-api-guide.md §Rate limiting].
The subscription key is part of some keys; every key is hashed before it is stored, so the
secret is never kept. Limits can be changed or switched off per operation with a setting
parsed by `parse_limits`.
"""

from __future__ import annotations

import hashlib
import math
from array import array
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import ClassVar

from policies.audit.state import Clock, Store, idempotency_key, merchant_serial_number, payment_key
from policies.catalogue.header_fields import SUBSCRIPTION_KEY
from policies.catalogue.operations import OPERATIONS, Operation
from policies.catalogue.rate_limits import (
    DEFAULT_LIMITS,
    IDEMPOTENCY,
    MSN,
    PAYMENT,
    SUBSCRIPTION,
    Limit,
)
from policies.core.model import Action, AuditedRequest, Condition, Evidence, Finding, Source

__all__ = [
    "DEFAULT_LIMITS",
    "Limit",
    "RateLimitGuard",
    "RateWindow",
    "describe_per",
    "parse_limits",
    "parse_retry_after",
]

_NAMES = {MSN: "Merchant-Serial-Number", SUBSCRIPTION: "subscription key"}


def _describe(per: tuple[str, ...], api: str, joiner: str) -> str:
    """`orderId + Merchant-Serial-Number`: what a limit counts per, in the API's own words."""
    payment = "orderId" if api == "ecom" else "reference"
    names = {**_NAMES, PAYMENT: payment, IDEMPOTENCY: "Idempotency-Key"}
    return joiner.join(names.get(part, part) for part in per)


def describe_per(per: tuple[str, ...], api: str) -> str:
    """What a limit is counted per, for listings: `reference + Merchant-Serial-Number`."""
    return _describe(per, api, " + ")


_CATALOGUE = frozenset(op.key for op in OPERATIONS)
_FORMAT = "operation=requests/seconds or operation=off, e.g. epayment.capture_payment=5/60"


def parse_limits(text: str, base: Mapping[str, Limit] = DEFAULT_LIMITS) -> dict[str, Limit]:
    """The limits in force: `base` changed by a setting such as `ecom.initiate_payment=off`.

    Parts are separated by commas: `operation=requests/seconds` sets a limit (counted per the
    same key as Vipps' own, or per payment and MSN for an operation Vipps documents none for),
    `operation=off` removes one. Raises ValueError naming the first bad part.
    """
    limits = dict(base)
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        name, sep, value = (s.strip() for s in part.partition("="))
        if not sep or not name or not value:
            raise ValueError(f"rate limit {part!r}: expected {_FORMAT}")
        if name not in _CATALOGUE:
            raise ValueError(
                f"rate limit {part!r}: unknown operation {name!r}; "
                "expected api.operation as in the catalogue, e.g. epayment.capture_payment"
            )
        if value.lower() == "off":
            limits.pop(name, None)
            continue
        count, slash, seconds = value.partition("/")
        try:
            requests, window = int(count), float(seconds)
        except ValueError:
            raise ValueError(f"rate limit {part!r}: expected {_FORMAT}") from None
        if not slash or requests < 1 or not (math.isfinite(window) and window > 0):
            raise ValueError(
                f"rate limit {part!r}: requests must be a whole number of at least 1 and "
                "seconds a positive number"
            )
        per = limits[name].per if name in limits else base.get(name, Limit(1, 1.0)).per
        limits[name] = Limit(requests, window, per)
    return limits


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` of delta-seconds (facts §11.2); None for anything else.

    An HTTP-date would need the wall clock; the caller may convert one and pass seconds.
    """
    try:
        seconds = float((value or "").strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


class RateWindow:
    """One key's forwarded-request times (the newest `requests` only) and Vipps' own hold-off."""

    __slots__ = ("banned_until", "stamps")

    def __init__(self) -> None:
        self.stamps = array("d")  # 8 bytes a time: memory stays small for 120-a-minute reads
        self.banned_until = 0.0


class RateLimitGuard:
    """A payment must not be called more often than Vipps allows for the operation.

    The limits are Vipps' own (facts §11.1, see the module docstring); past them Vipps answers
    429 (§11.2), so the finding carries status 429 and `retry_after`, the seconds until the
    sliding window admits the request. After Vipps itself answered 429 with a Retry-After,
    requests for that key are held back for that long (at most the store's time to live).
    """

    code: ClassVar[str] = "rate_limit.exceeded"
    default_action: ClassVar[Action] = Action.BLOCK
    can_repair: ClassVar[bool] = False
    summary: ClassVar[str] = (
        "A payment must not be called more often than Vipps' per-payment rate limits."
    )
    conditions: ClassVar[tuple[Condition, ...]] = (
        Condition(
            "over_limit",
            Action.BLOCK,
            (
                Evidence(
                    "[EPDOC operations/README.md §Rate limiting], [ECDOC vipps-ecom-api.md §Rate"
                    " limiting], [RCDOC recurring-api-guide.md §Rate limiting]",
                    "per-payment limits per operation (e.g. 5 captures a minute); past them"
                    " Vipps answers 429",
                ),
            ),
        ),
        Condition(
            "retry_after",
            Action.BLOCK,
            (
                Evidence(
                    "Vipps' own 429 answer with Retry-After [RCDOC recurring-api-guide.md §Rate"
                    " limiting]",
                    "Vipps said when to try again; a request before then meets another 429",
                ),
            ),
        ),
    )

    def __init__(
        self,
        clock: Clock,
        store: Store[bytes, RateWindow],
        limits: Mapping[str, Limit] = DEFAULT_LIMITS,
    ) -> None:
        self._clock = clock
        self._store = store
        self.limits: Mapping[str, Limit] = MappingProxyType(dict(limits))
        # Settings name operations by key; requests are looked up by the operation itself.
        self._by_operation = {op: limits[op.key] for op in OPERATIONS if op.key in limits}

    def applies_to(self, operation: Operation) -> bool:
        return operation in self._by_operation

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        limit = self._by_operation.get(request.operation)
        window = self._store.get(self._key(request, limit)) if limit is not None else None
        if limit is None or window is None:
            return
        now, seconds = self._clock(), limit.window_seconds
        recent = [t for t in window.stamps if t > now - seconds]
        # The window admits again when the oldest of the newest `requests` calls leaves it.
        full = len(recent) >= limit.requests
        wait = max(
            recent[-limit.requests] + seconds - now if full else 0.0, window.banned_until - now
        )
        if wait <= 0:
            return
        if full:
            problem = f"would be call {len(recent) + 1} within {seconds:g} s"
        else:
            problem = "was answered 429 Too Many Requests by Vipps, with a Retry-After"
        yield Finding(
            self.code,
            Source.PATH,
            _describe(limit.per, request.api, " + "),
            problem,
            f"at most {limit.requests} calls per {seconds:g} s for the same "
            f"{_describe(limit.per, request.api, ' and ')}, as Vipps allows "
            f"(it answers 429 past that); retry in {wait:.1f} s",
            status=429,
            retry_after=wait,
            condition="over_limit" if full else "retry_after",
        )

    def record(self, request: AuditedRequest) -> None:
        """Count a request that was forwarded to Vipps."""
        limit = self._by_operation.get(request.operation)
        if limit is None:
            return
        key = self._key(request, limit)
        window = self._store.get(key) or RateWindow()
        window.stamps.append(self._clock())
        # Only the newest `requests` matter: the oldest of them says when the window admits.
        if len(window.stamps) > limit.requests:
            del window.stamps[: len(window.stamps) - limit.requests]
        self._store.put(key, window)

    def record_upstream_429(self, request: AuditedRequest, retry_after: str | None) -> float | None:
        """Remember that Vipps answered 429; returns the Retry-After seconds, if it gave any."""
        seconds = parse_retry_after(retry_after)
        limit = self._by_operation.get(request.operation)
        if seconds is None or limit is None:
            return seconds
        key = self._key(request, limit)
        window = self._store.get(key) or RateWindow()
        window.banned_until = max(window.banned_until, self._clock() + seconds)
        self._store.put(key, window)
        return seconds

    def _key(self, request: AuditedRequest, limit: Limit) -> bytes:
        """A digest of what the limit counts per; the subscription key is never kept in clear.

        Derived once per request and limit: the check and `record` both ask.
        """
        derived = request.derived
        memo = ("rate_limit", limit.per)
        if memo not in derived:
            derived[memo] = self._digest(request, limit)
        key: bytes = derived[memo]
        return key

    def _digest(self, request: AuditedRequest, limit: Limit) -> bytes:
        parts = [request.operation.key]
        for name in limit.per:
            if name == PAYMENT:
                key = payment_key(request)
                parts.append(key[2] if key is not None else "")
            elif name == MSN:
                parts.append(merchant_serial_number(request))
            elif name == SUBSCRIPTION:
                parts.append(request.headers.get(SUBSCRIPTION_KEY) or "")
            elif name == IDEMPOTENCY:
                parts.append(idempotency_key(request) or "")
            else:
                parts.append(request.path_params.get(name, ""))
        digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16)
        return digest.digest()


# The code of the rule whose blocks the handler answers as Vipps would, with 429 and Retry-After.
RATE_LIMIT_RULE = RateLimitGuard.code
