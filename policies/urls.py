"""URL rules: callback and redirect URLs use the scheme their API demands and a host Vipps accepts.

Field by field from the OpenAPI files (facts §4.5, §5.4, §6.4, §7, §8, §9) and the knowledge
base page on URL validation [KB url-validation.md]. Where the API states no scheme rule
(Checkout, Order Management), any absolute http or https URL passes; app schemes (`myapp://`)
pass only where the API documents them. With `isApp: true` (eCom [EC
#/components/schemas/MerchantInfo/properties/isApp], Recurring [RC
#/components/schemas/DraftAgreementV3/properties/isApp]) Vipps does not validate the URLs as
regular URLs, and neither does the proxy.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import ClassVar
from urllib.parse import urlsplit

from policies.evidence import EPAYMENT_INVALID_URL, KB_URL_VALIDATION
from policies.jsonbody import JsonBody, JsonValue, Path, format_path
from policies.model import (
    Action,
    AuditedRequest,
    Condition,
    Evidence,
    Finding,
    Source,
    describe_value,
    shown,
)
from policies.operations import Operation

__all__ = [
    "URL_FIELDS",
    "CallbackIsHttps",
    "LocalhostUrl",
    "ParsedUrl",
    "Role",
    "Schemes",
    "UrlField",
    "UrlFields",
    "is_local_host",
    "parse_url",
]


class Schemes(Enum):
    """Which schemes a URL field accepts."""

    HTTPS = "an https:// URL"
    HTTPS_OR_APP = "an https:// URL or an app URL such as myapp://"
    WEB = "an absolute http:// or https:// URL"
    WEB_OR_APP = "an absolute http(s):// URL or an app URL such as myapp://"

    @property
    def allows_app(self) -> bool:
        """Whether an app URL (`myapp://...`) is accepted."""
        return self in (Schemes.HTTPS_OR_APP, Schemes.WEB_OR_APP)

    @property
    def allows_http(self) -> bool:
        """Whether plain http:// is accepted."""
        return self in (Schemes.WEB, Schemes.WEB_OR_APP)


class Role(Enum):
    """Who opens the URL: Vipps' servers (a callback) or the user's browser or app (a redirect)."""

    CALLBACK = "callback"
    REDIRECT = "redirect"


@dataclass(frozen=True, slots=True)
class UrlField:
    """One URL field of a request body.

    `required`: an empty string is a finding (in optional fields it is left alone).
    `localhost_rejected`: Vipps' URL validation is documented to reject a `localhost` host.
    `loopback_http`: plain http on a loopback host is accepted (eCom `fallBack` for testing).
    """

    path: Path
    schemes: Schemes
    role: Role
    required: bool = False
    localhost_rejected: bool = False
    loopback_http: bool = False


@dataclass(frozen=True, slots=True)
class UrlFields:
    """The URL fields of one operation and, if any, the `isApp` flag that turns validation off."""

    fields: tuple[UrlField, ...]
    app_flag: Path | None = None


def _p(dotted: str) -> Path:
    return tuple(dotted.split("."))


_HTTPS, _HTTPS_APP, _WEB, _WEB_APP = (
    Schemes.HTTPS,
    Schemes.HTTPS_OR_APP,
    Schemes.WEB,
    Schemes.WEB_OR_APP,
)
_CB, _RD = Role.CALLBACK, Role.REDIRECT

