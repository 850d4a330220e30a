"""The audit log: one JSON object per line (orjson), ISO-8601 UTC timestamps, always redacted.

One record per request carries everything known about it: operation, status, outcome,
durations, the policy findings, and for every response of status 400 or more the error body
(parsed JSON when it parses, else text), redacted and capped. The sink is injectable so tests
read records instead of stdout. The record is built from the request's `RequestFacts` by pure
functions: `request_level` picks its level, `is_problem` says whether the dashboard keeps it,
and `request_record` builds it, redacted.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import IO, Any

import orjson

from policies.core.jsonbody import JsonValue
from policies.core.model import Decision, Outcome, Verdict
from policies.core.redaction import mask_text, redact_json, redact_query, scrub_record

Sink = Callable[[bytes], None]
Record = dict[str, Any]

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


class ServerLogHandler(logging.Handler):
    """Turns aiohttp's own log records into audit lines naming only the error's class.

    aiohttp logs every request its HTTP parser refuses with an excerpt of the raw bytes, which
    can hold a token or a phone number; the excerpt must never reach stderr or the log.
    """

    def __init__(self, audit: AuditLog) -> None:
        super().__init__(logging.WARNING)
        self._audit = audit

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else None
        self._audit.write(
            "warning", "http_server_error", {"logger": record.name, "error": error or "unknown"}
        )


def quiet_server_logs(audit: AuditLog) -> None:
    """Route aiohttp's and asyncio's loggers into redacted audit lines (none to stderr)."""
    for name in ("aiohttp", "asyncio"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [ServerLogHandler(audit)]
        logger.propagate = False


def stdout_sink(line: bytes) -> None:
    """Write one line to standard output (the container log)."""
    sys.stdout.buffer.write(line)
    sys.stdout.buffer.flush()


class BatchedSink:
    """Lines written during one event-loop turn go out in one write and one flush.

    A flush per line is a system call per request; here the first line of a turn schedules
    the flush with `call_soon`, which runs before the loop next waits for I/O, so a line is
    never held while the process idles. Without a running loop (start-up, after the loop) a
    line is written at once, and whatever is pending is flushed at interpreter exit.
    """

    def __init__(self, stream: IO[bytes] | None = None) -> None:
        self._stream = stream
        self._pending: list[bytes] = []
        self._scheduled = False
        atexit.register(self.flush)

    def __call__(self, line: bytes) -> None:
        self._pending.append(line)
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._scheduled = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write and flush every pending line now."""
        self._scheduled = False
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        stream = self._stream if self._stream is not None else sys.stdout.buffer
        stream.write(data)
        stream.flush()


