"""The error dashboard: the board's grouping and bounds, and its pages on the admin port."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from policies.catalogue.operations import Operation
from policies.core.engine import PolicyMode
from policies.core.model import Action, AuditedRequest, Condition, Finding, Source
from proxy.app import create_admin_app
from proxy.dashboard import BOARD, ErrorBoard, classify, is_board_record
from proxy.dashboard_page import PAGE, SCRIPT
from tests.conftest import AiohttpClient, Proxy, ProxyFactory
from tests.samples import EPAYMENT_CREATE, SUBSCRIPTION_KEY, TOKEN
from tests.standin import EPAYMENT_PROBLEM, Reply

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@dataclass
class Ticks:
    """A clock that advances one second per reading."""

    now: datetime = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def request(status: int, **fields: Any) -> dict[str, Any]:
    """A "request" audit record as the handler builds it."""
    record: dict[str, Any] = {
        "request_id": "r1",
        "method": "POST",
        "path": "/epayment/v1/payments",
        "api": "epayment",
        "operation": "create_payment",
        "status": status,
        "outcome": "forwarded",
        "duration_ms": 12.5,
    }
    return record | fields


def finding(rule: str, action: str) -> dict[str, Any]:
    return {
        "rule": rule, "action": action, "source": "body", "field": "amount.value",
        "problem": "is wrong", "expected": "right", "value": "1",
    }  # fmt: skip


def vipps_error(code: str, status: int = 400, **fields: Any) -> dict[str, Any]:
    return request(status, vipps_error_code=code, error_body={"json": {"code": code}}, **fields)


def observe(board: ErrorBoard, *records: dict[str, Any], level: str = "warning") -> None:
    for record in records:
        board.observe(level, "request", record)


# -- which records go on the board ------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "event", "record", "kept"),
    [
        pytest.param("info", "request", request(200), False, id="success"),
        pytest.param("info", "request", request(204, findings=[]), False, id="no-findings"),
        pytest.param("warning", "request", request(404), True, id="vipps-4xx"),
        pytest.param("error", "request", request(503), True, id="vipps-5xx"),
        pytest.param(
            "info", "request", request(200, findings=[finding("a.b", "reported")]), True,
            id="reported-finding-on-success",
        ),
        pytest.param(
            "info", "request", request(200, rule_errors=[{"rule": "x", "error": "E"}]), True,
            id="rule-error-fail-open",
        ),
        pytest.param("info", "started", {"listen": "x"}, False, id="info-event"),
        pytest.param("warning", "payment_unpolled", {"api": "epayment"}, True, id="warning-event"),
        pytest.param("error", "proxy_exception", {"exception": "E"}, True, id="error-event"),
    ],
)  # fmt: skip
def test_board_keeps_errors_findings_and_warning_events(
    level: str, event: str, record: dict[str, Any], kept: bool
) -> None:
    """Requests of status 400+ or with findings, and warning/error events, are kept; no others."""
    assert is_board_record(level, event, record) is kept
    board = ErrorBoard()
    board.observe(level, event, record)
    assert len(board.entries) == int(kept)


@pytest.mark.parametrize(
    ("record", "kind", "code"),
    [
        pytest.param(vipps_error("6080"), "vipps_error", "6080", id="vipps-code"),
        pytest.param(request(500), "vipps_error", "none", id="vipps-no-code"),
        pytest.param(
            request(400, outcome="blocked",
                    findings=[finding("phone.format", "reported"), finding("amount.x", "blocked")]),
            "blocked", "amount.x", id="blocked-names-the-blocking-rule",
        ),
        pytest.param(request(500, outcome="blocked"), "blocked", "proxy", id="proxy-refusal"),
        pytest.param(
            request(502, outcome="upstream_error", upstream_error="connect"),
            "upstream_error", "connect", id="upstream",
        ),
        pytest.param(
            request(200, findings=[finding("amount.x", "would_block")]),
            "would_block", "amount.x", id="would-block",
        ),
        pytest.param(
            request(200, findings=[finding("a.b", "repaired")]), "finding", "a.b", id="repaired"
        ),
        pytest.param(
            vipps_error("81", findings=[finding("amount.x", "would_block")]),
            "vipps_error", "81", id="vipps-error-wins-over-finding",
        ),
    ],
)  # fmt: skip
def test_classify_names_the_group_by_error_code_or_rule(
    record: dict[str, Any], kind: str, code: str
) -> None:
    """The group code is the Vipps error code, the upstream failure, or the worst finding's rule."""
    assert classify("request", record) == (kind, code)