# [EP #/components/schemas/CreatePaymentRequest/properties/returnUrl] and receiptUrl: "https://
# or a custom URL scheme"; [EP #/components/schemas/DynamicOptions/properties/callbackUrl]:
# "must be valid, see url-validation ... must use HTTPS"; [EP #/components/schemas/CardPassthrough]:
# "Must use https://".
_EPAYMENT = UrlFields(
    (
        UrlField(("returnUrl",), _HTTPS_APP, _RD),
        UrlField(("receiptUrl",), _HTTPS_APP, _RD),
        UrlField(
            _p("shipping.dynamicOptions.callbackUrl"), _HTTPS, _CB, True, localhost_rejected=True
        ),
        UrlField(_p("cardPassthrough.cardCallbackUrl"), _HTTPS, _CB, True),
    )
)
# [EC #/components/schemas/MerchantInfo]: the prefixes "must use HTTPS"; fallBack "HTTPS, or a
# custom URL scheme"; all validated by Apache Commons UrlValidator, which rejects
# http://localhost while http://127.0.0.1 works for a test fallBack [KB url-validation.md].
_ECOM = UrlFields(
    (
        UrlField(_p("merchantInfo.callbackPrefix"), _HTTPS, _CB, True, localhost_rejected=True),
        UrlField(
            _p("merchantInfo.fallBack"),
            _HTTPS_APP,
            _RD,
            True,
            localhost_rejected=True,
            loopback_http=True,
        ),
        UrlField(_p("merchantInfo.consentRemovalPrefix"), _HTTPS, _CB, localhost_rejected=True),
        UrlField(_p("merchantInfo.shippingDetailsPrefix"), _HTTPS, _CB, localhost_rejected=True),
    ),
    app_flag=_p("merchantInfo.isApp"),
)
# [RC #/components/schemas/DraftAgreementV3]: merchantRedirectUrl "HTTPS and deeplinks",
# merchantAgreementUrl "Only HTTPS scheme is allowed". The v2 draft says "Only HTTP or HTTPS"
# for merchantAgreementUrl [RC #/components/schemas/DraftAgreementV2]; the updates (v2 and v3)
# say it requires HTTPS [RC #/components/schemas/PatchAgreementV3].
_RECURRING_DRAFT = UrlFields(
    (
        UrlField(("merchantRedirectUrl",), _HTTPS_APP, _RD, True),
        UrlField(("merchantAgreementUrl",), _HTTPS, _RD, True),
    ),
    app_flag=("isApp",),
)
_RECURRING_DRAFT_V2 = UrlFields(
    (
        UrlField(("merchantRedirectUrl",), _HTTPS_APP, _RD, True),
        UrlField(("merchantAgreementUrl",), _WEB, _RD, True),
    ),
    app_flag=("isApp",),
)
_RECURRING_UPDATE = UrlFields((UrlField(("merchantAgreementUrl",), _HTTPS, _RD),))
# [CO #/components/schemas/PaymentMerchantInfo], [CO #/components/schemas/Logistics]: no scheme
# rule; returnUrl may be an app URL [CODOC checkout-api-guide.md §native mobile application].
_CHECKOUT_V3 = UrlFields(
    (
        UrlField(_p("merchantInfo.callbackUrl"), _WEB, _CB, True),
        UrlField(_p("merchantInfo.returnUrl"), _WEB_APP, _RD, True),
        UrlField(_p("merchantInfo.termsAndConditionsUrl"), _WEB, _RD),
        UrlField(_p("logistics.dynamicOptionsCallback"), _WEB, _CB),
    )
)
_CHECKOUT_V2 = UrlFields(
    (
        UrlField(_p("merchantInfo.callbackPrefix"), _WEB, _CB, True),
        UrlField(_p("merchantInfo.returnUrl"), _WEB_APP, _RD, True),
        UrlField(_p("merchantInfo.termsAndConditionsUrl"), _WEB, _RD),
        UrlField(_p("logistics.dynamicOptionsCallback"), _WEB, _CB),
    )
)
# [WH #/components/schemas/RegisterRequest/properties/url]: "valid, world-reachable ... must
# use HTTPS".
_WEBHOOKS = UrlFields((UrlField(("url",), _HTTPS, _CB, True, localhost_rejected=True),))
# [OM #/components/schemas/Order/properties/orderDetailsUrl], [OM ... AddCategoryRequest]:
# `format: uri`, minLength 1, https examples but no stated scheme rule.
_OM_ORDER = UrlFields((UrlField(("orderDetailsUrl",), _WEB, _RD, True),))
_OM_CATEGORY = UrlFields((UrlField(("url",), _WEB, _RD, True),))

URL_FIELDS: Mapping[str, UrlFields] = MappingProxyType(
    {
        "epayment.create_payment": _EPAYMENT,
        "ecom.initiate_payment": _ECOM,
        "recurring.draft_agreement": _RECURRING_DRAFT,
        "recurring.draft_agreement_v2": _RECURRING_DRAFT_V2,
        "recurring.update_agreement": _RECURRING_UPDATE,
        "recurring.update_agreement_v2": _RECURRING_UPDATE,
        "recurring.patch_agreement_v2": _RECURRING_UPDATE,
        "checkout.create_session": _CHECKOUT_V3,
        "checkout.create_session_v2": _CHECKOUT_V2,
        "webhooks.register_webhook": _WEBHOOKS,
        "order_management.set_category": _OM_ORDER,
        "order_management.put_order_v1": _OM_ORDER,
        "order_management.create_category": _OM_CATEGORY,
    }
)


# --- Parsing ---------------------------------------------------------------------------------

_WEB_SCHEMES = frozenset({"http", "https"})
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
# `example.com:8443/cb` or `localhost:3000`: a host and port written without a scheme.
_HOST_AND_PORT = re.compile(r"[^:/?#]+:[0-9]+(?:[/?#]|$)")


