"""Header rules: which headers each Vipps operation needs, and the shape Vipps expects of them.

The matrix is the fact sheet's §2.2, read from each OpenAPI file's parameters: ePayment 1.8.1
[EP], eCom 2.0.3 [EC], Recurring 2.6.17 [RC], Checkout v3 [CO], Order Management 2.1 [OM],
Webhooks (2026 copy) [WH], Report 2.0 [RP] and Access token 2.0.0 [AT]. Where two sources
disagree the proxy takes the lenient one: a header one of them calls optional is not required.

Header names are case-insensitive (`AuditedRequest.headers`); values are compared as sent. No
finding ever carries a credential: `Authorization`, `client_id`, `client_secret` and the
subscription key are described by scheme and length only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import ClassVar

from policies.evidence import (
    EPAYMENT_MISSING_PARAMETER,
    GUARD_DUPLICATE_HEADER,
    KB_HTTP_401_BEARER,
    KB_HTTP_401_SUBSCRIPTION_KEY,
    RECURRING_IDEMPOTENCY_KEY,
)
from policies.model import (
    Action,
    AuditedRequest,
    Condition,
    Evidence,
    Finding,
    Headers,
    Source,
    shown,
)
from policies.operations import UNKNOWN, Operation

__all__ = [
    "AUTHORIZATION",
    "BEARER_APIS",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "IDEMPOTENCY_KEY",
    "MERCHANT_SERIAL_NUMBER",
    "REQUEST_ID",
    "SUBSCRIPTION_KEY",
    "SYSTEM_HEADERS",
    "HeaderFormat",
    "RequiredHeaders",
    "Requirement",
    "SystemHeaders",
    "describe_credentials",
    "required_headers",
]

AUTHORIZATION = "Authorization"
SUBSCRIPTION_KEY = "Ocp-Apim-Subscription-Key"
MERCHANT_SERIAL_NUMBER = "Merchant-Serial-Number"
IDEMPOTENCY_KEY = "Idempotency-Key"
REQUEST_ID = "X-Request-Id"
CLIENT_ID = "client_id"
CLIENT_SECRET = "client_secret"  # noqa: S105 - a header name, not a secret
SYSTEM_HEADERS = (
    "Vipps-System-Name",
    "Vipps-System-Version",
    "Vipps-System-Plugin-Name",
    "Vipps-System-Plugin-Version",
)

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

# Every call takes `Authorization: Bearer <access token>` [EP #/security],
# [EC #/components/parameters/Authorization], [RC #/components/parameters/Authorization],
# [OM #/components/parameters/Authorization], [WH #/security]. Report declares the header on
# two of its four paths, but its own text says the token "is required for all API calls"
# [RP #/components/parameters/JWT]; no Report call can succeed without one.
BEARER_APIS = frozenset({"epayment", "ecom", "recurring", "order_management", "webhooks", "report"})
# Required by [AT], [EP], [EC], [RC] and [OM]. Optional in Checkout's parameters
# [CO #/components/parameters/Ocp-Apim-Subscription-Key] and in the 2026 Webhooks spec
# [WH #/paths/~1v1~1webhooks/post/parameters]; Report does not declare it.
_SUBSCRIPTION_KEY_APIS = frozenset({"epayment", "ecom", "recurring", "order_management"})
# Required on every ePayment and Order Management operation [EP #/components/schemas/MSN],
# [OM #/components/parameters/Merchant-Serial-Number]; optional elsewhere (partners excepted,
# which the proxy cannot tell).
_MSN_APIS = frozenset({"epayment", "order_management"})
# [EP #/components/parameters/Idempotency-Key]: required on create, capture and refund. Cancel
# needed it in 1.4.1 but no longer declares it (facts §14.7), so it is not required there.
_EPAYMENT_KEYED = frozenset({"create_payment", "capture_payment", "refund_payment"})
# [EC #/paths/~1ecomm~1v2~1payments~1{orderId}~1capture/post/parameters] and .../refund: the
# spec (generated from the service's own annotations) marks `X-Request-Id` required.
_ECOM_REQUEST_ID_REQUIRED = frozenset({"capture_payment", "refund_payment"})
_ECOM_REQUEST_ID_DECLARED = _ECOM_REQUEST_ID_REQUIRED | {"force_approve"}
# Recurring v2 declares the key on create, capture and refund charge, but the guide requires it
# only in v3 [RCDOC recurring-api-guide.md §Idempotency Key header]: checked there, not required.
_RECURRING_V2_KEYED = frozenset({"create_charge_v2", "capture_charge_v2", "refund_charge_v2"})
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_MSN_FORMAT = re.compile(r"[0-9]{4,10}")
_RECURRING_KEY_FORBIDDEN = "#?/\\"
# Scheme names that may be echoed in a finding; anything else could be part of a secret.
_KNOWN_SCHEMES = frozenset(
    {"basic", "bearer", "digest", "hoba", "mutual", "negotiate", "ntlm", "oauth", "token", "jwt"}
)


def _api(operation: Operation) -> str:
    return _API_NAMES.get(operation.api, operation.api)


def _is_recurring_v3_write(operation: Operation) -> bool:
    """[RC #/components/parameters/Idempotency-Key] is required on every v3 write."""
    return (
        operation.api == "recurring"
        and operation.template.startswith("/recurring/v3/")
        and operation.method in _WRITES
    )


def _value(headers: Headers, name: str) -> str:
    """The header's value with surrounding whitespace removed ("" when absent)."""
    return (headers.get(name) or "").strip()


# --- Required headers ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Requirement:
    """One header an operation needs; `unless` names headers that together may stand in for it."""

    header: str
    expected: str
    condition: str
    unless: tuple[str, ...] = ()


@cache
def required_headers(operation: Operation) -> tuple[Requirement, ...]:
    """The headers the spec requires on `operation` (empty for operations it does not cover)."""
    api, name = operation.api, operation.name
    needed: list[Requirement] = []
    if api in BEARER_APIS:
        needed.append(
            Requirement(
                AUTHORIZATION, "`Bearer <access token>` from /accesstoken/get", "authorization"
            )
        )
    if api in _SUBSCRIPTION_KEY_APIS or operation.key == "access_token.fetch_access_token":
        needed.append(
            Requirement(
                SUBSCRIPTION_KEY,
                "the sales unit's subscription key (as for the token)",
                "subscription_key",
            )
        )
    if api in _MSN_APIS:
        needed.append(
            Requirement(
                MERCHANT_SERIAL_NUMBER,
                "the sales unit's MSN, e.g. 123456",
                "merchant_serial_number",
            )
        )
    if api == "epayment" and name in _EPAYMENT_KEYED:
        needed.append(
            Requirement(
                IDEMPOTENCY_KEY, "a unique key of at most 50 characters", "epayment_idempotency_key"
            )
        )
    if _is_recurring_v3_write(operation):
        needed.append(
            Requirement(
                IDEMPOTENCY_KEY,
                "a unique key of 1-40 characters without # ? / \\",
                "recurring_idempotency_key",
            )
        )
    if api == "ecom" and name in _ECOM_REQUEST_ID_REQUIRED:
        needed.append(
            Requirement(REQUEST_ID, "a unique id of at most 40 characters", "ecom_request_id")
        )
    if operation.key == "access_token.fetch_access_token" or api == "checkout":
        # [AT #/paths/~1accesstoken~1get/post/parameters]; Checkout authenticates with the
        # same two headers instead of a token [CO #/components/parameters/client_id].
        needed.append(
            Requirement(
                CLIENT_ID, "the client_id of the sales unit's API keys", "client_credentials"
            )
        )
        needed.append(
            Requirement(
                CLIENT_SECRET,
                "the client_secret of the sales unit's API keys",
                "client_credentials",
            )
        )
    if operation.key == "access_token.fetch_partner_token":
        # The 2026 spec wants Basic authentication [AT #/paths/~1miami~1v1~1token/post]; the
        # 2023 one took client_id and client_secret headers [AT23]: either is accepted.
        needed.append(
            Requirement(
                AUTHORIZATION,
                "`Basic base64(client_id:client_secret)`, or client_id and client_secret",
                "partner_credentials",
                unless=(CLIENT_ID, CLIENT_SECRET),
            )
        )
    return tuple(needed)


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
        return bool(required_headers(operation))

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        headers = request.headers
        for need in required_headers(request.operation):
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


def _system_header_limit(operation: Operation) -> int:
    """[KB http-headers.md] and every spec say 30; Order Management declares 100
    [OM #/components/parameters/Vipps-System-Name]."""
    return 100 if operation.api == "order_management" else 30


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
        operation, headers = request.operation, request.headers
        if operation.api in BEARER_APIS:
            yield from self._authorization(headers)
        if operation.api == "epayment" or operation.key == "access_token.fetch_access_token":
            yield from self._msn(headers)
        yield from self._idempotency(operation, headers)
        limit = _system_header_limit(operation)
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

    def _idempotency(self, operation: Operation, headers: Headers) -> Iterator[Finding]:
        if operation.api == "epayment" and operation.name in _EPAYMENT_KEYED:
            key = _value(headers, IDEMPOTENCY_KEY)
            if len(key) > 50:
                yield self._finding(
                    IDEMPOTENCY_KEY,
                    f"is {len(key)} characters long",
                    "at most 50 characters",
                    shown(key),
                    "epayment_idempotency_key",
                )
        elif _is_recurring_v3_write(operation) or operation.name in _RECURRING_V2_KEYED:
            key = _value(headers, IDEMPOTENCY_KEY)
            expected = "1-40 characters, none of # ? / \\"
            if len(key) > 40:
                yield self._finding(
                    IDEMPOTENCY_KEY,
                    f"is {len(key)} characters long",
                    expected,
                    shown(key),
                    "recurring_idempotency_key",
                )
            forbidden = [ch for ch in _RECURRING_KEY_FORBIDDEN if ch in key]
            if forbidden:
                yield self._finding(
                    IDEMPOTENCY_KEY,
                    "contains " + " ".join(repr(ch) for ch in forbidden),
                    expected,
                    shown(key),
                    "recurring_idempotency_key",
                )
        elif operation.api == "ecom" and operation.name in _ECOM_REQUEST_ID_DECLARED:
            request_id = _value(headers, REQUEST_ID)
            if len(request_id) > 40:
                yield self._finding(
                    REQUEST_ID,
                    f"is {len(request_id)} characters long",
                    "at most 40 characters",
                    shown(request_id),
                    "ecom_request_id",
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

    code = "header.repeated"
    default_action = Action.BLOCK
    can_repair = False
    summary = "single-value headers (Authorization, MSN, Idempotency-Key, ...) are sent once"
    conditions = (Condition("repeated", Action.BLOCK, (GUARD_DUPLICATE_HEADER,)),)

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