# -- grouping, ordering, timestamps -----------------------------------------------------------


def test_same_problem_is_one_group_with_a_count() -> None:
    """Records alike in API, operation, status and code share a group; the count adds up."""
    board = ErrorBoard(clock=Ticks())
    observe(board, vipps_error("6080"), vipps_error("6080"), vipps_error("6080", status=409))
    observe(board, vipps_error("6080", operation="capture_payment"), vipps_error("4040"))
    counts = {(g.key.operation, g.key.status, g.key.code): g.count for g in board.groups}
    assert counts == {
        ("create_payment", 400, "6080"): 2,
        ("create_payment", 409, "6080"): 1,
        ("capture_payment", 400, "6080"): 1,
        ("create_payment", 400, "4040"): 1,
    }


def test_groups_and_entries_are_newest_first_with_iso_utc_times() -> None:
    """Groups sort by last seen, entries by time; first/last seen are ISO-8601 UTC with a Z."""
    board = ErrorBoard(clock=Ticks())  # the board's start takes 12:00:01
    observe(board, vipps_error("A"), vipps_error("B"), vipps_error("A"))  # :02 :03 :04
    view = board.view()
    assert [g["code"] for g in view["groups"]] == ["A", "B"]
    first = view["groups"][0]
    assert (first["first_seen"], first["last_seen"]) == (
        "2024-05-01T12:00:02.000Z",
        "2024-05-01T12:00:04.000Z",
    )
    assert [e["ts"] for e in view["entries"]] == [
        "2024-05-01T12:00:04.000Z",
        "2024-05-01T12:00:03.000Z",
        "2024-05-01T12:00:02.000Z",
    ]
    assert view["started"] == "2024-05-01T12:00:01.000Z"
    assert all(ISO_UTC.fullmatch(view[k]) for k in ("started", "generated_at"))


def test_times_from_a_non_utc_clock_are_shown_in_utc() -> None:
    """A clock in another zone still gives Z timestamps for the same instant."""
    oslo = timezone(timedelta(hours=2))
    board = ErrorBoard(clock=lambda: datetime(2024, 5, 1, 14, 0, 0, 250_000, tzinfo=oslo))
    observe(board, vipps_error("A"))
    assert board.groups[0].first_seen == "2024-05-01T12:00:00.250Z"


def test_each_group_keeps_the_latest_redacted_example_and_entries_stay_small() -> None:
    """A group's example is its latest record with body; entries leave the body out."""
    board = ErrorBoard(clock=Ticks())
    observe(board, vipps_error("A", request_id="old"), vipps_error("A", request_id="new"))
    (group,) = board.view()["groups"]
    assert group["example"]["request_id"] == "new"
    assert group["example"]["error_body"] == {"json": {"code": "A"}}
    assert all("error_body" not in e for e in board.entries)
    assert board.entries[0]["group"] == group["key"] == "epayment|create_payment|400|A"


def test_warning_events_group_by_rule_or_event_name() -> None:
    """An event that is not a request is grouped by its rule, else its name; fields as example."""
    board = ErrorBoard(clock=Ticks())
    unpolled = {"rule": "polling.never_polled", "api": "epayment", "reference": "order-1"}
    board.observe("warning", "payment_unpolled", unpolled)
    board.observe("warning", "payment_unpolled", unpolled | {"reference": "order-2"})
    board.observe("error", "proxy_exception", {"request_id": "r", "exception": "KeyError()"})
    by_code = {g.key.code: g for g in board.groups}
    assert by_code["polling.never_polled"].key.text == (
        "epayment|payment_unpolled|-|polling.never_polled"
    )
    assert by_code["polling.never_polled"].count == 2
    assert by_code["polling.never_polled"].example["reference"] == "order-2"
    assert by_code["proxy_exception"].key.api == "proxy"
    assert by_code["proxy_exception"].key.operation == "proxy_exception"
    assert by_code["proxy_exception"].example["exception"] == "KeyError()"
    assert board.totals["events"] == 3


