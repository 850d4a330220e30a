"""Several replicas, one truth: three real proxy processes (`python -m proxy`) on one Redis.

The merchant's pods each have their own sidecar, so the calls about one payment go through
different proxies. With the state on Redis the ledger, idempotency keys, rate windows and the
never-polled audit see every replica's traffic. And when Redis is paused or killed mid-traffic,
every request is still forwarded, none waits much longer than the state timeout, the failures
are counted, and the state is used again once Redis is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from policies.audit.shared_state import environment_tag
from tests.conftest import AiohttpServer
from tests.hardening.conftest import Figures
from tests.hardening.process import ProxyProcess, proxy_process
from tests.redis_server import RedisServer, command, redis_server
from tests.samples import EPAYMENT_CAPTURE, EPAYMENT_CREATE_PLAIN, EPAYMENT_GET, Sample
from tests.standin import Reply, StandIn

pytestmark = pytest.mark.slow

JSON = {"Content-Type": "application/json"}
DEADLINE_SECONDS = 30.0
# What these tests check does not depend on how fast Redis answers: room for a loaded machine.
# (The fault test sets its own, short, timeout.)
TIMEOUT_MS = "1000"


def created(reference: str) -> Reply:
    return Reply(201, orjson.dumps({"reference": reference, "redirectUrl": "https://x"}), JSON)


def create(reference: str) -> Sample:
    body = orjson.loads(EPAYMENT_CREATE_PLAIN.body)
    body["reference"] = reference
    return EPAYMENT_CREATE_PLAIN.with_body(orjson.dumps(body)).with_headers(
        Idempotency_Key=f"create-{reference}"
    )


def capture(reference: str, value: int, key: str) -> Sample:
    body = orjson.loads(EPAYMENT_CAPTURE.body)
    body["modificationAmount"]["value"] = value
    path = f"/epayment/v1/payments/{reference}/capture"
    sample = Sample("POST", path, {**EPAYMENT_CAPTURE.headers, "Idempotency-Key": key})
    return sample.with_body(orjson.dumps(body))


def poll(reference: str) -> Sample:
    return Sample("GET", f"/epayment/v1/payments/{reference}", EPAYMENT_GET.headers)


async def send(
    session: aiohttp.ClientSession, proxy: ProxyProcess, sample: Sample
) -> tuple[int, dict[str, str], float]:
    """Status, headers and seconds of one request through `proxy`."""
    started = time.perf_counter()
    async with session.request(
        sample.method, proxy.listen + sample.path, data=sample.body or None, headers=sample.headers
    ) as resp:
        await resp.read()
        return resp.status, dict(resp.headers), time.perf_counter() - started


async def metrics(session: aiohttp.ClientSession, proxy: ProxyProcess) -> dict[str, float]:
    """Every sample of the proxy's /metrics, keyed `name{label="value",...}` (labels sorted)."""
    async with session.get(proxy.admin + "/metrics") as resp:
        text = await resp.text()
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}"] = sample.value
    return found


def total(samples: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in samples.items() if k.startswith(prefix))


@contextlib.asynccontextmanager
async def replicas(
    upstream: str, url: str, count: int, **settings: str
) -> AsyncIterator[list[ProxyProcess]]:
    """`count` proxy processes against `upstream`, sharing the state at `url`."""
    async with contextlib.AsyncExitStack() as stack:
        started = await asyncio.gather(
            *(
                stack.enter_async_context(
                    proxy_process(
                        upstream,
                        VIPPS_PROXY_STATE_URL=url,
                        **{"VIPPS_PROXY_STATE_TIMEOUT_MS": TIMEOUT_MS, **settings},
                    )
                )
                for _ in range(count)
            )
        )
        yield list(started)


@pytest.fixture
def redis() -> Any:
    with redis_server() as server:
        yield server


