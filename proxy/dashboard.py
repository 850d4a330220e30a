"""The error dashboard: what Vipps' retired API Dashboard showed, served from the admin port.

`ErrorBoard` observes the audit log (records arrive already redacted) and keeps, in memory,
the latest error and finding records and a summary per kind of problem: one group per
(API, operation, status, Vipps error code or rule) with a count, first and last seen, and
one example body. `install_dashboard` adds `GET /dashboard` (the page) and
`GET /dashboard/data` (the JSON the page polls) to the admin application. It also grades the
rules by Vipps' answers to what they doubted (`proxy.grading`): per rule, how often Vipps
accepted a `would_block` request ("contradicted") or rejected it ("confirmed").

Memory is bounded: at most `max_entries` entries and `max_groups` groups. When a new kind of
problem arrives and the groups are full, the group seen longest ago is folded into one
`other` tally, so a problem that starts today always gets its own row.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from policies.core.redaction import mask_text
from proxy.audit import AuditLog, Record
from proxy.dashboard_page import CONTENT_SECURITY_POLICY, PAGE
from proxy.grading import RuleGrades

Clock = Callable[[], datetime]

DEFAULT_MAX_GROUPS = 100
_CODE_MAX = 64
# Most severe first: a finding's rule names the group by the worst thing done about it.
_ACTION_ORDER = ("blocked", "would_block", "would_repair", "repaired", "reported")
_OBSERVED_LEVELS = frozenset({"warning", "error"})
# Totals shown in the page header, counted since start, whatever the buffer still holds.
TOTALS = ("recorded", "vipps_errors", "blocked", "would_block", "upstream_errors", "events")
_KIND_TOTALS = {
    "vipps_error": "vipps_errors",
    "blocked": "blocked",
    "upstream_error": "upstream_errors",
    "event": "events",
}


def utc_now() -> datetime:
    """The current time in UTC (the board's default clock)."""
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and a Z, as in the audit log."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def is_board_record(level: str, event: str, record: Mapping[str, Any]) -> bool:
    """Requests with status 400 or more, with findings or rule errors; other warnings/errors."""
    if event == "request":
        status = record.get("status")
        return (
            (isinstance(status, int) and status >= 400)
            or bool(record.get("findings"))
            or bool(record.get("rule_errors"))
        )
    return level in _OBSERVED_LEVELS


def _actions(record: Mapping[str, Any]) -> set[str]:
    return {str(f.get("action")) for f in record.get("findings") or () if isinstance(f, Mapping)}


def _worst_rule(record: Mapping[str, Any]) -> str | None:
    findings = [f for f in record.get("findings") or () if isinstance(f, Mapping)]
    for action in _ACTION_ORDER:
        for finding in findings:
            if finding.get("action") == action:
                return str(finding.get("rule"))
    if findings:
        return str(findings[0].get("rule"))
    failures = [f for f in record.get("rule_errors") or () if isinstance(f, Mapping)]
    return str(failures[0].get("rule")) if failures else None


def classify(event: str, record: Mapping[str, Any]) -> tuple[str, str]:
    """The kind of problem (for the badge) and the code that names its group."""
    if event != "request":
        return "event", str(record.get("rule") or event)
    outcome = record.get("outcome")
    status = record.get("status")
    rule = _worst_rule(record)
    if outcome == "upstream_error":
        return "upstream_error", str(record.get("upstream_error") or "upstream_error")
    if outcome == "shutdown":
        # Cut by the end of the shutdown grace: no answer from Vipps either.
        return "upstream_error", "shutdown"
    if outcome == "blocked":
        return "blocked", rule or "proxy"
    if isinstance(status, int) and status >= 400:
        code = record.get("vipps_error_code")
        return "vipps_error", str(code) if code is not None else (rule or "none")
    actions = _actions(record)
    for kind in ("would_block", "would_repair"):
        if kind in actions:
            return kind, rule or "none"
    return "finding", rule or "none"


@dataclass(frozen=True, slots=True)
class GroupKey:
    """What makes two records the same problem."""

    api: str
    operation: str
    status: int | None
    code: str

    @property
    def text(self) -> str:
        """A stable string form, the group's identity in the JSON view and the page."""
        return f"{self.api}|{self.operation}|{self.status or '-'}|{self.code}"


@dataclass(slots=True)
class Group:
    """One kind of problem: how often, since when, until when, and the latest example."""

    key: GroupKey
    kind: str
    first_seen: str
    last_seen: str
    example: Record
    count: int = 0

    def view(self) -> Record:
        """The JSON form."""
        return {
            "key": self.key.text,
            "api": self.key.api,
            "operation": self.key.operation,
            "status": self.key.status,
            "code": self.key.code,
            "kind": self.kind,
            "count": self.count,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "example": self.example,
        }


@dataclass(slots=True)
class Overflow:
    """The tally of groups folded away to stay within the cap."""

    count: int = 0
    groups: int = 0
    first_seen: str | None = None
    last_seen: str | None = None


class ErrorBoard:
    """The last `max_entries` problem records and up to `max_groups` groups of them."""

    def __init__(
        self, max_entries: int = 500, max_groups: int = DEFAULT_MAX_GROUPS, clock: Clock = utc_now
    ) -> None:
        if max_entries < 1 or max_groups < 1:
            raise ValueError("max_entries and max_groups must be at least 1")
        self.max_entries = max_entries
        self.max_groups = max_groups
        self._clock = clock
        self.started = iso_utc(clock())
        self.version = 0
        self.totals = dict.fromkeys(TOTALS, 0)
        self._entries: deque[Record] = deque(maxlen=max_entries)
        # Ordered by last seen: an update moves its group to the end, eviction takes the front.
        self._groups: OrderedDict[GroupKey, Group] = OrderedDict()
        self._other = Overflow()
        self.grades = RuleGrades(max_groups)

    def observe(self, level: str, event: str, record: Record) -> None:
        """The audit-log observer: keep the record if it belongs on the board."""
        if not is_board_record(level, event, record):
            return
        now = iso_utc(self._clock())
        if event == "request":
            self.grades.observe(now, record)
        kind, code = classify(event, record)
        status = record.get("status")
        key = GroupKey(
            str(record.get("api") or "proxy"),
            str(record.get("operation") or event),
            status if isinstance(status, int) else None,
            mask_text(code)[:_CODE_MAX],
        )
        self._count(kind, record)
        self.version += 1
        self._entries.append(
            {
                "ts": now,
                "level": level,
                "event": event,
                "kind": kind,
                "group": key.text,
                "code": key.code,
                # The example body lives with the group; entries stay small.
                **{k: v for k, v in record.items() if k != "error_body"},
            }
        )
        example = {"ts": now, "level": level, "event": event, **record}
        group = self._groups.get(key)
        if group is None:
            if len(self._groups) >= self.max_groups:
                self._fold(self._groups.popitem(last=False)[1])
            group = self._groups[key] = Group(key, kind, now, now, example)
        else:
            self._groups.move_to_end(key)
            group.kind, group.last_seen, group.example = kind, now, example
        group.count += 1

    def _count(self, kind: str, record: Mapping[str, Any]) -> None:
        self.totals["recorded"] += 1
        total = _KIND_TOTALS.get(kind)
        if total is not None:
            self.totals[total] += 1
        # A request Vipps refused may also carry a would-block finding: count both.
        if "would_block" in _actions(record):
            self.totals["would_block"] += 1

    def _fold(self, group: Group) -> None:
        other = self._other
        other.count += group.count
        other.groups += 1
        other.first_seen = min(filter(None, (other.first_seen, group.first_seen)))
        other.last_seen = max(filter(None, (other.last_seen, group.last_seen)))

    @property
    def groups(self) -> list[Group]:
        """Groups, most recently seen first."""
        return list(reversed(self._groups.values()))

    @property
    def entries(self) -> list[Record]:
        """Entries, newest first."""
        return list(reversed(self._entries))

    def view(self) -> Record:
        """The JSON view the page polls."""
        other = self._other
        return {
            "version": self.version,
            "generated_at": iso_utc(self._clock()),
            "started": self.started,
            "max_entries": self.max_entries,
            "max_groups": self.max_groups,
            "totals": dict(self.totals),
            "groups": [g.view() for g in self.groups],
            "grades": self.grades.view(),
            "other": (
                {
                    "count": other.count,
                    "groups": other.groups,
                    "first_seen": other.first_seen,
                    "last_seen": other.last_seen,
                }
                if other.groups
                else None
            ),
            "entries": self.entries,
        }


BOARD = web.AppKey("dashboard", ErrorBoard)

_COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


async def _page(request: web.Request) -> web.Response:
    headers = {
        **_COMMON_HEADERS,
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "Cache-Control": "no-store",
    }
    return web.Response(text=PAGE, content_type="text/html", charset="utf-8", headers=headers)


async def _data(request: web.Request) -> web.Response:
    board = request.app[BOARD]
    # The page polls every two seconds; an unchanged board costs a 304 and no JSON.
    etag = f'"{board.started}/{board.version}"'
    headers = {**_COMMON_HEADERS, "Cache-Control": "no-cache", "ETag": etag}
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    body = orjson.dumps(board.view(), default=str)
    return web.Response(body=body, content_type="application/json", headers=headers)


def install_dashboard(
    app: web.Application, audit: AuditLog, max_entries: int, *, clock: Clock = utc_now
) -> ErrorBoard:
    """Add the dashboard routes to `app`; the board observes `audit` while `app` runs."""
    board = ErrorBoard(max_entries, min(DEFAULT_MAX_GROUPS, max_entries), clock)
    app[BOARD] = board
    app.router.add_get("/dashboard", _page)
    app.router.add_get("/dashboard/data", _data)

    observer = board.observe

    async def observing(app: web.Application) -> AsyncIterator[None]:
        audit.observers.append(observer)
        yield
        audit.observers.remove(observer)

    app.cleanup_ctx.append(observing)
    return board
