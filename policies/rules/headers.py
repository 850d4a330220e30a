"""Header rules: the headers each Vipps operation needs are sent, in the shape Vipps expects.

Which headers an operation needs, and the shape of its idempotency header, is the fact sheet's
§2.2 (`policies.catalogue.header_fields`); the rules read it from the operation's catalogue entry.

Header names are case-insensitive (`AuditedRequest.headers`); values are compared as sent. No
finding ever carries a credential: `Authorization`, `client_id`, `client_secret` and the
subscription key are described by scheme and length only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from policies.catalogue.header_fields import (
    AUTHORIZATION,
    MERCHANT_SERIAL_NUMBER,
    SYSTEM_HEADERS,
    KeyFormat,
)
from policies.catalogue.operations import UNKNOWN, Operation
from policies.catalogue.spec import spec_of
from policies.core.model import (
    Action,
    AuditedRequest,
    Condition,
    Evidence,
    Finding,
    Headers,
    Source,
    shown,
)
from policies.rules.evidence import (
    EPAYMENT_MISSING_PARAMETER,
    GUARD_DUPLICATE_HEADER,
    KB_HTTP_401_BEARER,
    KB_HTTP_401_SUBSCRIPTION_KEY,
    RECURRING_IDEMPOTENCY_KEY,
)

__all__ = ["HeaderFormat", "RequiredHeaders", "SystemHeaders", "describe_credentials"]

_API_NAMES = {
    "access_token": "Access token",
    "epayment": "ePayment",
    "ecom": "eCom",
    "recurring": "Recurring",
    "checkout": "Checkout",
    "order_management": "Order Management",
    "webhooks": "Webhooks",
    "report": "Report",
    "login": "Login",
}

_MSN_FORMAT = re.compile(r"[0-9]{4,10}")
# Scheme names that may be echoed in a finding; anything else could be part of a secret.
_KNOWN_SCHEMES = frozenset(
    {"basic", "bearer", "digest", "hoba", "mutual", "negotiate", "ntlm", "oauth", "token", "jwt"}
)


def _api(operation: Operation) -> str:
    return _API_NAMES.get(operation.api, operation.api)


def _value(headers: Headers, name: str) -> str:
    """The header's value with surrounding whitespace removed ("" when absent)."""
    return (headers.get(name) or "").strip()


