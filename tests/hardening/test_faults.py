"""Faults on loopback: an upstream that refuses, resets, stalls, drips, fails in bursts or drops
idle connections, and clients that hang up. The proxy answers 502/504 with a problem+json body,
never sends a POST twice, leaks no connection or file descriptor, and recovers at once.

Fault requests go to a path outside the catalogue, so that no policy rule takes part: what is
tested here is the transport, whatever the rules of the day are.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import ClientResponse

from tests.conftest import AiohttpClient, Proxy
from tests.hardening.conftest import Figures, ServeProxy
from tests.hardening.wire import (
    LOOPBACK,
    Behaviour,
    RawResponse,
    RawUpstream,
    answer_ok,
    close_after_response,
    drip,
    exchange,
    half_response,
    headers_then_nothing,
    request_bytes,
    reset_before_response,
)
from tests.proxy.test_upstream_faults import free_port, start_proxy
from tests.standin import Reply, StandIn
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

PATH = "/faults/v1/payments/order-123456"
TIMEOUT = 0.5
# Time for the event loop to run connection-close callbacks after the last response.
SETTLE_SECONDS = 0.5

StartUpstream = Callable[[Behaviour], Awaitable[RawUpstream]]


@pytest.fixture
async def raw_upstream() -> AsyncIterator[StartUpstream]:
    """Start raw upstreams with a behaviour; all are stopped after the test."""
    started: list[RawUpstream] = []

    async def start(behaviour: Behaviour) -> RawUpstream:
        server = RawUpstream(behaviour)
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


async def problem_of(resp: ClientResponse, status: int) -> dict[str, Any]:
    """Check the response is the proxy's own problem+json with `status`; return the body."""
    assert resp.status == status
    assert resp.content_type == "application/problem+json"
    problem: dict[str, Any] = orjson.loads(await resp.read())
    assert problem["status"] == status
    assert problem["type"].startswith("urn:vipps-audit-proxy:problem:upstream-")
    assert problem["title"]
    assert problem["detail"]
    assert problem["traceId"] == resp.headers["X-Request-Id"]
    return problem


async def test_refused_connections_give_502_and_recovery_is_immediate(
    aiohttp_client: AiohttpClient, figures: Figures
) -> None:
    """Nobody listening: a quick 502; the first request once the upstream listens works."""
    port = free_port()
    client, _, _ = await start_proxy(
        aiohttp_client, f"http://{LOOPBACK}:{port}", upstream_timeout_seconds=TIMEOUT
    )
    for _ in range(20):
        started = time.perf_counter()
        async with client.post(PATH, data=b"{}") as resp:
            problem = await problem_of(resp, 502)
        assert time.perf_counter() - started < TIMEOUT
        assert "was not sent" in problem["detail"]
        figures.count("faults injected: connection refused")
    upstream = RawUpstream(answer_ok)
    await upstream.start(port)
    try:
        async with client.post(PATH, data=b"{}") as resp:
            assert resp.status == 200
        assert upstream.methods() == ["POST"]
    finally:
        await upstream.stop()


@pytest.mark.parametrize(
    ("behaviour", "fault"),
    [
        pytest.param(half_response, "reset mid-response", id="half-response"),
        pytest.param(reset_before_response, "reset before response", id="reset-before-response"),
    ],
)
async def test_reset_gives_502_and_post_arrives_once(
    aiohttp_client: AiohttpClient,
    raw_upstream: StartUpstream,
    figures: Figures,
    behaviour: Behaviour,
    fault: str,
) -> None:
    """A connection reset before or during the response: 502, and each POST arrived once."""
    upstream = await raw_upstream(behaviour)
    client, state, _ = await start_proxy(aiohttp_client, upstream.url)
    for _ in range(10):
        async with client.post(PATH, data=b"{}") as resp:
            problem = await problem_of(resp, 502)
        assert "may have reached Vipps" in problem["detail"]
        figures.count(f"faults injected: {fault}")
    assert upstream.methods() == ["POST"] * 10
    labels = {"api": "unknown", "operation": "unknown", "reason": "reset"}
    assert state.registry.get_sample_value("vipps_proxy_upstream_errors_total", labels) == 10
    upstream.behaviour = answer_ok
    async with client.post(PATH, data=b"{}") as resp:
        assert resp.status == 200


