"""Error bodies in each Vipps API's own shape, and reading Vipps' error bodies.

A request the proxy stops gets the status Vipps would use and a body in the error shape of the
API that was called, so the merchant's existing error handling works; the `type` URI is the
proxy's own, so nobody mistakes a local block for a Vipps rejection.
Shapes: facts §10 ([EP #/components/schemas/Problem], [EC #/components/schemas/ErrorArray],
[RC #/components/schemas/ErrorV3], [CO #/components/schemas/CheckoutProblemDetails],
[OM #/components/schemas/ErrorResponse], [WH #/components/schemas/ProblemDetails],
[LG #/components/schemas/ErrorResponse]).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from policies.catalogue.operations import Operation
from policies.core.jsonbody import JsonValue
from policies.core.model import Finding

PROBLEM_JSON = "application/problem+json"
VIPPS_JSON = "application/json;charset=UTF-8"

BLOCKED_TYPE = "urn:vipps-audit-proxy:problem:blocked-by-policy"
BLOCKED_TITLE = "Blocked by vipps-audit-proxy before reaching Vipps"


class ErrorShape(StrEnum):
    """The error body shapes of the Vipps APIs (facts §10)."""

    PROBLEM = "problem"  # RFC 7807 with `traceId` and `extraDetails[{name, reason}]` (ePayment)
    ECOM = "ecom"  # an array of `{errorGroup, errorCode, errorMessage, contextId}`
    RECURRING = "recurring"  # RFC 7807 with `contextId` and `extraDetails[{field, text}]`
    CHECKOUT = "checkout"  # RFC 7807 with `errorCode` and `errors{field: [...]}`
    ORDER_MANAGEMENT = "order_management"  # RFC 7807 with `invalidParams[{name, reason}]`
    OAUTH = "oauth"  # `{"error": "invalid_request", ...}` (Login)


ERROR_SHAPES: Mapping[str, ErrorShape] = MappingProxyType(
    {
        "ecom": ErrorShape.ECOM,
        "recurring": ErrorShape.RECURRING,
        "checkout": ErrorShape.CHECKOUT,
        "order_management": ErrorShape.ORDER_MANAGEMENT,
        "login": ErrorShape.OAUTH,
    }
)
"""Each API's error shape by API name; any other API (and `unknown`) answers RFC 7807."""


def error_shape(operation: Operation) -> ErrorShape:
    """The shape of the errors `operation`'s API answers with."""
    return ERROR_SHAPES.get(operation.api, ErrorShape.PROBLEM)


@dataclass(frozen=True, slots=True)
class ErrorDocument:
    """A rendered error: status, content type and a JSON body (serialised by the caller)."""

    status: int
    content_type: str
    body: JsonValue


def _reason(finding: Finding) -> str:
    return (
        f"[{finding.rule}] {finding.problem}"
        + (f" (sent {finding.value})" if finding.value is not None else "")
        + f"; expected {finding.expected}"
    )


def render_error(
    operation: Operation,
    *,
    status: int,
    type_uri: str,
    title: str,
    detail: str,
    findings: Sequence[Finding],
    instance: str,
    trace_id: str,
) -> ErrorDocument:
    """Render an error listing `findings` in the shape of `operation`'s API (RFC 7807 for
    anything unknown)."""
    shape = error_shape(operation)
    if shape is ErrorShape.ECOM:
        limited = status == 429  # eCom's own code for it: VippsError 98, too many requests
        items: list[JsonValue] = [
            {
                "errorGroup": "VippsError" if limited else "InvalidRequest",
                # eCom: "for InvalidRequest the field name will be the error code".
                "errorCode": "98" if limited else f.field,
                "errorMessage": _reason(f),
                "contextId": trace_id,
            }
            for f in findings
        ]
        return ErrorDocument(status, VIPPS_JSON, items)
    problem: dict[str, JsonValue] = {
        "type": type_uri,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if shape is ErrorShape.RECURRING:
        problem["contextId"] = trace_id
        problem["extraDetails"] = [{"field": f.field, "text": _reason(f)} for f in findings]
        return ErrorDocument(status, VIPPS_JSON, problem)
    if shape is ErrorShape.CHECKOUT:
        errors: dict[str, JsonValue] = {}
        for f in findings:
            messages = errors.setdefault(f.field, [])
            assert isinstance(messages, list)
            messages.append(_reason(f))
        problem["errorCode"] = "Validation-00001"
        problem["errors"] = errors
        return ErrorDocument(status, "application/json", problem)
    if shape is ErrorShape.ORDER_MANAGEMENT:
        problem["invalidParams"] = [{"name": f.field, "reason": _reason(f)} for f in findings]
        return ErrorDocument(status, PROBLEM_JSON, problem)
    if shape is ErrorShape.OAUTH:
        return ErrorDocument(
            status,
            "application/json",
            {"error": "invalid_request", "error_code": status, "error_debug": f"{title}: {detail}"},
        )
    problem["traceId"] = trace_id
    problem["extraDetails"] = [{"name": f.field, "reason": _reason(f)} for f in findings]
    return ErrorDocument(status, PROBLEM_JSON, problem)


def render_block(
    operation: Operation, findings: Sequence[Finding], *, instance: str, trace_id: str
) -> ErrorDocument:
    """The answer a request gets when rules block it, listing every blocking finding.

    `findings` holds at least one finding: a request blocked without one (a rule that failed
    to evaluate) is the proxy's own error, rendered by the proxy. The status is 400 unless a
    finding says Vipps would answer otherwise (409, 429); the highest such status wins, since
    it is the one the caller must act on first.
    """
    count = len(findings)
    status = max(f.status for f in findings)
    first = findings[0].message
    more = f" (and {count - 1} more, see details)" if count > 1 else ""
    return render_error(
        operation,
        status=status,
        type_uri=BLOCKED_TYPE,
        title=BLOCKED_TITLE,
        detail=f"Vipps would reject this request: {first}{more}. It was not sent to Vipps.",
        findings=findings,
        instance=instance,
        trace_id=trace_id,
    )


def vipps_error_code(body: JsonValue) -> str | None:
    """The Vipps error code in an error body, in whichever shape the API uses."""
    if isinstance(body, list):
        first = body[0] if body else None
        if isinstance(first, dict):
            code = first.get("errorCode", first.get("code"))  # eCom; Recurring v2
            return str(code) if code is not None else None
        return None
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("errorCode"), str | int):  # Checkout
        return str(body["errorCode"])
    details = body.get("extraDetails")
    if isinstance(details, list):  # ePayment: {"name": "ErrorCode", "reason": "6080"}
        for item in details:
            if isinstance(item, dict) and item.get("name") == "ErrorCode":
                return str(item.get("reason"))
    type_uri = body.get("type")
    if isinstance(type_uri, str) and "#" in type_uri:  # Recurring: ...recurring-api-problems#id
        return type_uri.rsplit("#", 1)[1]
    if isinstance(body.get("error"), str):  # Login (OAuth)
        return str(body["error"])
    return None


def vipps_trace_id(body: JsonValue) -> str | None:
    """The trace or context id Vipps puts in error bodies, for correlating with Vipps support."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    if isinstance(body, dict):
        for key in ("traceId", "contextId"):
            value = body.get(key)
            if isinstance(value, str):
                return value[:128]
    return None