@dataclass(frozen=True, slots=True)
class RequiredHeaders:
    """Every header the operation's spec marks required must be sent, and not empty.

    Authorization on the token APIs (ePayment, eCom, Recurring, Order Management, Webhooks,
    Report); the subscription key on Access token, ePayment, eCom, Recurring and Order
    Management; Merchant-Serial-Number on ePayment and Order Management; Idempotency-Key on
    ePayment create, capture and refund and on every Recurring v3 write; X-Request-Id on eCom
    capture and refund; client_id and client_secret on /accesstoken/get and Checkout
    (facts §2.2). An empty optional header is never flagged. It blocks where Vipps documents
    the refusal; it only reports a missing `Merchant-Serial-Number` (the KB recommends it to
    merchants and requires it of partners only [KB http-headers.md]) and a missing eCom
    `X-Request-Id` (the spec's own descriptions require it only for a partial amount, and
    production backends capture the full amount without it).
    """

    code: ClassVar[str] = "header.missing"
    default_action: ClassVar[Action] = Action.BLOCK
    can_repair: ClassVar[bool] = False
    summary: ClassVar[str] = "headers the Vipps API requires on the operation are sent"
    conditions: ClassVar[tuple[Condition, ...]] = (
        Condition("authorization", Action.BLOCK, (KB_HTTP_401_BEARER,)),
        Condition("subscription_key", Action.BLOCK, (KB_HTTP_401_SUBSCRIPTION_KEY,)),
        Condition(
            "merchant_serial_number",
            Action.REPORT,
            why="[KB http-headers.md]: partners must send it; merchants are recommended to",
        ),
        Condition(
            "epayment_idempotency_key",
            Action.BLOCK,
            (
                EPAYMENT_MISSING_PARAMETER,
                Evidence(
                    "[EP #/components/parameters/Idempotency-Key]",
                    "create, capture and refund declare the header required; 4140 names it",
                ),
            ),
        ),
        Condition("recurring_idempotency_key", Action.BLOCK, (RECURRING_IDEMPOTENCY_KEY,)),
        Condition(
            "ecom_request_id",
            Action.REPORT,
            why='the spec says "Required for making partial captures" / "Required if the amount'
            ' is partial"; full-amount captures without it succeed in production',
        ),
        Condition(
            "client_credentials",
            Action.BLOCK,
            (
                Evidence(
                    "[ATDOC README.md §Get an access token], [CODOC checkout-api-guide.md §Step 1]",
                    "the token call and Checkout authenticate with the client_id and"
                    " client_secret headers",
                ),
                Evidence("[KB errors.md §Why do I get HTTP 401]", "wrong API keys give 401"),
            ),
        ),
        Condition(
            "partner_credentials",
            Action.BLOCK,
            (
                Evidence(
                    "[ATDOC README.md §Token endpoint]",
                    "the token endpoint takes `Authorization: Basic base64(client_id:secret)`",
                ),
            ),
        ),
    )

    def applies_to(self, operation: Operation) -> bool:
        return bool(spec_of(operation).headers.required)

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        headers = request.headers
        for need in spec_of(request.operation).headers.required:
            if _value(headers, need.header):
                continue
            if need.unless and all(_value(headers, name) for name in need.unless):
                continue
            problem = (
                "required header is empty"
                if need.header in headers
                else ("required header is missing")
            )
            yield Finding(
                rule=self.code,
                source=Source.HEADER,
                field=need.header,
                problem=problem,
                expected=f"{need.expected}; the {_api(request.operation)} API requires it here",
                condition=need.condition,
            )


# --- Header format ---------------------------------------------------------------------------


def describe_credentials(value: str) -> str:
    """Say what an Authorization value looks like without a single character of the secret."""
    parts = value.split(None, 1)
    known = parts[0].lower() in _KNOWN_SCHEMES
    if len(parts) < 2:
        return (
            f"scheme {parts[0]!r} and no token" if known else f"{len(value)} characters, no scheme"
        )
    scheme, rest = parts
    shown = f"scheme {scheme!r}" if known else "an unknown scheme"
    return f"{shown} and {len(rest)} more characters"


_WHITESPACE = re.compile(r"\s")


def _bearer_problem(value: str) -> tuple[str, str] | None:
    """What is wrong with an Authorization value that should be `Bearer <token>`, and the
    condition it falls under (None if fine)."""
    parts = value.split(None, 1)
    scheme = parts[0]
    wrong = "authorization_scheme"
    if scheme != "Bearer":
        if scheme.lower() == "bearer":
            return f"the scheme is {scheme!r}, not 'Bearer' (Vipps may answer 401)", wrong
        if len(parts) == 1:
            return "has no scheme; the token must follow the word Bearer", "bare_token"
        return "does not use the Bearer scheme", wrong
    if len(parts) == 1:
        return "has the Bearer scheme but no token", wrong
    token = parts[1].strip()
    if token.split(None, 1)[0].lower() == "bearer":
        return "has the word Bearer twice", wrong
    if _WHITESPACE.search(token):
        return "has whitespace inside the token", wrong
    return None


