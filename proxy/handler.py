"""The proxy handler: identify, evaluate, then block locally or forward byte-for-byte.

Only I/O and bookkeeping live here; what a Vipps request should look like is the policy
engine's business, and Vipps' error shapes are rendered by `policies.core.errors`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
from aiohttp import web
from multidict import CIMultiDict

from policies.audit.payment_audit import ObserveResult, PaymentAudit
from policies.catalogue.operations import UNKNOWN, Operation, identify
from policies.core.engine import PolicyEngine
from policies.core.errors import ErrorDocument, render_block, vipps_error_code, vipps_trace_id
from policies.core.jsonbody import JsonValue
from policies.core.model import AuditedRequest, Finding, Headers, Outcome, Verdict, audited_request
from policies.core.redaction import SECRET_FIELDS, mask_text, scrub
from proxy.audit import (
    AuditLog,
    ErrorAnswer,
    RequestFacts,
    is_problem,
    request_level,
    request_record,
)
from proxy.content_coding import decode_body, encode_body
from proxy.drain import Drain
from proxy.grading import graded_outcome
from proxy.grading import vipps_outcome as vipps_outcome  # importable from here too
from proxy.metrics import ProxyMetrics
from proxy.problem import (
    BadRequest,
    BodyTooLarge,
    ClientClosed,
    ProxyError,
    ShutdownCut,
    UpstreamError,
    render_problem,
)
from proxy.upstream import Upstream, UpstreamResponse, end_to_end

if TYPE_CHECKING:
    # redis-py is loaded only when VIPPS_PROXY_STATE_URL asks for it (about 20 MB).
    from proxy.state_redis import RedisState

FINDINGS_HEADER = "Audit-Proxy-Findings"
REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID_MAX = 128


@dataclass(slots=True)
class Exchange:
    """What is known about one request as it passes through (for metrics and the audit log)."""

    request_id: str
    method: str
    operation: Operation
    started: float
    verdict: Verdict | None = None
    upstream_seconds: float | None = None
    upstream_trace_id: str | None = None
    vipps_error_code: str | None = None
    upstream_reason: str | None = None
    retry_after: str | None = None
    # Sent to Vipps (so it may have arrived), and cut by the end of the shutdown grace.
    forwarded: bool = False
    cut: bool = False
    # A block's answer as logged: rendered again from findings with masked values, so the
    # proxy's own words (header names, examples) stay readable in the log.
    logged_block: ErrorDocument | None = None
    # This request's own credentials, scrubbed from the logged parts that can quote them
    # verbatim: an error body, a rule's exception message, a proxy exception's detail.
    secrets: tuple[str, ...] = ()


def _decode_headers(raw: tuple[tuple[bytes, bytes], ...]) -> list[tuple[str, str]]:
    """Header names and values as text; a value that is not UTF-8 cannot be forwarded as sent."""
    headers = []
    for name, value in raw:
        key = name.decode("latin-1")
        try:
            headers.append((key, value.decode("utf-8")))
        except UnicodeDecodeError:
            # aiohttp's client writes header values as UTF-8, so other bytes would change.
            raise BadRequest(f"the value of header {key} is not valid UTF-8") from None
    return headers


def _credentials(headers: list[tuple[str, str]]) -> tuple[str, ...]:
    """The request's secret header values (and the token part of Authorization)."""
    found: list[str] = []
    for name, value in headers:
        if name.lower() in SECRET_FIELDS:
            found.append(value)
            found.extend(value.split(None, 1)[1:])
    return tuple(v for v in found if len(v) >= 8)


def _catalogued(method: str, path: str) -> bool:
    return identify(method, path).operation is not UNKNOWN


def _outcome(exchange: Exchange, status: int) -> str:
    """What the proxy did with the request, as the metrics and the record name it."""
    if exchange.cut:
        return "shutdown"
    if exchange.upstream_reason is not None:
        return "upstream_error"
    if status == ClientClosed.status:
        return "client_closed"
    if exchange.upstream_seconds is None:
        return "blocked"
    return "forwarded"