class _Timestamps:
    """ISO-8601 UTC with milliseconds; the date and time of day are formatted once a second."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def now(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            moment = datetime.fromtimestamp(second, UTC)
            self._prefix, self._second = moment.strftime("%Y-%m-%dT%H:%M:%S"), second
        return f"{self._prefix}.{int((now - second) * 1000):03d}Z"


def _default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value).__name__)


def level_for_status(status: int) -> str:
    """Successful requests are info; 4xx warning; 5xx error."""
    if status >= 500:
        return "error"
    if status >= 400:
        return "warning"
    return "info"


def error_body(body: bytes, content_type: str, max_bytes: int, *, masked: bool = False) -> Record:
    """The loggable form of an error body: redacted JSON when it parses, else masked text.

    `masked`: the proxy's own answer, built from already-masked values; redacting its text
    again would hide its own words (`Ocp-Apim-Subscription-Key: required header is missing`).
    """
    if not body:
        return {"empty": True}
    try:
        parsed: JsonValue = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = mask_text(body[:max_bytes].decode("utf-8", errors="replace"))
        return {"text": text, "truncated": len(body) > max_bytes, "content_type": content_type}
    redacted = parsed if masked else redact_json(parsed)
    encoded = orjson.dumps(redacted, default=_default)
    if len(encoded) <= max_bytes:
        return {"json": redacted, "content_type": content_type}
    # Cut the already-redacted text, so truncation can never expose what redaction hid.
    return {
        "text": encoded[:max_bytes].decode("utf-8", errors="ignore"),
        "truncated": True,
        "content_type": content_type,
    }


def finding_records(decisions: tuple[Decision, ...]) -> list[Record]:
    """One entry per finding: rule and condition, where, what was done, the masked value."""
    return [
        {
            "rule": d.finding.rule,
            "condition": d.finding.condition,
            "action": d.outcome.value,
            "source": d.finding.source.value,
            "field": d.finding.field,
            "problem": d.finding.problem,
            "expected": d.finding.expected,
            "value": mask_text(d.finding.value) if d.finding.value is not None else None,
        }
        for d in decisions
    ]


@dataclass(slots=True)
class RequestFacts:
    """What is known about one finished request: the metrics' labels and the record's fields.

    Everything here is as the request passed, unredacted (the path, the query, the request's own
    credentials in `secrets`); `request_record` is where the redaction happens. Built once per
    request and only read after; not `frozen`, whose `__init__` costs ten times as much.
    """

    request_id: str
    method: str
    api: str
    operation: str
    status: int
    # What the proxy did: forwarded, blocked, upstream_error, client_closed or shutdown.
    outcome: str
    seconds: float
    path: str
    query: str = ""
    verdict: Verdict | None = None
    # Vipps' answer to a forwarded request that had findings (`proxy.grading.graded_outcome`).
    graded: str | None = None
    upstream_seconds: float | None = None
    upstream_reason: str | None = None
    upstream_trace_id: str | None = None
    vipps_error_code: str | None = None
    retry_after: str | None = None
    secrets: tuple[str, ...] = ()


@dataclass(slots=True)
class ErrorAnswer:
    """The error answer a request got, as the record quotes it (redacted and capped).

    `masked`: the proxy's own answer, built from already-masked values (see `error_body`).
    """

    body: bytes
    content_type: str
    masked: bool = False


def request_level(facts: RequestFacts) -> str:
    """The level of a request record: by status, raised for a rule error (error) or for a
    finding the proxy did more than report (warning) on a request answered below 400."""
    level = level_for_status(facts.status)
    verdict = facts.verdict
    if level != "info" or verdict is None:
        return level
    if verdict.failures:
        return "error"
    # A forwarded request with findings is worth reading even when Vipps said yes.
    if verdict.decisions and any(d.outcome is not Outcome.REPORTED for d in verdict.decisions):
        return "warning"
    return level


def is_problem(facts: RequestFacts) -> bool:
    """Whether the record is one the dashboard keeps: answered 400 or more, or with findings
    or rule errors."""
    verdict = facts.verdict
    return facts.status >= 400 or (
        verdict is not None and bool(verdict.decisions or verdict.failures)
    )


def request_record(
    facts: RequestFacts, answer: ErrorAnswer | None = None, body_max: int = 0
) -> Record:
    """The audit record of one request, redacted: the path, query, Vipps error code, findings
    and rule errors masked, the error answer (`answer`, capped at `body_max` bytes) redacted,
    and the request's own credentials scrubbed from what can quote them verbatim."""
    record: Record = {
        "request_id": facts.request_id,
        "method": facts.method,
        "path": mask_text(facts.path),
        "api": facts.api,
        "operation": facts.operation,
        "status": facts.status,
        "outcome": facts.outcome,
        "duration_ms": round(facts.seconds * 1000, 3),
    }
    if facts.query:
        record["query"] = redact_query(facts.query)
    if facts.upstream_seconds is not None:
        record["upstream_ms"] = round(facts.upstream_seconds * 1000, 3)
    if facts.upstream_reason is not None:
        record["upstream_error"] = facts.upstream_reason
    if facts.upstream_trace_id is not None:
        record["upstream_trace_id"] = facts.upstream_trace_id
    if facts.vipps_error_code is not None:
        record["vipps_error_code"] = mask_text(facts.vipps_error_code[:64])
    if facts.retry_after is not None:
        record["retry_after"] = facts.retry_after[:64]
    verdict = facts.verdict
    if verdict is not None and (verdict.decisions or verdict.failures):
        record["findings"] = finding_records(verdict.decisions)
        if facts.graded is not None:
            record["vipps_outcome"] = facts.graded
        if verdict.repaired:
            record["repaired"] = True
        if verdict.failures:
            record["rule_errors"] = [
                {"rule": f.rule, "error": mask_text(f.error)} for f in verdict.failures
            ]
    if answer is not None:
        record["error_body"] = error_body(
            answer.body, answer.content_type, body_max, masked=answer.masked
        )
    if facts.secrets and ("error_body" in record or "rule_errors" in record):
        scrubbed: Record = scrub_record(record, facts.secrets)
        return scrubbed
    return record


Observer = Callable[[str, str, Record], None]


class AuditLog:
    """Writes audit records at or above the configured level to a sink.

    Observers (the error dashboard) see every record whatever the log level, already redacted.
    """

    def __init__(self, sink: Sink = stdout_sink, level: str = "info") -> None:
        self._sink = sink
        self._threshold = LEVELS[level]
        self.observers: list[Observer] = []
        self._timestamps = _Timestamps()

    def enabled(self, level: str, *, problem: bool = True) -> bool:
        """Whether a record of `level` would be written or observed (so worth building).

        Observers (the dashboard) keep only problem records: a request answered 400 or more,
        with findings or rule errors. A caller that knows its record is none passes
        `problem=False`, so a clean request below the log level costs no record at all.
        """
        return (problem and bool(self.observers)) or LEVELS[level] >= self._threshold

    def flush(self) -> None:
        """Write out any lines the sink holds (at drain and exit)."""
        flush = getattr(self._sink, "flush", None)
        if callable(flush):
            flush()

    def write(self, level: str, event: str, fields: Mapping[str, Any]) -> None:
        """Emit one record (a single orjson dump) if its level passes the threshold."""
        for observe in self.observers:
            observe(level, event, dict(fields))
        if LEVELS[level] < self._threshold:
            return
        record = {
            "ts": self._timestamps.now(),
            "level": level,
            "event": event,
            **fields,
        }
        self._sink(orjson.dumps(record, default=_default, option=orjson.OPT_APPEND_NEWLINE))