@dataclass(frozen=True, slots=True)
class HeaderFormat:
    """Headers that are sent must have the shape Vipps accepts.

    `Authorization` is exactly `Bearer <token>` on the token APIs: the KB warns that `bearer`
    may give 401 [KB errors.md §Why do I get HTTP 401]; a bare token without any scheme is only
    reported, as a production eCom gateway sends it so. `Merchant-Serial-Number` matches
    `^[0-9]{4,10}$` where the spec states a pattern (ePayment [EP #/components/schemas/MSN],
    Access token [AT]). ePayment's `Idempotency-Key` has at most 50 characters
    [EP #/components/parameters/Idempotency-Key]; Recurring's has 1-40 and none of `# ? / \\`
    [RC #/components/parameters/Idempotency-Key]; eCom's `X-Request-Id` at most 40 [EC]. Each
    `Vipps-System-*` header has at most 30 characters, 100 for Order Management. Empty optional
    headers are left alone; missing required ones are `header.missing`'s business. Only the
    Authorization scheme and Recurring's key rules are documented refusals and block; the MSN
    pattern, ePayment's and eCom's key lengths are schema keywords only, and the Vipps-System-*
    limit is advice (Shopware's plugin sends a 36-character shop domain and Vipps accepts it):
    those report.
    """

    code: ClassVar[str] = "header.format"
    default_action: ClassVar[Action] = Action.BLOCK
    can_repair: ClassVar[bool] = False
    summary: ClassVar[str] = (
        "Authorization, MSN, idempotency and Vipps-System-* headers have the right shape"
    )
    conditions: ClassVar[tuple[Condition, ...]] = (
        Condition("authorization_scheme", Action.BLOCK, (KB_HTTP_401_BEARER,)),
        Condition(
            "bare_token",
            Action.REPORT,
            why="the KB says only that a token without Bearer *may* give 401, and a maintained"
            " eCom gateway (omnipay-vipps) sends the bare token in production",
        ),
        Condition(
            "merchant_serial_number",
            Action.REPORT,
            why="only the spec's pattern ^[0-9]{4,10}$ (which grew from 4-6 digits in 1.4.1)",
        ),
        Condition("epayment_idempotency_key", Action.REPORT, why="only the spec's maxLength: 50"),
        Condition("recurring_idempotency_key", Action.BLOCK, (RECURRING_IDEMPOTENCY_KEY,)),
        Condition("ecom_request_id", Action.REPORT, why="only the spec's maxLength: 40"),
        Condition(
            "system_header_length",
            Action.REPORT,
            why="[KB http-headers.md] asks for short values; the Shopware plugin sends 36"
            " characters and Vipps accepts it",
        ),
    )

    def applies_to(self, operation: Operation) -> bool:
        # Every catalogued operation may carry Vipps-System-* headers.
        return operation is not UNKNOWN

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        plan, headers = spec_of(request.operation).headers, request.headers
        if plan.bearer:
            yield from self._authorization(headers)
        if plan.msn_format:
            yield from self._msn(headers)
        if plan.key_format is not None:
            yield from self._idempotency(plan.key_format, headers)
        limit = plan.system_header_limit
        for name in SYSTEM_HEADERS:
            value = _value(headers, name)
            if len(value) > limit:
                yield self._finding(
                    name,
                    f"is {len(value)} characters long",
                    f"at most {limit} characters (short, human-readable values)",
                    shown(value),
                    "system_header_length",
                )

    def _finding(
        self, field: str, problem: str, expected: str, value: str | None, condition: str
    ) -> Finding:
        return Finding(
            self.code, Source.HEADER, field, problem, expected, value, condition=condition
        )

    def _authorization(self, headers: Headers) -> Iterator[Finding]:
        value = _value(headers, AUTHORIZATION)
        if not value:
            return
        found = _bearer_problem(value)
        if found is not None:
            problem, condition = found
            yield self._finding(
                AUTHORIZATION,
                problem,
                "`Bearer <access token>`, with Bearer written exactly so",
                describe_credentials(value),
                condition,
            )

    def _msn(self, headers: Headers) -> Iterator[Finding]:
        value = _value(headers, MERCHANT_SERIAL_NUMBER)
        if value and not _MSN_FORMAT.fullmatch(value):
            # Digits are echoed; anything else may be a key pasted into the wrong header.
            sent = (
                shown(value)
                if value.isascii() and value.isdigit()
                else (f"{len(value)} characters, not all digits")
            )
            yield self._finding(
                MERCHANT_SERIAL_NUMBER,
                "is not 4-10 digits",
                "digits only, e.g. 123456",
                sent,
                "merchant_serial_number",
            )

    def _idempotency(self, key_format: KeyFormat, headers: Headers) -> Iterator[Finding]:
        key = _value(headers, key_format.header)
        if len(key) > key_format.max_length:
            yield self._finding(
                key_format.header,
                f"is {len(key)} characters long",
                key_format.expected,
                shown(key),
                key_format.condition,
            )
        forbidden = [ch for ch in key_format.forbidden if ch in key]
        if forbidden:
            yield self._finding(
                key_format.header,
                "contains " + " ".join(repr(ch) for ch in forbidden),
                key_format.expected,
                shown(key),
                key_format.condition,
            )