async def test_three_replicas_share_the_ledger_keys_and_rate_windows(
    aiohttp_server: AiohttpServer, redis: RedisServer, figures: Figures
) -> None:
    """Over-capture across two proxies (one after the other, and at the same moment), a key
    reused with another body through another proxy, and the sixth capture in a minute spread
    over three proxies: each is answered by the proxy as Vipps would, never forwarded."""
    standin = StandIn()
    server = await aiohttp_server(standin.app(), host="127.0.0.1")
    async with (
        replicas(str(server.make_url("/")), redis.url, 3) as (a, b, c),
        aiohttp.ClientSession() as session,
    ):
        # 49,900 reserved; 30,000 captured through A; 20,000 more through B is too much.
        standin.reply(created("order-seq"))
        assert (await send(session, a, create("order-seq")))[0] == 201
        assert (await send(session, a, capture("order-seq", 30000, "seq-1")))[0] == 200
        status, headers, _ = await send(session, b, capture("order-seq", 20000, "seq-2"))
        assert status == 400
        assert headers["Audit-Proxy-Findings"] == "ledger.capture_exceeds_reserved"

        # Two captures of 30,000 at the same moment, through B and C: only one passes.
        standin.reply(
            created("order-race"),
            Reply(200, b"{}", JSON, delay=0.5),
            Reply(200, b"{}", JSON, delay=0.5),
        )
        assert (await send(session, a, create("order-race")))[0] == 201
        raced = await asyncio.gather(
            send(session, b, capture("order-race", 30000, "race-b")),
            send(session, c, capture("order-race", 30000, "race-c")),
        )
        assert sorted(status for status, _, _ in raced) == [200, 400]

        # The same idempotency key, another body, through another proxy: 409 as Vipps answers.
        assert (await send(session, a, capture("order-idem", 1000, "idem-1")))[0] == 200
        status, headers, _ = await send(session, b, capture("order-idem", 2000, "idem-1"))
        assert status == 409
        assert headers["Audit-Proxy-Findings"] == "idempotency.key_reused"

        # Five captures a minute per payment, spread over three proxies; the sixth gets 429.
        for i, proxy in enumerate([a, b, c, a, b]):
            assert (await send(session, proxy, capture("order-rate", 100, f"rate-{i}")))[0] == 200
        status, headers, _ = await send(session, c, capture("order-rate", 100, "rate-5"))
        assert status == 429
        assert 1 <= int(headers["Retry-After"]) <= 60

        # Two creates and eight captures forwarded; the four blocked never reached Vipps.
        assert len(standin.received) == 2 + 2 + 1 + 5
        for proxy in (a, b, c):
            state_errors = total(await metrics(session, proxy), "vipps_proxy_state_errors_total")
            assert state_errors == 0
    figures.count("replica scenarios blocked across proxies", 4)


async def test_never_polled_is_reported_once_by_one_replica_and_never_when_polled(
    aiohttp_server: AiohttpServer, redis: RedisServer
) -> None:
    """Two payments created through A; one polled through B. Once the window has passed, the
    unpolled one is reported by exactly one of three replicas, and the polled one by none."""
    standin = StandIn()
    server = await aiohttp_server(standin.app(), host="127.0.0.1")
    upstream = str(server.make_url("/"))
    due_key = f"vap:v1:{{{environment_tag(upstream)}.due}}"
    async with (
        replicas(upstream, redis.url, 3, VIPPS_PROXY_POLL_AUDIT_WINDOW_SECONDS="5") as proxies,
        aiohttp.ClientSession() as session,
    ):
        a, b, _ = proxies
        standin.reply(created("order-polled"), created("order-unpolled"))
        assert (await send(session, a, create("order-polled")))[0] == 201
        assert (await send(session, a, create("order-unpolled")))[0] == 201
        assert (await send(session, b, poll("order-polled")))[0] == 200
        assert queued(redis, due_key) == 2
        # Each replica checks the queue every 1.25 s; wait until both entries were taken out.
        deadline = time.monotonic() + DEADLINE_SECONDS
        while queued(redis, due_key) > 0:
            assert time.monotonic() < deadline, "the created payments were never claimed"
            await asyncio.sleep(0.1)
        reported = await _unpolled_reports(session, proxies)
    assert reported == ["order-unpolled"]


def queued(redis: RedisServer, key: str) -> int:
    """How many created payments wait in the never-polled queue (ZCARD)."""
    answer = command(redis.port, "ZCARD", key)
    assert answer is not None
    assert answer.startswith(":")
    return int(answer[1:])


async def _unpolled_reports(
    session: aiohttp.ClientSession, proxies: list[ProxyProcess]
) -> list[str]:
    """The references reported never polled, by every replica, once each replica's counter
    and log agree (the log line is written as the counter moves)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        counted = 0.0
        for proxy in proxies:
            counted += total(await metrics(session, proxy), "vipps_proxy_payments_unpolled_total")
        lines = [
            orjson.loads(line)
            for proxy in proxies
            for line in proxy.stdout.splitlines()
            if b'"payment_unpolled"' in line
        ]
        if len(lines) == counted:
            return [line["reference"] for line in lines]
        assert time.monotonic() < deadline, "log lines and counters never agreed"
        await asyncio.sleep(0.05)


async def _traffic(
    session: aiohttp.ClientSession, proxy: ProxyProcess, n: int, tag: str
) -> list[float]:
    """`n` polls of one payment (catalogued, so the state is asked each time); their seconds."""
    seconds = []
    for i in range(n):
        status, _, elapsed = await send(session, proxy, poll(f"order-{tag}-{i}"))
        assert status == 200  # forwarded: the stand-in answers every poll with 200
        seconds.append(elapsed)
    return seconds


async def _state_is_used(session: aiohttp.ClientSession, proxy: ProxyProcess, n: int) -> bool:
    """Whether an over-capture of a fresh payment is blocked (so the ledger is read again)."""
    reference = f"order-back-{n}"
    if (await send(session, proxy, create(reference)))[0] != 200:  # the stand-in's default
        return False
    status, headers, _ = await send(session, proxy, capture(reference, 60000, f"back-{n}"))
    return (
        status == 400 and headers.get("Audit-Proxy-Findings") == "ledger.capture_exceeds_reserved"
    )


async def _until_state_is_used(
    session: aiohttp.ClientSession, proxy: ProxyProcess, first: int
) -> int:
    """Try `_state_is_used` until it is (bounded); how many tries it took."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    n = first
    while not await _state_is_used(session, proxy, n):
        assert time.monotonic() < deadline, "the state was never used again"
        n += 1
        await asyncio.sleep(0.2)
    return n - first + 1


