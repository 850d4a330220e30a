"""The proxy's own errors: few classes, each carrying its status and problem type as data.

One function renders any of them as an RFC 7807 `application/problem+json` body.
"""

from __future__ import annotations

import orjson

PROBLEM_BASE = "urn:vipps-audit-proxy:problem:"


class ProxyError(Exception):
    """An error the proxy answers itself; `detail` says what happened in one sentence."""

    status = 500
    slug = "internal-error"
    title = "The proxy failed to handle the request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(ProxyError):
    """The request cannot be proxied as sent (for example an absolute-form target)."""

    status = 400
    slug = "bad-request"
    title = "The proxy cannot forward this request"


class BodyTooLarge(ProxyError):
    """The request body is over VIPPS_PROXY_MAX_BODY_BYTES."""

    status = 413
    slug = "body-too-large"
    title = "Request body too large"


class ClientClosed(ProxyError):
    """The client went away mid-request; 499 as nginx records it (the client never sees it)."""

    status = 499
    slug = "client-closed-request"
    title = "The client closed the connection"


class UnsupportedEncoding(ProxyError):
    """A Content-Encoding the proxy cannot decode to judge the body."""

    status = 415
    slug = "unsupported-content-encoding"
    title = "Unsupported Content-Encoding"


class UpstreamError(ProxyError):
    """No usable HTTP response from Vipps; `reason` is the bounded metric label."""

    status = 502
    slug = "upstream-unreachable"
    title = "Vipps could not be reached"

    def __init__(self, detail: str, reason: str) -> None:
        super().__init__(detail)
        self.reason = reason


class UpstreamTimeout(UpstreamError):
    """Vipps did not answer within the configured time."""

    status = 504
    slug = "upstream-timeout"
    title = "Vipps did not answer in time"


class ShutdownCut(ProxyError):
    """The drain budget ended while the request was still running (`outcome="shutdown"`).

    Once the request was forwarded, Vipps may have acted on it: the answer says so, as for an
    upstream timeout, so the caller checks the payment's status before retrying.
    """

    slug = "shutdown"

    def __init__(self, *, forwarded: bool, grace_seconds: float) -> None:
        budget = f"within its shutdown grace of {grace_seconds:g} s"
        if forwarded:
            detail = (
                f"the proxy shut down before Vipps answered {budget}; the request may have"
                " reached Vipps, so check the payment's status before retrying"
            )
        else:
            detail = (
                f"the proxy shut down before the request was sent to Vipps {budget};"
                " it was not sent and can be retried"
            )
        super().__init__(detail)
        self.forwarded = forwarded
        self.status = 504 if forwarded else 503
        self.title = (
            "The proxy shut down before Vipps answered"
            if forwarded
            else "The proxy shut down before sending the request"
        )


def render_problem(error: ProxyError, *, instance: str, trace_id: str) -> bytes:
    """The problem+json body for `error`."""
    return orjson.dumps(
        {
            "type": PROBLEM_BASE + error.slug,
            "title": error.title,
            "status": error.status,
            "detail": error.detail,
            "instance": instance,
            "traceId": trace_id,
        }
    )