def test_totals_count_each_kind_since_start() -> None:
    """The header totals count Vipps errors, blocks, would-blocks and upstream errors."""
    board = ErrorBoard(max_entries=2)
    observe(
        board,
        vipps_error("A"),
        vipps_error("B", findings=[finding("r", "would_block")]),
        request(400, outcome="blocked", findings=[finding("r", "blocked")]),
        request(200, findings=[finding("r", "would_block")]),
        request(504, outcome="upstream_error", upstream_error="timeout"),
    )
    assert board.totals == {
        "recorded": 5,
        "vipps_errors": 2,
        "blocked": 1,
        "would_block": 2,
        "upstream_errors": 1,
        "events": 0,
    }
    assert len(board.entries) == 2  # totals outlive the buffer


# -- bounds -----------------------------------------------------------------------------------


def test_entries_are_a_ring_of_the_last_n() -> None:
    """Past max_entries, the oldest entries are dropped."""
    board = ErrorBoard(max_entries=10)
    observe(board, *(vipps_error("A", request_id=f"r{i}") for i in range(25)))
    assert [e["request_id"] for e in board.entries] == [f"r{i}" for i in range(24, 14, -1)]


def test_groups_are_capped_and_the_least_recent_fold_into_other() -> None:
    """Past max_groups the group seen longest ago folds into "other"; new problems stay visible."""
    board = ErrorBoard(max_entries=100, max_groups=3, clock=Ticks())
    observe(board, vipps_error("A"), vipps_error("A"), vipps_error("B"), vipps_error("C"))
    observe(board, vipps_error("A"))  # A is now the most recent; B the least
    observe(board, vipps_error("D"), vipps_error("E"))
    view = board.view()
    assert [g["code"] for g in view["groups"]] == ["E", "D", "A"]
    assert view["other"] == {
        "count": 2,
        "groups": 2,
        "first_seen": "2024-05-01T12:00:04.000Z",
        "last_seen": "2024-05-01T12:00:05.000Z",
    }
    assert sum(g["count"] for g in view["groups"]) + view["other"]["count"] == 7


def test_many_distinct_problems_keep_memory_bounded() -> None:
    """Thousands of distinct codes leave at most max_entries entries and max_groups groups."""
    board = ErrorBoard(max_entries=50, max_groups=20)
    observe(
        board, *(vipps_error(f"E{i}", path=f"/epayment/v1/payments/r-{i}") for i in range(5000))
    )
    assert len(board.entries) == 50
    assert len(board.groups) == 20
    assert board.view()["other"]["count"] == 4980


def test_overlong_codes_are_cut() -> None:
    """A free-text error code cannot make a group key of unbounded size."""
    board = ErrorBoard()
    observe(board, vipps_error("x" * 10_000))
    assert len(board.groups[0].key.code) == 64


@pytest.mark.parametrize(("entries", "groups"), [(0, 10), (10, 0)])
def test_board_refuses_an_empty_buffer(entries: int, groups: int) -> None:
    """A board with room for nothing is a configuration mistake."""
    with pytest.raises(ValueError, match="at least 1"):
        ErrorBoard(entries, groups)


# -- the page and the JSON through the real proxy and admin app -----------------------------


@dataclass(frozen=True)
class RefusesThirteen:
    """A rule for these tests only: the amount 13 is refused."""

    code: str = "test.thirteen"
    default_action: Action = Action.BLOCK
    can_repair: bool = False
    summary: str = "test rule"
    conditions: tuple[Condition, ...] = ()

    def applies_to(self, operation: Operation) -> bool:
        return operation.api == "epayment"

    def check(self, request: AuditedRequest) -> Iterable[Finding]:
        if request.field(("amount", "value")) == 13:
            yield Finding(self.code, Source.BODY, "amount.value", "is unlucky", "not 13", "13")


THIRTEEN = b'{"amount": {"currency": "NOK", "value": 13}, "reference": "order-123456"}'


@dataclass
class Dashboard:
    """A proxy with the test rule and a client of its admin application."""

    proxy: Proxy
    admin: TestClient[Any, Any]

    async def data(self) -> dict[str, Any]:
        async with self.admin.get("/dashboard/data") as resp:
            assert resp.status == 200
            assert resp.content_type == "application/json"
            data: dict[str, Any] = orjson.loads(await resp.read())
            return data