async def test_redis_paused_then_killed_mid_traffic_fails_open_and_recovers(
    aiohttp_server: AiohttpServer, redis: RedisServer, figures: Figures
) -> None:
    """Redis stopped (SIGSTOP) and later killed while requests flow: every request forwarded,
    each state round trip cut at the timeout, the failures counted, /readyz ready throughout,
    and, once Redis runs again, the ledger blocks an over-capture again."""
    standin = StandIn()
    server = await aiohttp_server(standin.app(), host="127.0.0.1")
    timeout_ms = 100
    async with (
        replicas(
            str(server.make_url("/")), redis.url, 1,
            VIPPS_PROXY_STATE_TIMEOUT_MS=str(timeout_ms),
        ) as (proxy,),
        aiohttp.ClientSession() as session,
    ):  # fmt: skip
        assert await _state_is_used(session, proxy, 0)
        before = await _traffic(session, proxy, 20, "before")

        redis.pause()
        try:
            paused = await _traffic(session, proxy, 20, "paused")
            async with session.get(proxy.admin + "/readyz") as resp:
                assert resp.status == 200
        finally:
            redis.resume()
        timeouts = (await metrics(session, proxy)).get(
            'vipps_proxy_state_errors_total{reason="timeout",store="payments"}', 0.0
        )
        assert timeouts >= 1

        tries = [await _until_state_is_used(session, proxy, 1)]

        redis.stop()
        killed = await _traffic(session, proxy, 20, "killed")
        after_kill = await metrics(session, proxy)
        assert total(after_kill, 'vipps_proxy_state_errors_total{reason="connection"') >= 1
        assert total(after_kill, 'vipps_proxy_state_errors_total{reason="circuit_open"') >= 1

        redis.start()  # the same port, empty: what was shared is gone, the proxy goes on
        tries.append(await _until_state_is_used(session, proxy, 1000))
        samples = await metrics(session, proxy)
    # Every state round trip ended within the next bucket above the timeout (0.25 s).
    count = samples['vipps_proxy_state_duration_seconds_count{operation="load"}']
    within = samples['vipps_proxy_state_duration_seconds_bucket{le="0.25",operation="load"}']
    assert within == count
    # The requests while Redis was stopped took at most the timeout more than before, give or
    # take the noise of a shared machine.
    added = max(paused) - statistics.median(before)
    assert added < timeout_ms / 1000 + 0.4
    assert max(killed) < max(before) + timeout_ms / 1000 + 0.4
    figures.note(
        "state outage",
        f"Redis paused: slowest request {max(paused) * 1000:.0f} ms (median before "
        f"{statistics.median(before) * 1000:.1f} ms, state timeout {timeout_ms} ms); "
        f"{int(timeouts)} timeouts counted; state used again after {tries[0]} tries once "
        f"resumed and {tries[1]} once restarted (breaker open 5 s)",
    )


CANARY_PASSWORD = "canary-state-password-7f3a"


async def test_start_up_line_names_the_backend_and_never_its_password(
    aiohttp_server: AiohttpServer, redis: RedisServer
) -> None:
    """A URL whose password Redis refuses: the proxy starts, says which backend it uses with the
    password replaced and that it did not answer, forwards, counts `auth`, and its output never
    holds the password."""
    standin = StandIn()
    server = await aiohttp_server(standin.app(), host="127.0.0.1")
    url = f"redis://proxy:{CANARY_PASSWORD}@127.0.0.1:{redis.port}/0"
    async with (
        replicas(str(server.make_url("/")), url, 1) as (proxy,),
        aiohttp.ClientSession() as session,
    ):
        assert (await send(session, proxy, poll("order-auth")))[0] == 200
        samples = await metrics(session, proxy)
    assert total(samples, 'vipps_proxy_state_errors_total{reason="auth"') >= 1
    records = [orjson.loads(line) for line in proxy.stdout.splitlines() if line.startswith(b"{")]
    (started,) = [r for r in records if r.get("event") == "started"]
    assert started["state"] == f"redis://proxy:***@127.0.0.1:{redis.port}/0"
    assert started["state_reachable"] is False
    assert CANARY_PASSWORD.encode() not in proxy.stdout + proxy.stderr