async def test_only_idempotent_methods_are_ever_sent_twice(
    aiohttp_client: AiohttpClient, raw_upstream: StartUpstream, figures: Figures
) -> None:
    """A reset before any response: POST and PATCH arrive once; GET, PUT, DELETE at most twice.

    aiohttp's client re-sends idempotent methods once when the connection drops before the
    response starts (RFC 9110 §9.2.2 allows it); requests that move money are POSTs.
    """
    upstream = await raw_upstream(reset_before_response)
    client, _, _ = await start_proxy(aiohttp_client, upstream.url)
    sends: dict[str, int] = {}
    for method in ("POST", "PATCH", "GET", "PUT", "DELETE"):
        before = len(upstream.arrivals)
        async with client.request(method, PATH, data=b"{}") as resp:
            await problem_of(resp, 502)
        sends[method] = len(upstream.arrivals) - before
        figures.count("faults injected: reset before response")
    assert sends["POST"] == sends["PATCH"] == 1
    assert all(1 <= sends[m] <= 2 for m in ("GET", "PUT", "DELETE")), sends
    figures.note("arrivals per request after a reset", repr(sends))


async def test_response_that_never_ends_gives_504_within_the_timeout(
    aiohttp_client: AiohttpClient, raw_upstream: StartUpstream, figures: Figures
) -> None:
    """Headers and then nothing: 504 after the configured 0.5 s, and the POST arrived once."""
    upstream = await raw_upstream(headers_then_nothing)
    client, state, _ = await start_proxy(
        aiohttp_client, upstream.url, upstream_timeout_seconds=TIMEOUT
    )

    async def call() -> float:
        started = time.perf_counter()
        async with client.post(PATH, data=b"{}") as resp:
            problem = await problem_of(resp, 504)
        assert "may have reached Vipps" in problem["detail"]
        return time.perf_counter() - started

    elapsed = await asyncio.gather(*(call() for _ in range(10)))
    assert all(TIMEOUT <= seconds < TIMEOUT + 1.0 for seconds in elapsed), elapsed
    assert upstream.methods() == ["POST"] * 10
    figures.count("faults injected: response never ends", 10)
    labels = {"api": "unknown", "operation": "unknown", "reason": "timeout"}
    assert state.registry.get_sample_value("vipps_proxy_upstream_errors_total", labels) == 10


@pytest.mark.parametrize(
    ("budget", "status"),
    [pytest.param(3.0, 200, id="within"), pytest.param(TIMEOUT, 504, id="beyond")],
)
async def test_slow_drip(
    aiohttp_client: AiohttpClient,
    raw_upstream: StartUpstream,
    figures: Figures,
    budget: float,
    status: int,
) -> None:
    """A body at one byte per 100 ms arrives whole within the timeout, else ends in 504 on time."""
    body = b'{"ok":true}'
    upstream = await raw_upstream(drip(body, 0.1))
    client, _, _ = await start_proxy(aiohttp_client, upstream.url, upstream_timeout_seconds=budget)
    started = time.perf_counter()
    async with client.get(PATH) as resp:
        if status == 200:
            assert resp.status == 200
            assert await resp.read() == body
        else:
            await problem_of(resp, 504)
    assert time.perf_counter() - started < budget + 1.0
    assert upstream.methods() == ["GET"]
    figures.count("faults injected: slow drip")