async def start_dashboard(
    make_proxy: ProxyFactory, aiohttp_client: AiohttpClient, **overrides: Any
) -> Dashboard:
    proxy = await make_proxy(rules=[RefusesThirteen()], **overrides)
    return Dashboard(proxy, await aiohttp_client(create_admin_app(proxy.state)))


@pytest.fixture
async def dashboard(make_proxy: ProxyFactory, aiohttp_client: AiohttpClient) -> Dashboard:
    return await start_dashboard(make_proxy, aiohttp_client, upstream_timeout_seconds=0.2)


async def drive(client: TestClient[Any, Any], method: str, path: str, body: bytes = b"") -> None:
    async with client.request(method, path, data=body) as resp:
        await resp.read()


async def test_vipps_errors_blocks_and_upstream_errors_reach_the_board(
    dashboard: Dashboard,
) -> None:
    """A Vipps 4xx, a blocked request, a 5xx and a timeout each show as their own group."""
    proxy = dashboard.proxy
    proxy.standin.reply(
        Reply(400, EPAYMENT_PROBLEM, {"Content-Type": "application/problem+json"}),
        Reply(400, EPAYMENT_PROBLEM, {"Content-Type": "application/problem+json"}),
        Reply(503, b"<html>busy</html>", {"Content-Type": "text/html"}),
        Reply(200, b"{}", delay=1.0),
    )
    capture = "/epayment/v1/payments/order-123456/capture"
    await drive(proxy.client, "POST", capture, b"{}")
    await drive(proxy.client, "POST", capture, b"{}")
    await drive(proxy.client, "POST", "/epayment/v1/payments", THIRTEEN)
    await drive(proxy.client, "GET", "/epayment/v1/payments/order-123456")
    await drive(proxy.client, "GET", "/epayment/v1/payments/order-123456")
    await drive(proxy.client, "GET", "/epayment/v1/payments/order-123456")  # 200: not shown
    data = await dashboard.data()
    groups = {(g["operation"], g["status"], g["code"]): g for g in data["groups"]}
    assert set(groups) == {
        ("capture_payment", 400, "6080"),
        ("create_payment", 400, "test.thirteen"),
        ("get_payment", 503, "none"),
        ("get_payment", 504, "timeout"),
    }
    vipps = groups["capture_payment", 400, "6080"]
    assert (vipps["count"], vipps["kind"]) == (2, "vipps_error")
    assert vipps["example"]["error_body"]["json"]["title"] == "Cannot capture before reservation"
    assert vipps["example"]["upstream_trace_id"].startswith("00-813b")
    assert ISO_UTC.fullmatch(vipps["first_seen"])
    assert ISO_UTC.fullmatch(vipps["last_seen"])
    blocked = groups["create_payment", 400, "test.thirteen"]
    assert blocked["kind"] == "blocked"
    assert blocked["example"]["findings"][0]["problem"] == "is unlucky"
    assert groups["get_payment", 503, "none"]["example"]["error_body"]["text"] == (
        "<html>busy</html>"
    )
    assert next(g["code"] for g in data["groups"]) == "timeout"  # last seen first
    assert data["totals"] == {
        "recorded": 5, "vipps_errors": 3, "blocked": 1, "would_block": 0,
        "upstream_errors": 1, "events": 0,
    }  # fmt: skip
    assert [e["status"] for e in data["entries"]] == [504, 503, 400, 400, 400]


async def test_report_mode_findings_show_as_would_block(
    make_proxy: ProxyFactory, aiohttp_client: AiohttpClient
) -> None:
    """In report mode the request is forwarded and the board counts it as would-block."""
    dashboard = await start_dashboard(make_proxy, aiohttp_client, mode=PolicyMode.REPORT)
    await drive(dashboard.proxy.client, "POST", "/epayment/v1/payments", THIRTEEN)
    data = await dashboard.data()
    (group,) = data["groups"]
    assert (group["kind"], group["status"], group["code"]) == ("would_block", 200, "test.thirteen")
    assert data["totals"]["would_block"] == 1