# --- Vipps-System-* (advice) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SystemHeaders:
    """All four Vipps-System-* headers should be sent on every call (advice, never a block).

    Required for plugins and partners, strongly recommended for everyone else: Vipps uses them
    to trace problems to the integration [KB http-headers.md]. Vipps accepts calls without
    them, so the finding is advisory.
    """

    code: ClassVar[str] = "header.system_missing"
    default_action: ClassVar[Action] = Action.REPORT
    can_repair: ClassVar[bool] = False
    summary: ClassVar[str] = "the four Vipps-System-* headers are sent (advice)"
    conditions: ClassVar[tuple[Condition, ...]] = (
        Condition("advice", Action.REPORT, why="advice: Vipps accepts calls without them"),
    )

    def applies_to(self, operation: Operation) -> bool:
        return operation is not UNKNOWN

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        missing = [name for name in SYSTEM_HEADERS if not _value(request.headers, name)]
        if missing:
            yield Finding(
                rule=self.code,
                source=Source.HEADER,
                field=", ".join(missing),
                problem="recommended header missing or empty"
                if len(missing) == 1
                else "recommended headers missing or empty",
                expected="all four Vipps-System-* headers, naming the system and plugin "
                "(required for plugins and partners)",
                advisory=True,
                condition="advice",
            )


# Headers that carry one value; a second copy (perhaps spelt in another case) would let the
# rules judge one value while Vipps reads another.
SINGLE_VALUE_HEADERS = (
    "Authorization",
    "Ocp-Apim-Subscription-Key",
    "Merchant-Serial-Number",
    "Idempotency-Key",
    "X-Request-Id",
    "client_id",
    "client_secret",
    "Content-Type",
)


@dataclass(frozen=True, slots=True)
class SingleValueHeaders:
    """A header that carries one value is sent once.

    Two `Merchant-Serial-Number` or `Authorization` lines (say, `Merchant-Serial-Number` and
    `merchant-serial-number`) leave it to each HTTP stack which one counts: the proxy would check
    one value and Vipps could act on the other. HTTP allows repeating only list-valued headers
    (RFC 9110 §5.3); none of these is one.
    """

    code: ClassVar[str] = "header.repeated"
    default_action: ClassVar[Action] = Action.BLOCK
    can_repair: ClassVar[bool] = False
    summary: ClassVar[str] = (
        "single-value headers (Authorization, MSN, Idempotency-Key, ...) are sent once"
    )
    conditions: ClassVar[tuple[Condition, ...]] = (
        Condition("repeated", Action.BLOCK, (GUARD_DUPLICATE_HEADER,)),
    )

    def applies_to(self, operation: Operation) -> bool:
        return True

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        repeated = request.headers.repeated
        if not repeated:
            return
        for name in SINGLE_VALUE_HEADERS:
            if name.lower() in repeated:
                yield Finding(
                    self.code,
                    Source.HEADER,
                    name,
                    "is sent more than once (names are case-insensitive)",
                    "the header exactly once",
                    condition="repeated",
                )