def _error_answer(exchange: Exchange, response: web.StreamResponse) -> ErrorAnswer | None:
    """The error answer the record quotes: a block's as logged (masked), else the body of any
    answer of 400 or more."""
    logged = exchange.logged_block
    if logged is not None:
        return ErrorAnswer(orjson.dumps(logged.body), logged.content_type, masked=True)
    if response.status >= 400 and isinstance(response, web.Response):
        body = response.body if isinstance(response.body, bytes) else b""
        return ErrorAnswer(body, response.content_type)
    return None


def _parse_json(answer: UpstreamResponse) -> JsonValue:
    """Vipps' answer as JSON, or None when it is empty or not JSON."""
    if not answer.body:
        return None
    try:
        parsed: JsonValue = orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        return None
    return parsed


def _masked(finding: Finding) -> Finding:
    """A finding as it may be logged: where and what was sent masked, the rule's words kept."""
    value = mask_text(finding.value) if finding.value is not None else None
    return dataclasses.replace(finding, field=mask_text(finding.field), value=value)


def _retry_after(answer: UpstreamResponse) -> str | None:
    return next((v for k, v in answer.headers if k.lower() == "retry-after"), None)


def _json_response(status: int, content_type: str, body: bytes) -> web.Response:
    return web.Response(status=status, body=body, headers={"Content-Type": content_type})