async def test_the_board_sees_records_below_the_log_level(
    make_proxy: ProxyFactory, aiohttp_client: AiohttpClient
) -> None:
    """With the log at "error", a 400 is not logged but still shows on the board."""
    dashboard = await start_dashboard(make_proxy, aiohttp_client, log_level="error")
    dashboard.proxy.standin.reply(Reply(400, EPAYMENT_PROBLEM))
    await drive(dashboard.proxy.client, "GET", "/epayment/v1/payments/order-1")
    assert dashboard.proxy.log.lines == []
    assert (await dashboard.data())["groups"][0]["code"] == "6080"


async def test_unchanged_data_answers_304(dashboard: Dashboard) -> None:
    """The page's poll revalidates with the ETag and gets 304 until something new is recorded."""
    async with dashboard.admin.get("/dashboard/data") as resp:
        etag = resp.headers["ETag"]
        assert resp.headers["Cache-Control"] == "no-cache"
    async with dashboard.admin.get("/dashboard/data", headers={"If-None-Match": etag}) as resp:
        assert resp.status == 304
    await drive(dashboard.proxy.client, "POST", "/epayment/v1/payments", THIRTEEN)
    async with dashboard.admin.get("/dashboard/data", headers={"If-None-Match": etag}) as resp:
        assert resp.status == 200
        assert resp.headers["ETag"] != etag


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