async def test_5xx_burst_is_passed_through_and_never_retried(
    proxy: Proxy, figures: Figures
) -> None:
    """A burst of 503s from Vipps reaches the client as sent, once each; then 200 again."""
    body = b'{"title":"Service Unavailable","status":503}'
    burst = [Reply(503, body, {"Content-Type": "application/problem+json"})] * 15
    proxy.standin.reply(*burst, *[Reply(500, b"oops", {"Content-Type": "text/plain"})] * 5)
    for expected in [503] * 15 + [500] * 5 + [200]:
        async with proxy.client.post(PATH, data=b"{}") as resp:
            assert resp.status == expected
            if expected == 503:
                assert await resp.read() == body
    assert len(proxy.standin.received) == 21
    figures.count("faults injected: 5xx from upstream", 20)
    labels = {"api": "unknown", "operation": "unknown", "code": "503", "error_code": "none"}
    assert proxy.sample("vipps_proxy_vipps_errors_total", **labels) == 15


async def test_idle_connection_closed_by_upstream_is_not_reused(
    aiohttp_client: AiohttpClient, raw_upstream: StartUpstream, figures: Figures
) -> None:
    """An upstream that closes each idle connection (no `Connection: close`) costs no request."""
    upstream = await raw_upstream(close_after_response())
    client, _, _ = await start_proxy(aiohttp_client, upstream.url)
    for _ in range(20):
        async with client.post(PATH, data=b"{}") as resp:
            assert resp.status == 200
        # Idle until the upstream has closed the connection, before the pool could reuse it.
        await wait_until(
            lambda: upstream.closed == upstream.connections, "the upstream to close the connection"
        )
        figures.count("faults injected: idle connection closed by upstream")
    assert upstream.methods() == ["POST"] * 20
    assert upstream.connections == 20


async def test_close_racing_the_next_request_never_duplicates_a_post(
    aiohttp_client: AiohttpClient, raw_upstream: StartUpstream, figures: Figures
) -> None:
    """POSTs sent just as the upstream closes the kept-alive connection: none arrives twice.

    A POST written into a connection the upstream is closing is lost, and the proxy cannot
    tell that from one Vipps received; it answers 502 "may have reached Vipps" and does not
    resend. The figure says how many of the 40 crossed a close.
    """
    upstream = await raw_upstream(close_after_response(linger=0.01))
    client, _, _ = await start_proxy(aiohttp_client, upstream.url)
    statuses: list[int] = []
    for i in range(40):
        async with client.post(PATH, data=b'{"n":%d}' % i) as resp:
            statuses.append(resp.status)
            if resp.status != 200:
                await problem_of(resp, 502)
    bodies = [arrival.body for arrival in upstream.arrivals]
    assert len(bodies) == len(set(bodies)) == statuses.count(200)
    figures.count("faults injected: close racing a request", 40)
    figures.note(
        "back-to-back POSTs on closing connections",
        f"{statuses.count(200)}/40 got 200, {statuses.count(502)} got 502, none sent twice",
    )


async def _send_partial(port: int, head: bytes, sent_body: bytes) -> None:
    """Send a request, or the start of one, then hang up."""
    _, writer = await asyncio.open_connection(LOOPBACK, port)
    writer.write(head + sent_body)
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.close()
    await writer.wait_closed()


async def post(port: int, body: bytes = b"{}", method: str = "POST") -> RawResponse:
    """One request on its own connection (`Connection: close`), so no client pool lingers."""
    return await exchange(port, request_bytes(method, PATH, (), body))


HALF_BODY_HEAD = b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"


async def test_client_hanging_up_mid_body_forwards_nothing(
    serve_proxy: ServeProxy, standin: StandIn, figures: Figures
) -> None:
    """Half a body then a closed socket: nothing reaches the upstream; the next request works."""
    proxy = await serve_proxy()
    for _ in range(10):
        await _send_partial(proxy.port, HALF_BODY_HEAD, b'{"amount":')
        figures.count("faults injected: client hung up mid-body")
    await wait_until(
        lambda: len(proxy.log.of("request")) == 10, "the ten aborted requests to be logged"
    )
    # A half body forwarded late would reach the stand-in before the next, complete request.
    assert (await post(proxy.port)).status == 200
    assert [got.body for got in standin.received] == [b"{}"]