@dataclass(frozen=True, slots=True)
class ParsedUrl:
    """What the rules need of a URL: lower-cased scheme, host (http and https only), problem."""

    scheme: str = ""
    host: str | None = None
    problem: str | None = None


def _valid_host(host: str) -> bool:
    # Letters of any script (IDN), digits, `-._`, and `:` `%` inside IPv6 literals.
    return all(ch.isalnum() or ch in "-._:%" for ch in host)


def parse_url(text: str) -> ParsedUrl:
    """Parse an absolute URL leniently (surrounding whitespace is ignored)."""
    text = text.strip()
    match = _SCHEME.match(text)
    if match is None or (_HOST_AND_PORT.match(text) and match.group(1).lower() not in _WEB_SCHEMES):
        return ParsedUrl(problem="is not an absolute URL (it has no scheme such as https://)")
    scheme = match.group(1).lower()
    if scheme not in _WEB_SCHEMES:
        return ParsedUrl(scheme)
    if not text[match.end() :].startswith("//"):
        return ParsedUrl(
            scheme, problem=f"is not an absolute URL (nothing like //host after {scheme}:)"
        )
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        return ParsedUrl(scheme, problem="is not a valid URL (bad port or host)")
    host = parts.hostname
    if not host:
        return ParsedUrl(scheme, problem="is not a valid URL (it has no host)")
    if not _valid_host(host):
        return ParsedUrl(scheme, problem="is not a valid URL (the host has characters no host has)")
    return ParsedUrl(scheme, host)


def is_local_host(host: str) -> bool:
    """`localhost` and names under it (`localhost.localdomain`, `app.localhost`)."""
    name = host.rstrip(".").lower()
    return name in ("localhost", "localhost.localdomain") or name.endswith(".localhost")


