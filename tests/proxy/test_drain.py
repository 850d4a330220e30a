"""The drain budget: a request still running when the shutdown grace ends is answered and
recorded like every other request, and the whole drain fits in the grace."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from policies.audit.state import payment_key
from policies.core.model import audited_request
from proxy.app import build_state, create_admin_app, create_app
from proxy.config import Settings
from proxy.drain import Budget, Drain
from tests.conftest import MERCHANT_HEADERS, AiohttpClient, AiohttpServer, LogLines
from tests.proxy.test_lifecycle import proxy_env, start, wait_ready
from tests.samples import EPAYMENT_CAPTURE, EPAYMENT_CREATE

SHUTDOWN_TYPE = "urn:vipps-audit-proxy:problem:shutdown"
DEADLINE = 20.0


@dataclass
class HangingVipps:
    """A stand-in that answers creates at once and holds every capture until released."""

    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    captures: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        if request.path.endswith("/capture"):
            self.captures += 1
            self.arrived.set()
            # Bounded: the test releases it on teardown; never longer than the deadline.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.release.wait(), DEADLINE)
        return web.json_response({"reference": "order-123456"}, status=201)


@pytest.fixture
async def vipps(aiohttp_server: AiohttpServer) -> AsyncIterator[tuple[HangingVipps, TestServer]]:
    hanging = HangingVipps()
    server = await aiohttp_server(hanging.app(), host="127.0.0.1")
    yield hanging, server
    hanging.release.set()


def test_budget_fits_the_grace() -> None:
    """Waiting, then the servers' shutdown (which aiohttp may apply twice), fit in the grace."""
    for grace in (0.0, 0.5, 3.0, 20.0, 600.0):
        budget = Budget(grace)
        assert 0 <= budget.wait <= grace
        assert budget.wait + 2 * budget.close <= grace
        assert budget.reserve <= 1.0


async def test_cut_request_is_answered_and_recorded(
    vipps: tuple[HangingVipps, TestServer], aiohttp_client: AiohttpClient
) -> None:
    """A capture cut by the drain gets the 504 problem and is logged, counted, shown on the
    dashboard, and left pending in the payment ledger."""
    hanging, server = vipps
    settings = Settings(upstream_url=str(server.make_url("/")), shutdown_grace_seconds=3)
    log = LogLines()
    state = build_state(settings, registry=CollectorRegistry(), sink=log)
    client: TestClient[Any, Any] = await aiohttp_client(
        create_app(settings, state), headers=MERCHANT_HEADERS
    )
    admin: TestClient[Any, Any] = await aiohttp_client(create_admin_app(state))
    create = EPAYMENT_CREATE
    async with client.post(create.path, data=create.body, headers=create.headers) as resp:
        assert resp.status == 201
    capture = EPAYMENT_CAPTURE

    async def send() -> tuple[int, dict[str, Any]]:
        async with client.post(capture.path, data=capture.body, headers=capture.headers) as resp:
            return resp.status, orjson.loads(await resp.read())

    call = asyncio.create_task(send())
    await asyncio.wait_for(hanging.arrived.wait(), DEADLINE)
    assert state.drain.in_flight == 1
    assert state.drain.cut() == 1
    status, problem = await asyncio.wait_for(call, DEADLINE)

    assert status == 504
    assert problem["type"] == SHUTDOWN_TYPE
    assert "may have reached Vipps" in problem["detail"]
    assert "check the payment's status before retrying" in problem["detail"]
    assert state.drain.in_flight == 0
    [record] = [r for r in log.of("request") if r["operation"] == "capture_payment"]
    assert record["outcome"] == "shutdown"
    assert record["status"] == 504
    assert record["path"] == capture.path
    assert record["api"] == "epayment"
    assert record["error_body"]["json"]["type"] == SHUTDOWN_TYPE
    labels = {
        "api": "epayment",
        "operation": "capture_payment",
        "method": "POST",
        "code": "504",
        "outcome": "shutdown",
    }
    assert state.registry.get_sample_value("vipps_proxy_requests_total", labels) == 1
    assert state.registry.get_sample_value("vipps_proxy_in_flight_requests") == 0
    async with admin.get("/dashboard/data") as resp:
        board = orjson.loads(await resp.read())
    [group] = [g for g in board["groups"] if g["operation"] == "capture_payment"]
    assert (group["kind"], group["code"], group["status"]) == ("upstream_error", "shutdown", 504)
    # The capture's outcome is unknown: the ledger keeps it pending, as after a timeout.
    key = payment_key(
        audited_request(capture.method, capture.path, list(capture.headers.items()), capture.body)
    )
    assert key is not None
    ledger_record = state.payments.ledger.get(key)
    assert ledger_record is not None
    assert list(ledger_record.pending_captures.values()) == [20000]


async def test_cancellation_that_is_not_the_drain_propagates() -> None:
    """Only the drain's own cut turns into an answer; another cancellation is not swallowed."""
    drain = Drain(grace=1)
    started = asyncio.Event()

    async def request() -> None:
        task = drain.enter()
        try:
            started.set()
            await asyncio.sleep(DEADLINE)
        finally:
            drain.leave(task)

    running = asyncio.create_task(request())
    await started.wait()
    assert drain.in_flight == 1
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert drain.in_flight == 0
    assert await drain.wait_idle(0.1)


@pytest.mark.slow
async def test_sigterm_drain_fits_the_grace_and_records_the_cut_request(
    vipps: tuple[HangingVipps, TestServer],
) -> None:
    """A real process with a 3 s grace and a capture Vipps holds for 20 s: it exits 0 within
    the grace (plus process exit), the client gets the shutdown problem, and the request is in
    the audit log and in the final line's counters."""
    hanging, server = vipps
    grace = 3.0
    env = proxy_env(str(server.make_url("/")), VIPPS_PROXY_SHUTDOWN_GRACE_SECONDS=str(grace))
    listen = f"http://127.0.0.1:{env['VIPPS_PROXY_LISTEN_PORT']}"
    process = await start(env)
    try:
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, f"http://127.0.0.1:{env['VIPPS_PROXY_ADMIN_PORT']}")
            capture = EPAYMENT_CAPTURE

            async def send() -> tuple[int, bytes]:
                async with session.post(
                    f"{listen}{capture.path}", data=capture.body, headers=capture.headers
                ) as resp:
                    return resp.status, await resp.read()

            call = asyncio.create_task(send())
            await asyncio.wait_for(hanging.arrived.wait(), DEADLINE)
            signalled = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), DEADLINE)
            elapsed = time.monotonic() - signalled
            status, body = await asyncio.wait_for(call, DEADLINE)
        stdout = (await process.communicate())[0]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert code == 0
    # The grace is the budget; the margin covers the interpreter's own exit on a busy machine.
    assert elapsed < grace + 1.0, f"drain took {elapsed:.2f} s with a grace of {grace} s"
    assert status == 504
    assert orjson.loads(body)["type"] == SHUTDOWN_TYPE
    assert hanging.captures == 1
    records = [orjson.loads(line) for line in stdout.splitlines()]
    [cut] = [r for r in records if r["event"] == "request"]
    assert (cut["outcome"], cut["operation"], cut["path"]) == (
        "shutdown",
        "capture_payment",
        capture.path,
    )
    assert records[-1]["event"] == "stopped"
    assert records[-1]["requests"] == {"shutdown": 1}
    assert records[-1]["drain_seconds"] <= grace