async def test_client_hanging_up_mid_body_is_not_a_proxy_error(serve_proxy: ServeProxy) -> None:
    """A client abort is no 5xx in the metrics and no error-level proxy_exception in the log."""
    proxy = await serve_proxy()
    await _send_partial(proxy.port, HALF_BODY_HEAD, b'{"amount":')
    # The handler logs the aborted request when it ends; anything it logs comes before that.
    await wait_until(lambda: bool(proxy.log.of("request")), "the aborted request to be logged")
    assert proxy.log.of("proxy_exception") == []
    (record,) = proxy.log.of("request")
    assert (record["status"], record["outcome"]) == (499, "client_closed")
    counted = {
        (sample.labels["code"], sample.labels["outcome"]): sample.value
        for metric in proxy.state.registry.collect()
        if metric.name == "vipps_proxy_requests"
        for sample in metric.samples
        if sample.name == "vipps_proxy_requests_total"
    }
    assert counted == {("499", "client_closed"): 1}


async def test_client_hanging_up_while_upstream_is_slow(
    serve_proxy: ServeProxy, standin: StandIn, figures: Figures
) -> None:
    """The client leaves while Vipps thinks: the upstream still gets exactly one request."""
    proxy = await serve_proxy()
    standin.reply(Reply(200, b"{}", delay=0.6))
    raw = b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
    await _send_partial(proxy.port, raw, b"")
    figures.count("faults injected: client hung up while upstream slow")
    await wait_until(lambda: bool(proxy.log.of("request")), "the request to be logged")
    assert [got.method for got in standin.received] == ["POST"]
    (record,) = proxy.log.of("request")
    assert record["outcome"] == "forwarded"
    assert (await post(proxy.port, method="GET")).status == 200
    assert len(standin.received) == 2


def open_fds() -> int:
    """File descriptors open in this process (proxy, upstreams and clients all live here)."""
    return len(os.listdir("/proc/self/fd"))


async def test_no_descriptor_leak_after_hundreds_of_faults(
    serve_proxy: ServeProxy, raw_upstream: StartUpstream, figures: Figures
) -> None:
    """Hundreds of faulted requests of every kind leave the open fd count where it was.

    Every request uses its own client connection with `Connection: close`, so the only
    sockets allowed to outlive a request are the proxy's pooled keep-alive connections to a
    healthy upstream: two descriptors each here, as both ends live in this process. The
    tolerance of 4 allows for two such; a leak of one per fault would show as hundreds.
    """
    faulty = await raw_upstream(answer_ok)
    refused = await serve_proxy(f"http://{LOOPBACK}:{free_port()}")
    flaky = await serve_proxy(faulty.url, upstream_timeout_seconds=TIMEOUT)
    healthy = await serve_proxy()
    # Warm every pool once, then measure.
    assert (await post(flaky.port)).status == 200
    assert (await post(healthy.port)).status == 200
    await asyncio.sleep(SETTLE_SECONDS)
    gc.collect()
    before = open_fds()

    injected = 0
    for _ in range(100):
        assert (await post(refused.port)).status == 502
        injected += 1
    for behaviour in (half_response, reset_before_response):
        faulty.behaviour = behaviour
        for _ in range(60):
            assert (await post(flaky.port)).status == 502
            injected += 1
    faulty.behaviour = headers_then_nothing
    answers = await asyncio.gather(*(post(flaky.port) for _ in range(60)))
    assert [answer.status for answer in answers] == [504] * 60
    injected += 60
    for _ in range(40):
        await _send_partial(healthy.port, HALF_BODY_HEAD, b"{")
        injected += 1
    faulty.behaviour = answer_ok
    assert (await post(flaky.port)).status == 200
    assert (await post(healthy.port)).status == 200

    # Closed sockets are released by connection-close callbacks; a leaked one never is.
    def settled() -> bool:
        gc.collect()
        return open_fds() <= before + 4

    try:
        await wait_until(settled, "the descriptors to be released", seconds=5.0)
    finally:
        after = open_fds()
        figures.count("faults injected: fd-leak run", injected)
        figures.note("fds in the test process around the fault run", f"{before} -> {after}")