def _is_loopback_ip(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _is_app_request(body: JsonBody, flag: Path | None) -> bool:
    """`isApp: true` (Jackson also reads the string "true" as true, so the proxy does too)."""
    if flag is None:
        return False
    value = body.walk(flag)
    return bool(value) and (
        value[0][1] is True or (isinstance(value[0][1], str) and value[0][1].lower() == "true")
    )


def _urls(request: AuditedRequest) -> Iterator[tuple[UrlField, Path, JsonValue]]:
    """Each URL field present in the body, unless `isApp` switches validation off."""
    spec = URL_FIELDS.get(request.operation.key)
    if spec is None:
        return
    if _is_app_request(request.json, spec.app_flag):
        return
    for url_field in spec.fields:
        for at, value in request.json.walk(url_field.path):
            yield url_field, at, value


# --- Rules -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallbackIsHttps:
    """Callback and redirect URLs are absolute URLs with a scheme their API accepts.

    HTTPS only: ePayment `shipping.dynamicOptions.callbackUrl` and
    `cardPassthrough.cardCallbackUrl`, eCom `callbackPrefix`, `consentRemovalPrefix`,
    `shippingDetailsPrefix`, Recurring v3 `merchantAgreementUrl`, Webhooks `url`. HTTPS or an
    app scheme: ePayment `returnUrl` and `receiptUrl`, eCom `fallBack` (also `http://127.0.0.1`
    for testing [KB url-validation.md]), Recurring `merchantRedirectUrl`. Any http(s) URL, as no
    scheme rule is stated: Checkout `callbackUrl`, `termsAndConditionsUrl`,
    `dynamicOptionsCallback`, Order Management `orderDetailsUrl`/`url`, Recurring v2 draft
    `merchantAgreementUrl`; Checkout `returnUrl` may also be an app URL. A value that is not a
    parseable absolute URL is a finding too; null and, in optional fields, "" are left alone.
    Skipped entirely with eCom or Recurring `isApp: true`.
    """

    code: ClassVar[str] = "url.not_https"
    default_action: ClassVar[Action] = Action.BLOCK
    can_repair: ClassVar[bool] = False
    summary: ClassVar[str] = (
        "callback and redirect URLs are absolute and use the scheme the API demands"
    )
    conditions: ClassVar[tuple[Condition, ...]] = (
        Condition(
            "scheme",
            Action.BLOCK,
            (
                EPAYMENT_INVALID_URL,
                Evidence(
                    "[EC #/components/schemas/MerchantInfo/properties/callbackPrefix], [RC"
                    " #/components/schemas/DraftAgreementV3/properties/merchantAgreementUrl], [WH"
                    " #/components/schemas/RegisterRequest/properties/url]",
                    "the field descriptions say the URL must use HTTPS (or name the app schemes"
                    " they take)",
                ),
            ),
        ),
        Condition("not_a_url", Action.BLOCK, (EPAYMENT_INVALID_URL, KB_URL_VALIDATION)),
    )

    def applies_to(self, operation: Operation) -> bool:
        return operation.key in URL_FIELDS

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        for url_field, at, value in _urls(request):
            problem, sent = self._problem(url_field, value)
            if problem is not None:
                # A URL that parses has only its scheme to blame.
                parsed = isinstance(value, str) and parse_url(value).problem is None
                yield Finding(
                    self.code,
                    Source.BODY,
                    format_path(at),
                    problem,
                    url_field.schemes.value,
                    sent,
                    condition="scheme" if parsed else "not_a_url",
                )

    @staticmethod
    def _problem(url_field: UrlField, value: JsonValue) -> tuple[str | None, str | None]:
        if value is None:
            return None, None
        if not isinstance(value, str):
            return f"is a {describe_value(value)}, not a URL", None
        if not value.strip():
            return ("is empty" if url_field.required else None), None
        sent = shown(value)
        parsed = parse_url(value)
        if parsed.problem is not None:
            return parsed.problem, sent
        schemes = url_field.schemes
        if parsed.scheme == "https":
            return None, None
        if parsed.scheme == "http":
            loopback = parsed.host is not None and (
                _is_loopback_ip(parsed.host) or is_local_host(parsed.host)
            )
            if schemes.allows_http or (url_field.loopback_http and loopback):
                return None, None
            return "uses http://, which this field does not accept", sent
        if schemes.allows_app:
            return None, None
        return f"uses the app scheme {parsed.scheme}:, which this field does not accept", sent


@dataclass(frozen=True, slots=True)
class LocalhostUrl:
    """URLs do not point at localhost where Vipps rejects it, and callbacks are reachable.

    Vipps' URL validation rejects `localhost` hosts [KB url-validation.md]; documented for all
    eCom URLs (use `http://127.0.0.1` for a test `fallBack`), ePayment's dynamic shipping
    callback (which points to that page) and Webhooks (`url` "must be a valid, world-reachable
    URL" [WH #/components/schemas/RegisterRequest/properties/url]): blocked there. Elsewhere
    Vipps may accept it, so these are advice: a localhost host in any other URL, and a
    loopback address (127.0.0.1, ::1, 0.0.0.0) in a callback, which Vipps' servers cannot
    reach. Skipped with eCom or Recurring `isApp: true`.
    """

    code: ClassVar[str] = "url.localhost"
    default_action: ClassVar[Action] = Action.BLOCK
    can_repair: ClassVar[bool] = False
    summary: ClassVar[str] = "URLs do not point at localhost, and callbacks are publicly reachable"
    conditions: ClassVar[tuple[Condition, ...]] = (
        Condition("localhost", Action.BLOCK, (KB_URL_VALIDATION,)),
        Condition(
            "unreachable",
            Action.REPORT,
            why="advice: Vipps may accept the URL but cannot call it, or may not validate it",
        ),
    )

    def applies_to(self, operation: Operation) -> bool:
        return operation.key in URL_FIELDS

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        for url_field, at, value in _urls(request):
            if not isinstance(value, str):
                continue
            host = parse_url(value).host
            if host is None:
                continue
            finding = self._judge(url_field, host)
            if finding is not None:
                problem, expected, advisory = finding
                yield Finding(
                    self.code,
                    Source.BODY,
                    format_path(at),
                    problem,
                    expected,
                    shown(value),
                    advisory=advisory,
                    condition="unreachable" if advisory else "localhost",
                )

    @staticmethod
    def _judge(url_field: UrlField, host: str) -> tuple[str, str, bool] | None:
        callback = url_field.role is Role.CALLBACK
        if is_local_host(host):
            if url_field.localhost_rejected:
                hint = (
                    " (http://127.0.0.1 works for a local test)" if url_field.loopback_http else ""
                )
                return (
                    "points at localhost, which Vipps' URL validation rejects",
                    f"a public host name{hint}",
                    False,
                )
            if callback:
                return (
                    "points at localhost, which Vipps' servers cannot reach",
                    "a public host name Vipps can call",
                    True,
                )
            return (
                "points at localhost, which Vipps' URL validation may reject",
                "a public host name, or 127.0.0.1 for a local test",
                True,
            )
        if callback and _is_loopback_ip(host):
            return (
                "points at a loopback address, which Vipps' servers cannot reach",
                "a public host name Vipps can call",
                True,
            )
        return None