class ProxyHandler:
    """Handles every request on the listen port."""

    def __init__(
        self,
        engine: PolicyEngine,
        upstream: Upstream,
        metrics: ProxyMetrics,
        audit: AuditLog,
        payments: PaymentAudit,
        *,
        log_body_max_bytes: int,
        max_body_bytes: int,
        drain: Drain | None = None,
        shared: RedisState | None = None,
    ) -> None:
        self._engine = engine
        self._upstream = upstream
        self._metrics = metrics
        self._audit = audit
        self._payments = payments
        self._log_body_max = log_body_max_bytes
        self._max_body = max_body_bytes
        self._drain = drain if drain is not None else Drain()
        self._shared = shared

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        incoming_id = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = (
            incoming_id[:_REQUEST_ID_MAX]
            if incoming_id.isprintable() and incoming_id
            else os.urandom(16).hex()
        )
        raw_target = request.raw_path
        path, _, query = raw_target.partition("?")
        exchange = Exchange(
            request_id, request.method, Operation("unknown", "unknown", "*", "/"), started
        )
        self._metrics.in_flight.inc()
        task = self._drain.enter()
        try:
            response = await self._process(request, exchange, raw_target, path, query)
        except ProxyError as error:
            response = self._problem_response(error, exchange, path)
        except asyncio.CancelledError:
            if task is None or not self._drain.cutting:
                raise
            # The drain's own cut: answer and record the request instead of dropping it.
            task.uncancel()
            exchange.cut = True
            cut = ShutdownCut(forwarded=exchange.forwarded, grace_seconds=self._drain.grace)
            response = self._problem_response(cut, exchange, path)
        except Exception as exc:
            response = self._problem_response(
                ProxyError(
                    f"unexpected {type(exc).__name__} in the proxy; the request was not completed"
                ),
                exchange,
                path,
            )
            detail = scrub(mask_text(str(exc)[:300]), exchange.secrets)
            self._audit.write(
                "error",
                "proxy_exception",
                {"request_id": request_id, "exception": type(exc).__name__, "detail": detail},
            )
        finally:
            self._metrics.in_flight.dec()
            self._drain.leave(task)
        response.headers[REQUEST_ID_HEADER] = request_id
        self._record(exchange, response, path, query)
        return response

    async def _process(
        self, request: web.Request, exchange: Exchange, raw_target: str, path: str, query: str
    ) -> web.StreamResponse:
        if not raw_target.startswith("/") or request.method == "CONNECT":
            raise BadRequest(
                "only origin-form targets (/path?query) are proxied,"
                " and only to the configured Vipps host"
            )
        raw_headers = _decode_headers(request.raw_headers)
        exchange.secrets = _credentials(raw_headers)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise BodyTooLarge(
                f"the body is larger than the limit of {request.client_max_size} bytes"
                " (VIPPS_PROXY_MAX_BODY_BYTES)"
            ) from None
        except (ConnectionError, web.RequestPayloadError) as exc:
            if request.transport is None or request.transport.is_closing():
                raise ClientClosed(
                    "the client closed the connection before sending the whole body"
                ) from None
            raise BadRequest(f"the request body could not be read: {type(exc).__name__}") from None
        headers = Headers(raw_headers)
        encoding = headers.get("Content-Encoding", "")
        judged = body
        if (
            body
            and encoding
            and encoding.lower() != "identity"
            and _catalogued(request.method, path)
        ):
            # The rules judge the decoded body; the bytes as sent are what is forwarded.
            judged = decode_body(body, encoding, self._max_body)
        audited = audited_request(request.method, path, headers, judged, query)
        exchange.operation = audited.operation
        if self._shared is not None and audited.operation is not UNKNOWN:
            # Judged on the payment's shared state; counted in it if it is to be forwarded.
            verdict = await self._shared.admit(
                audited, exchange.request_id, self._engine.evaluate, self._payments.record_forwarded
            )
        else:
            verdict = self._engine.evaluate(audited)
        exchange.verdict = verdict
        if verdict.blocked:
            return self._block_response(audited, verdict, exchange)
        return await self._forward(audited, verdict, exchange, raw_target, raw_headers, body)

    def _block_response(
        self, audited: AuditedRequest, verdict: Verdict, exchange: Exchange
    ) -> web.Response:
        blocking = [d.finding for d in verdict.decisions if d.outcome is Outcome.BLOCKED]
        if verdict.fail_closed:
            failed = ", ".join(f.rule for f in verdict.failures)
            error = ProxyError(
                f"policy rule {failed} failed to evaluate, so the request was not sent to Vipps"
                " (fail-closed; VIPPS_PROXY_POLICY_FAIL_OPEN=true forwards in this case)"
            )
            return self._problem_response(error, exchange, audited.path)
        document: ErrorDocument = render_block(
            audited.operation, blocking, instance=audited.path, trace_id=exchange.request_id
        )
        response = _json_response(
            document.status, document.content_type, orjson.dumps(document.body)
        )
        exchange.logged_block = render_block(
            audited.operation,
            [_masked(f) for f in blocking],
            instance=mask_text(audited.path),
            trace_id=exchange.request_id,
        )
        response.headers[FINDINGS_HEADER] = ",".join(verdict.rule_codes)
        waits = [f.retry_after for f in blocking if f.retry_after is not None]
        if waits:
            response.headers["Retry-After"] = str(max(1, math.ceil(max(waits))))
        return response

    async def _forward(
        self,
        audited: AuditedRequest,
        verdict: Verdict,
        exchange: Exchange,
        raw_target: str,
        raw_headers: list[tuple[str, str]],
        sent_body: bytes,
    ) -> web.Response:
        if verdict.body is None:
            body = sent_body
        elif sent_body is audited.body:
            body = verdict.body
        else:
            # A repair of a compressed body is sent compressed again, in the same coding.
            body = encode_body(verdict.body, audited.headers.get("Content-Encoding") or "")
        catalogued = audited.operation is not UNKNOWN
        if catalogued and self._shared is None:
            self._payments.record_forwarded(audited)
        sent = time.perf_counter()
        exchange.forwarded = True
        try:
            answer = await self._upstream.send(
                audited.method, raw_target, end_to_end(raw_headers), body
            )
        except asyncio.CancelledError:
            if catalogued:
                # Cut before Vipps answered: as after a timeout, assume it may have arrived.
                self._payments.observe(audited, None)
            raise
        except UpstreamError as error:
            exchange.upstream_reason = error.reason
            exchange.upstream_seconds = time.perf_counter() - sent
            if catalogued:
                # No answer: the payment-level state stays conservative about this request.
                await self._observe(audited, exchange, None)
            raise
        exchange.upstream_seconds = time.perf_counter() - sent
        parsed = _parse_json(answer) if catalogued or answer.status >= 400 else None
        if answer.status >= 400:
            exchange.vipps_error_code = vipps_error_code(parsed)
            exchange.upstream_trace_id = vipps_trace_id(parsed)
        if catalogued and self._shared is None:
            self._learn(audited, answer, parsed, exchange)
        elif catalogued:
            learnt = await self._observe(
                audited, exchange, answer.status, parsed, _retry_after(answer)
            )
            self._learn(audited, answer, parsed, exchange, learnt)
        response = web.Response(status=answer.status, reason=answer.reason, body=answer.body)
        response.headers.clear()
        response.headers.extend(CIMultiDict(answer.headers))
        if verdict.decisions:
            response.headers[FINDINGS_HEADER] = ",".join(verdict.rule_codes)
        return response

    async def _observe(
        self,
        audited: AuditedRequest,
        exchange: Exchange,
        status: int | None,
        parsed: JsonValue = None,
        retry_after: str | None = None,
    ) -> ObserveResult:
        """The payment audit learns from an answer (None: none came), on the shared state if any."""

        def observe() -> ObserveResult:
            return self._payments.observe(audited, status, parsed, retry_after=retry_after)

        if self._shared is None:
            return observe()
        return await self._shared.learn(audited, parsed, exchange.request_id, observe)

    def _learn(
        self,
        audited: AuditedRequest,
        answer: UpstreamResponse,
        parsed: JsonValue,
        exchange: Exchange,
        result: ObserveResult | None = None,
    ) -> None:
        """Let the payment-level audit learn from Vipps' answer; count retries and 429s.

        `result` is what the shared state already learnt; None learns it here, in-process.
        """
        retry_after = _retry_after(answer)
        if result is None:
            result = self._payments.observe(audited, answer.status, parsed, retry_after=retry_after)
        op = audited.operation
        if result.retry:
            self._metrics.idempotent_retries.labels(op.api, op.name).inc()
        if result.upstream_rate_limited:
            self._metrics.upstream_rate_limited.labels(op.api, op.name).inc()
            exchange.retry_after = retry_after

    def _problem_response(self, error: ProxyError, exchange: Exchange, path: str) -> web.Response:
        if isinstance(error, UpstreamError):
            exchange.upstream_reason = error.reason
        body = render_problem(error, instance=path, trace_id=exchange.request_id)
        return _json_response(error.status, "application/problem+json", body)

    def _record(
        self, exchange: Exchange, response: web.StreamResponse, path: str, query: str
    ) -> None:
        """Count the finished request; build its audit record only if a reader wants it."""
        status = response.status
        outcome = _outcome(exchange, status)
        verdict = exchange.verdict
        facts = RequestFacts(
            exchange.request_id,
            exchange.method,
            exchange.operation.api,
            exchange.operation.name,
            status,
            outcome,
            time.perf_counter() - exchange.started,
            path,
            query,
            verdict,
            graded_outcome(verdict, outcome, status),
            exchange.upstream_seconds,
            exchange.upstream_reason,
            exchange.upstream_trace_id,
            exchange.vipps_error_code,
            exchange.retry_after,
            exchange.secrets,
        )
        self._metrics.count_request(facts)
        level = request_level(facts)
        if not self._audit.enabled(level, problem=is_problem(facts)):
            return
        record = request_record(facts, _error_answer(exchange, response), self._log_body_max)
        self._audit.write(level, "request", record)
