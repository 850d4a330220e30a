"""Every corpus row through a real proxy process with its default settings.

One `python -m proxy` and one stand-in Vipps serve the whole corpus: each row goes out as the
bytes its stack writes (raw socket, headers in the stack's order and spelling), and its outcome
is read where it shows: the answer, what reached the stand-in, and the proxy's audit log line.
Rows carry their own references and idempotency keys, so payment-level rules (rate limits,
idempotency, ledger) never connect two rows.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from aiohttp import web

from policies.core.errors import BLOCKED_TYPE
from tests.fidelity.corpus import Row, load_rows
from tests.hardening.process import ProxyProcess, proxy_process
from tests.hardening.wire import LOOPBACK, RawResponse, exchange
from tests.standin import Received, StandIn

pytestmark = pytest.mark.slow

ROWS = load_rows()
# Transport framing: set by the sender and the proxy's client, not part of what a row sends.
FRAMING = frozenset({"host", "connection", "content-length", "transfer-encoding"})
EGRESS_PROXY_VARIABLES = (
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
)  # fmt: skip
LOG_WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class Outcome:
    """What became of one row: the answer, what reached Vipps, and the audit record."""

    row: Row
    answer: RawResponse
    arrived: tuple[Received, ...]
    record: dict[str, Any] | None

    def rule_codes(self) -> str:
        header = self.answer.header("Audit-Proxy-Findings") or "-"
        findings = (self.record or {}).get("findings", [])
        logged = ", ".join(f"{f['rule']} {f['action']} at {f['field']}" for f in findings)
        return f"Audit-Proxy-Findings: {header}; log findings: {logged or '-'}"

    def summary(self) -> str:
        where = "reached the stand-in" if self.arrived else "did not reach the stand-in"
        answer = "" if self.answer.status < 400 else f" ({self.answer.body[:200]!r})"
        return (
            f"{self.row.describe()}: answered {self.answer.status}{answer}, {where}; "
            f"{self.rule_codes()}; expected because: {self.row.reason}"
        )


def wire_request(row: Row) -> bytes:
    """The row as its stack puts it on the wire, framed by length or as one chunk."""
    head = [f"{row.method} {row.target} HTTP/1.1", f"Host: {LOOPBACK}", "Connection: close"]
    head += [f"{name}: {value}" for name, value in row.headers]
    payload = row.body
    if row.framing == "chunked":
        head.append("Transfer-Encoding: chunked")
        payload = f"{len(row.body):x}\r\n".encode() + row.body + b"\r\n" if row.body else b""
        payload += b"0\r\n\r\n"
    elif row.body or row.method in ("POST", "PUT", "PATCH"):
        head.append(f"Content-Length: {len(row.body)}")
    return "\r\n".join(head).encode() + b"\r\n\r\n" + payload


async def record_of(proxy: ProxyProcess, request_id: str | None) -> dict[str, Any] | None:
    """The audit record of `request_id`, waiting (bounded) for the line to be written."""
    if request_id is None:
        return None
    deadline = time.monotonic() + LOG_WAIT_SECONDS
    while True:
        for line in proxy.stdout.splitlines():
            if request_id.encode() in line:
                record: dict[str, Any] = orjson.loads(line)
                if record.get("event") == "request" and record.get("request_id") == request_id:
                    return record
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(0.02)


async def run_corpus(rows: list[Row]) -> dict[str, Outcome]:
    """Send every row, in order, through one proxy process to one stand-in."""
    standin = StandIn()
    runner = web.AppRunner(standin.app(), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, LOOPBACK, 0).start()
        port: int = runner.addresses[0][1]
        outcomes: dict[str, Outcome] = {}
        async with proxy_process(f"http://{LOOPBACK}:{port}") as proxy:
            for row in rows:
                standin.received.clear()
                answer = await exchange(proxy.listen_port, wire_request(row))
                record = await record_of(proxy, answer.header("X-Request-Id"))
                outcomes[row.id] = Outcome(row, answer, tuple(standin.received), record)
        return outcomes
    finally:
        await runner.cleanup()


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Outcome]:
    """The whole corpus, sent once per test module through one proxy process."""
    with pytest.MonkeyPatch.context() as patch:
        for name in EGRESS_PROXY_VARIABLES:
            patch.delenv(name, raising=False)
        return asyncio.run(run_corpus(ROWS))


def sent_headers_arrived(outcome: Outcome, got: Received) -> None:
    """The row's headers arrive in its order and spelling, and nothing is added."""
    row = outcome.row
    names = {name.lower() for name, _ in row.headers}
    delivered = [(n, v) for n, v in got.headers if n.lower() in names]
    added = [(n, v) for n, v in got.headers if n.lower() not in names | FRAMING]
    assert delivered == list(row.headers), f"headers changed: {outcome.summary()}"
    assert not added, f"headers added {added}: {outcome.summary()}"


def assert_forwarded(outcome: Outcome, body: bytes) -> None:
    row = outcome.row
    assert outcome.answer.status == 200, f"not forwarded: {outcome.summary()}"
    assert len(outcome.arrived) == 1, f"arrived {len(outcome.arrived)} times: {outcome.summary()}"
    (got,) = outcome.arrived
    assert (got.method, got.target) == (row.method, row.target), outcome.summary()
    assert got.body == body, f"body altered (arrived {got.body[:300]!r}): {outcome.summary()}"
    sent_headers_arrived(outcome, got)


def assert_error_shape(outcome: Outcome) -> None:
    """A block answers in the error shape of the API that was called, typed as the proxy's."""
    body = orjson.loads(outcome.answer.body)
    api = outcome.row.api
    if api == "ecom":
        assert isinstance(body, list), outcome.summary()
        assert all({"errorGroup", "errorCode", "errorMessage"} <= item.keys() for item in body)
        return
    assert body["type"] == BLOCKED_TYPE, outcome.summary()
    details = {
        "recurring": ("extraDetails", {"field", "text"}),
        "order_management": ("invalidParams", {"name", "reason"}),
    }.get(api, ("extraDetails", {"name", "reason"}))
    if api == "checkout":
        assert body["errorCode"], outcome.summary()
        assert body["errors"], outcome.summary()
    else:
        key, fields = details
        assert all(fields <= item.keys() for item in body[key]), outcome.summary()


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_row_gets_its_outcome(row: Row, outcomes: dict[str, Outcome]) -> None:
    """Forward rows arrive byte-for-byte, block rows never arrive, repair rows change one value."""
    outcome = outcomes[row.id]
    if row.expect == "forward":
        assert_forwarded(outcome, row.body)
    elif row.expect == "repair":
        assert row.repair is not None
        sent = f'"{row.repair.sent}"'.encode()
        assert row.body.count(sent) == 1, f"the repaired value occurs once in {row.id}"
        assert_forwarded(outcome, row.body.replace(sent, f'"{row.repair.forwarded}"'.encode()))
    else:
        assert not outcome.arrived, f"reached Vipps: {outcome.summary()}"
        assert 400 <= outcome.answer.status < 500, outcome.summary()
        codes = (outcome.answer.header("Audit-Proxy-Findings") or "").replace(" ", "").split(",")
        assert set(row.rules) <= set(codes), f"blocked by other rules: {outcome.summary()}"
        assert_error_shape(outcome)
