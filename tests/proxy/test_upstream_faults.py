"""When Vipps cannot be reached or does not answer: a clear 502/504, counted, never retried."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import orjson
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from proxy.app import build_state, create_app
from proxy.config import Settings
from proxy.upstream import egress_proxy
from tests.conftest import MERCHANT_HEADERS, AiohttpClient, AiohttpServer, LogLines
from tests.samples import EPAYMENT_CAPTURE, EPAYMENT_REFUND
from tests.standin import Reply, StandIn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def start_proxy(
    aiohttp_client: AiohttpClient, upstream_url: str, **overrides: Any
) -> tuple[Any, Any, LogLines]:
    settings = Settings(upstream_url=upstream_url, **overrides)
    log = LogLines()
    state = build_state(settings, registry=CollectorRegistry(), sink=log)
    client = await aiohttp_client(create_app(settings, state), headers=MERCHANT_HEADERS)
    return client, state, log


async def test_connection_refused_gives_502(aiohttp_client: AiohttpClient) -> None:
    """An upstream port with nobody listening gives 502 problem+json, reason connect."""
    client, state, log = await start_proxy(aiohttp_client, f"http://127.0.0.1:{free_port()}")
    async with client.get("/epayment/v1/payments/order-123456") as resp:
        assert resp.status == 502
        assert resp.content_type == "application/problem+json"
        problem = orjson.loads(await resp.read())
    assert problem["type"].endswith("upstream-unreachable")
    assert "was not sent" in problem["detail"]
    labels = {"api": "epayment", "operation": "get_payment"}
    assert (
        state.registry.get_sample_value(
            "vipps_proxy_upstream_errors_total", {**labels, "reason": "connect"}
        )
        == 1
    )
    assert (
        state.registry.get_sample_value(
            "vipps_proxy_requests_total",
            {**labels, "method": "GET", "code": "502", "outcome": "upstream_error"},
        )
        == 1
    )
    (record,) = log.of("request")
    assert record["level"] == "error"
    assert record["upstream_error"] == "connect"
    assert record["error_body"]["json"]["status"] == 502


async def test_slow_upstream_gives_504_and_post_is_sent_once(
    aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer
) -> None:
    """An upstream slower than the timeout gives 504; the POST reached Vipps exactly once."""
    standin = StandIn()
    standin.reply(Reply(200, b"{}", delay=2.0))
    server = await aiohttp_server(standin.app(), host="127.0.0.1")
    client, state, _ = await start_proxy(
        aiohttp_client, str(server.make_url("/")), upstream_timeout_seconds=0.3
    )
    capture = EPAYMENT_CAPTURE
    async with client.post(capture.path, data=capture.body, headers=capture.headers) as resp:
        assert resp.status == 504
        problem = orjson.loads(await resp.read())
    assert "may have reached Vipps" in problem["detail"]
    # A re-sent POST would reach the stand-in before a request sent after the 504 answer.
    async with client.get("/epayment/v1/payments/order-123456") as resp:
        assert resp.status == 200
    assert [got.method for got in standin.received] == ["POST", "GET"]
    assert (
        state.registry.get_sample_value(
            "vipps_proxy_upstream_errors_total",
            {"api": "epayment", "operation": "capture_payment", "reason": "timeout"},
        )
        == 1
    )


async def test_connection_reset_gives_502_and_post_is_not_retried(
    aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer
) -> None:
    """A connection dropped mid-request gives 502 reset; the POST is not re-sent."""
    arrivals: list[str] = []

    async def drop(request: web.Request) -> web.StreamResponse:
        arrivals.append(request.method)
        assert request.transport is not None
        request.transport.close()
        await asyncio.sleep(0.05)
        return web.Response()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", drop)
    server = await aiohttp_server(app, host="127.0.0.1")
    client, state, _ = await start_proxy(aiohttp_client, str(server.make_url("/")))
    refund = EPAYMENT_REFUND
    async with client.post(refund.path, data=refund.body, headers=refund.headers) as resp:
        assert resp.status == 502
    assert arrivals == ["POST"]
    assert (
        state.registry.get_sample_value(
            "vipps_proxy_upstream_errors_total",
            {"api": "epayment", "operation": "refund_payment", "reason": "reset"},
        )
        == 1
    )


async def test_proxy_recovers_when_upstream_comes_back(
    aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer
) -> None:
    """After a refused connection, the next request succeeds once the upstream listens."""
    port = free_port()
    client, _, _ = await start_proxy(aiohttp_client, f"http://127.0.0.1:{port}")
    async with client.get("/x") as resp:
        assert resp.status == 502
    await aiohttp_server(StandIn().app(), host="127.0.0.1", port=port)
    async with client.get("/x") as resp:
        assert resp.status == 200


async def test_egress_proxy_from_the_environment_is_used(
    aiohttp_client: AiohttpClient,
    aiohttp_server: AiohttpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With HTTP_PROXY set, requests to the upstream go through that forward proxy."""
    seen: list[str] = []

    async def forward_proxy(request: web.Request) -> web.Response:
        seen.append(str(request.url))
        return web.Response(status=200, body=b'{"via":"proxy"}')

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward_proxy)
    egress = await aiohttp_server(app, host="127.0.0.1")
    monkeypatch.setenv("HTTP_PROXY", str(egress.make_url("/")))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client, _, _ = await start_proxy(aiohttp_client, "http://vipps.invalid:8080")
    async with client.get("/epayment/v1/payments/order-123456") as resp:
        assert await resp.read() == b'{"via":"proxy"}'
    assert seen == ["http://vipps.invalid:8080/epayment/v1/payments/order-123456"]


def test_no_proxy_excludes_the_upstream(monkeypatch: pytest.MonkeyPatch) -> None:
    """NO_PROXY naming the upstream host means a direct connection."""
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("NO_PROXY", "api.vipps.no")
    assert egress_proxy("https://api.vipps.no") is None
    assert egress_proxy("https://apitest.vipps.no") == "http://127.0.0.1:3128"
