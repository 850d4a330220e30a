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
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urlsplit

from policies.catalogue.operations import Operation
from policies.catalogue.spec import spec_of
from policies.catalogue.url_fields import Role, UrlField
from policies.core.jsonbody import JsonBody, JsonValue, Path, format_path
from policies.core.model import (
    Action,
    AuditedRequest,
    Condition,
    Evidence,
    Finding,
    Source,
    describe_value,
    shown,
)
from policies.rules.evidence import EPAYMENT_INVALID_URL, KB_URL_VALIDATION

__all__ = ["CallbackIsHttps", "LocalhostUrl", "ParsedUrl", "is_local_host", "parse_url"]


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
    spec = spec_of(request.operation).urls
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
        return spec_of(operation).urls is not None

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
        return spec_of(operation).urls is not None

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