async def test_page_is_self_contained_behind_a_strict_policy(dashboard: Dashboard) -> None:
    """The page loads nothing external; its CSP allows only its own inline style and script."""
    async with dashboard.admin.get("/dashboard") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        page = await resp.text()
        csp = resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert page == PAGE
    (script,) = re.findall(r"<script>(.*?)</script>", page, flags=re.DOTALL)
    (style,) = re.findall(r"<style>(.*?)</style>", page, flags=re.DOTALL)
    directives = dict(d.split(" ", 1) for d in csp.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == _hash(script)
    assert directives["style-src"] == _hash(style)
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp
    assert page.count("<script>") == 1
    assert page.count("<style>") == 1
    assert not re.search(r"(src|href)=\"?(https?:)?//", page)
    assert "dashboard/data" in script


@pytest.mark.parametrize("sink", ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"])
def test_page_script_never_parses_values_as_html(sink: str) -> None:
    """The script builds the DOM with textContent only; no HTML sink appears in it."""
    assert sink not in SCRIPT


async def test_disabled_dashboard_is_404_and_observes_nothing(
    make_proxy: ProxyFactory, aiohttp_client: AiohttpClient
) -> None:
    """With VIPPS_PROXY_DASHBOARD_ENABLED=false both routes are 404 and no observer is added."""
    dashboard = await start_dashboard(make_proxy, aiohttp_client, dashboard_enabled=False)
    for path in ("/dashboard", "/dashboard/data"):
        async with dashboard.admin.get(path) as resp:
            assert resp.status == 404
    assert dashboard.proxy.state.audit.observers == []
    assert BOARD not in dashboard.admin.app
    async with dashboard.admin.get("/metrics") as resp:
        assert resp.status == 200


async def test_board_observes_only_while_the_admin_app_runs(
    make_proxy: ProxyFactory, aiohttp_client: AiohttpClient
) -> None:
    """The observer is added when the admin app starts and removed when it stops."""
    dashboard = await start_dashboard(make_proxy, aiohttp_client, dashboard_max_entries=10)
    audit = dashboard.proxy.state.audit
    board = dashboard.admin.app[BOARD]
    assert audit.observers == [board.observe]
    assert board.max_entries == 10
    await dashboard.admin.close()
    assert audit.observers == []


CANARY_TOKEN = "eyJCANARYTOKEN.dash.board"
CANARY_KEY = "canary-subscription-key-dashboard"
CANARY_SECRET = "canary-client-secret-dashboard"
CANARY_PHONE = "4791357913"
CANARIES = (CANARY_TOKEN, CANARY_KEY, CANARY_SECRET, CANARY_PHONE, "913 57 913")
CANARY_HEADERS = {
    "Authorization": f"Bearer {CANARY_TOKEN}",
    "Ocp-Apim-Subscription-Key": CANARY_KEY,
    "client_secret": CANARY_SECRET,
    "Content-Type": "application/json",
}
ECHO = {
    "title": "Bad", "detail": f"phone +47 913 57 913 and {CANARY_PHONE}",
    "access_token": CANARY_TOKEN, "client_secret": CANARY_SECRET,
    "customer": {"phoneNumber": CANARY_PHONE},
}  # fmt: skip


async def assert_no_canary(dashboard: Dashboard) -> None:
    async with dashboard.admin.get("/dashboard") as resp:
        page = await resp.text()
    async with dashboard.admin.get("/dashboard/data") as resp:
        raw = await resp.text()
    for secret in CANARIES:
        assert secret not in raw, secret
        assert secret not in page, secret


async def test_canary_secrets_never_reach_the_dashboard(dashboard: Dashboard) -> None:
    """Secrets and phone numbers sent by the client or echoed in JSON errors appear in no view."""
    body = orjson.dumps(
        {"amount": {"currency": "NOK", "value": 13}, "customer": {"phoneNumber": CANARY_PHONE},
         "reference": "order-123456"}
    )  # fmt: skip
    allowed = body.replace(b'"value":13', b'"value":1000')
    proxy = dashboard.proxy
    echo = orjson.dumps(ECHO)
    proxy.standin.reply(
        Reply(400, echo, {"Content-Type": "application/problem+json"}),
        Reply(500, echo, {"Content-Type": "application/json"}),
        Reply(404, echo, {"Content-Type": "application/json"}),
    )
    for payload in (allowed, allowed, body):
        async with proxy.client.post(
            "/epayment/v1/payments", data=payload, headers=CANARY_HEADERS
        ) as resp:
            await resp.read()
    async with proxy.client.get(
        f"/epayment/v1/payments?phoneNumber={CANARY_PHONE}&client_secret={CANARY_SECRET}",
        headers=CANARY_HEADERS,
    ) as resp:
        await resp.read()
    data = await dashboard.data()
    assert data["totals"] == {
        "recorded": 4, "vipps_errors": 3, "blocked": 1, "would_block": 0,
        "upstream_errors": 0, "events": 0,
    }  # fmt: skip
    assert "[redacted]" in orjson.dumps(data).decode()
    await assert_no_canary(dashboard)


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(
            Reply(401, orjson.dumps(ECHO).replace(b'"', b""), {"Content-Type": "text/plain"}),
            id="secrets-in-a-text-body",
        ),
        pytest.param(
            Reply(
                400, orjson.dumps({"extraDetails": [{"name": "ErrorCode", "reason": CANARY_PHONE}]})
            ),
            id="phone-as-error-code",
        ),
    ],
)
async def test_secrets_echoed_outside_json_fields_never_reach_the_dashboard(
    dashboard: Dashboard, reply: Reply
) -> None:
    """Secrets echoed in a text body or in the error code field are redacted too."""
    dashboard.proxy.standin.reply(reply)
    async with dashboard.proxy.client.get("/epayment/v1/payments/order-1") as resp:
        await resp.read()
    assert (await dashboard.data())["totals"]["recorded"] == 1
    await assert_no_canary(dashboard)


async def test_default_rule_findings_reach_the_dashboard_masked(
    proxy: Proxy, admin_client: TestClient[Any, Any]
) -> None:
    """The default rules' findings show up with the phone number masked and no credential."""
    create = EPAYMENT_CREATE.json
    bad_phone = {**create, "customer": {"phoneNumber": f"+47 {CANARY_PHONE[2:]}"}}
    bad_amount = {**create, "amount": {"currency": "NOK", "value": 49900.5}}
    for body in (bad_phone, bad_amount):
        sample = EPAYMENT_CREATE.with_body(orjson.dumps(body))
        async with proxy.client.post(sample.path, data=sample.body, headers=sample.headers) as r:
            await r.read()
    async with admin_client.get("/dashboard/data") as resp:
        raw = await resp.text()
    data = orjson.loads(raw)
    rules = {f["rule"] for e in data["entries"] for f in e.get("findings", [])}
    assert any(rule.startswith("phone.") for rule in rules), rules
    assert any(rule.startswith("amount.") for rule in rules), rules
    for secret in (TOKEN, SUBSCRIPTION_KEY, CANARY_PHONE, CANARY_PHONE[2:]):
        assert secret not in raw, secret
