"""Payment-level state on a real Redis, shared by several proxies in one process.

Each proxy here is a full application with its own state object, as a replica would have;
what they share is only the Redis. The tests with separate processes are in
tests/hardening/test_replicas.py.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from policies.audit.shared_state import environment_tag
from proxy.app import build_state, create_admin_app, create_app, report_unpolled
from proxy.config import Settings
from proxy.state_snapshot import Breaker
from tests.conftest import (
    MERCHANT_HEADERS,
    AiohttpClient,
    LogLines,
    Proxy,
    ProxyFactory,
)
from tests.redis_server import RedisServer, free_port
from tests.samples import (
    EPAYMENT_CAPTURE,
    EPAYMENT_CREATE_PLAIN,
    EPAYMENT_GET,
    RECURRING_CHARGE,
    Sample,
)
from tests.standin import Reply, StandIn

JSON = {"Content-Type": "application/json"}
# What these tests check does not depend on how fast Redis answers on a loaded machine; the
# default timeout is tested where Redis is made slow on purpose.
ROOMY_MS = 1000
CREATED = Reply(201, b'{"reference":"order-123456","redirectUrl":"https://x"}', JSON)


def capture(value: int, key: str) -> Sample:
    body = orjson.loads(EPAYMENT_CAPTURE.body)
    body["modificationAmount"]["value"] = value
    return EPAYMENT_CAPTURE.with_body(orjson.dumps(body)).with_headers(Idempotency_Key=key)


def create(reference: str) -> Sample:
    body = orjson.loads(EPAYMENT_CREATE_PLAIN.body)
    body["reference"] = reference
    return EPAYMENT_CREATE_PLAIN.with_body(orjson.dumps(body)).with_headers(
        Idempotency_Key=f"create-{reference}"
    )


def poll(reference: str) -> Sample:
    return Sample("GET", f"/epayment/v1/payments/{reference}", EPAYMENT_GET.headers)


async def send(proxy: Proxy, sample: Sample) -> tuple[int, dict[str, str]]:
    async with proxy.client.request(
        sample.method, sample.path, data=sample.body or None, headers=sample.headers
    ) as resp:
        await resp.read()
        return resp.status, dict(resp.headers)


@pytest.fixture
async def redis(redis_state: RedisServer) -> Any:
    client = Redis.from_url(redis_state.url)
    yield client
    await client.aclose()


async def test_settings_name_the_backend_without_its_password() -> None:
    """The start-up line names Redis with the password replaced; empty means in-process."""
    assert Settings().state_backend == "in-process"
    named = Settings(state_url="redis://proxy:s3cret-pass@redis.example:6380/2").state_backend
    assert named == "redis://proxy:***@redis.example:6380/2"
    assert "s3cret" not in named
    assert "s3cret" not in repr(Settings(state_url="redis://proxy:s3cret-pass@redis:6379/0"))
    with pytest.raises(ValueError, match="redis://"):
        Settings(state_url="http://redis:6379")


async def test_state_lives_in_one_hash_tagged_key_per_payment_with_a_ttl(
    make_proxy: ProxyFactory, redis_state: RedisServer, redis: Any
) -> None:
    """A create and a capture leave one key, named by version, environment and payment (in
    braces: one Cluster slot), with a time to live no longer than the setting."""
    proxy = await make_proxy(
        state_url=redis_state.url, state_ttl_seconds=600, state_timeout_ms=ROOMY_MS
    )
    proxy.standin.reply(CREATED)
    assert (await send(proxy, create("order-ttl-1")))[0] == 201
    assert (await send(proxy, capture(1000, "cap-ttl-1")))[0] == 200
    env = environment_tag(proxy.state.settings.upstream_base)
    keys = sorted(k.decode() for k in await redis.keys(f"vap:v1:{{{env}.*"))
    assert keys, "nothing was written for this environment"
    for key in keys:
        assert key.startswith(f"vap:v1:{{{env}.")
        assert key.endswith("}")
        ttl = await redis.pttl(key)
        assert 0 < ttl <= 600_000
    fields = {f.decode() for f in await redis.hkeys(keys[0])} | {
        f.decode() for k in keys[1:] if await redis.type(k) == b"hash" for f in await redis.hkeys(k)
    }
    assert {"ledger", "poll"} <= fields
    assert "order-ttl-1" not in "".join(keys)  # references never appear in key names
    assert proxy.sample("vipps_proxy_state_duration_seconds_count", operation="load") >= 2
    assert proxy.sample("vipps_proxy_state_duration_seconds_count", operation="commit") >= 2


async def test_environments_never_share_a_key() -> None:
    """The test and production APIs get different key prefixes."""
    assert environment_tag("https://apitest.vipps.no") != environment_tag("https://api.vipps.no")
    assert environment_tag("https://api.vipps.no/") == environment_tag("https://api.vipps.no")


async def test_two_concurrent_captures_through_two_proxies_do_not_both_pass(
    make_proxy: ProxyFactory, redis_state: RedisServer
) -> None:
    """49,900 reserved; 30,000 captured through each of two proxies at the same moment: one is
    forwarded, the other blocked, because the first is counted while in flight."""
    first = await make_proxy(state_url=redis_state.url, state_timeout_ms=ROOMY_MS)
    second = await make_proxy(state_url=redis_state.url, state_timeout_ms=ROOMY_MS)
    standin = first.standin
    standin.reply(CREATED, Reply(200, b"{}", JSON, delay=0.5), Reply(200, b"{}", JSON, delay=0.5))
    assert (await send(first, EPAYMENT_CREATE_PLAIN))[0] == 201
    results = await asyncio.gather(
        send(first, capture(30000, "cap-a")), send(second, capture(30000, "cap-b"))
    )
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 400]
    blocked = next(headers for status, headers in results if status == 400)
    assert blocked["Audit-Proxy-Findings"] == "ledger.capture_exceeds_reserved"
    assert len(standin.received) == 2  # the create and one capture
    for proxy in (first, second):
        assert (
            proxy.sample("vipps_proxy_state_errors_total", store="payments", reason="timeout") == 0
        )


async def test_in_process_state_lets_both_concurrent_captures_pass(
    make_proxy: ProxyFactory,
) -> None:
    """The same two captures with in-process state: each replica sees half, both pass. This is
    what the shared state is for (and shows the test above can fail)."""
    first = await make_proxy()
    second = await make_proxy()
    first.standin.reply(CREATED, CREATED)
    assert (await send(first, EPAYMENT_CREATE_PLAIN))[0] == 201
    assert (await send(second, EPAYMENT_CREATE_PLAIN))[0] == 201
    results = await asyncio.gather(
        send(first, capture(30000, "cap-a")), send(second, capture(30000, "cap-b"))
    )
    assert sorted(status for status, _ in results) == [200, 200]


async def test_a_capture_through_one_proxy_counts_on_the_other(
    make_proxy: ProxyFactory, redis_state: RedisServer
) -> None:
    """Create on A, capture on B, over-capture on A: blocked; the in-flight hold is released."""
    first = await make_proxy(state_url=redis_state.url, state_timeout_ms=ROOMY_MS)
    second = await make_proxy(state_url=redis_state.url, state_timeout_ms=ROOMY_MS)
    first.standin.reply(CREATED)
    assert (await send(first, EPAYMENT_CREATE_PLAIN))[0] == 201
    assert (await send(second, capture(30000, "cap-1")))[0] == 200
    status, headers = await send(first, capture(20000, "cap-2"))
    assert status == 400
    assert headers["Audit-Proxy-Findings"] == "ledger.capture_exceeds_reserved"
    assert (await send(first, capture(19900, "cap-3")))[0] == 200  # exactly what is left


async def test_never_polled_is_reported_once_across_replicas_and_never_when_polled(
    aiohttp_client: AiohttpClient, redis_state: RedisServer, upstream: Any, standin: StandIn
) -> None:
    """Created on A, polled on B: never reported. Created on A, never polled: reported by
    exactly one of the two replicas, once."""
    now = [time.time()]
    settings = Settings(
        upstream_url=str(upstream.make_url("/")),
        poll_audit_window_seconds=60,
        state_url=redis_state.url,
        state_timeout_ms=ROOMY_MS,
    )
    proxies = []
    for _ in range(2):
        log = LogLines()
        state = build_state(
            settings, registry=CollectorRegistry(), sink=log, wall_clock=lambda: now[0]
        )
        client = await aiohttp_client(create_app(settings, state), headers=MERCHANT_HEADERS)
        proxies.append(Proxy(client, state, standin, log))
    first, second = proxies
    standin.reply(
        Reply(201, b'{"reference":"order-polled"}', JSON),
        Reply(201, b'{"reference":"order-unpolled"}', JSON),
    )
    assert (await send(first, create("order-polled")))[0] == 201
    assert (await send(first, create("order-unpolled")))[0] == 201
    now[0] += 10
    assert (await send(second, poll("order-polled")))[0] == 200
    shared = [p.state.shared for p in proxies]
    assert all(s is not None for s in shared)
    assert [len(await s.due_unpolled()) for s in shared if s is not None] == [0, 0]  # not due
    now[0] += 61
    found = await asyncio.gather(*(s.due_unpolled() for s in shared if s is not None))
    counts = [report_unpolled(p.state, due) for p, due in zip(proxies, found, strict=True)]
    assert sorted(counts) == [0, 1]
    reported = [r for p in proxies for r in p.log.of("payment_unpolled")]
    assert [r["reference"] for r in reported] == ["order-unpolled"]
    assert [len(await s.due_unpolled()) for s in shared if s is not None] == [0, 0]  # once


async def test_redis_down_fails_open_counts_and_stays_ready(
    make_proxy: ProxyFactory, aiohttp_client: AiohttpClient
) -> None:
    """Nobody listening on the state port: every request is still judged by the other rules and
    forwarded, the errors are counted, the breaker then skips Redis, and /readyz says ready."""
    proxy = await make_proxy(state_url=f"redis://127.0.0.1:{free_port()}/0")
    proxy.standin.reply(CREATED)
    assert (await send(proxy, EPAYMENT_CREATE_PLAIN))[0] == 201
    # Over the reservation, but without state the ledger rule has nothing to judge by.
    assert (await send(proxy, capture(60000, "cap-1")))[0] == 200
    assert (await send(proxy, capture(60000, "cap-2")))[0] == 200
    body = orjson.loads(EPAYMENT_CREATE_PLAIN.body)
    body["amount"]["value"] = 499.5
    status, headers = await send(proxy, EPAYMENT_CREATE_PLAIN.with_body(orjson.dumps(body)))
    assert status == 400  # the stateless rules still run
    assert headers["Audit-Proxy-Findings"] == "amount.not_integer"
    assert len(proxy.standin.received) == 3
    failed = proxy.sample("vipps_proxy_state_errors_total", store="payments", reason="connection")
    skipped = proxy.sample(
        "vipps_proxy_state_errors_total", store="payments", reason="circuit_open"
    )
    assert failed == 3  # then the breaker opened
    assert skipped >= 1
    admin = await aiohttp_client(create_admin_app(proxy.state))
    async with admin.get("/readyz") as resp:
        assert resp.status == 200


def test_breaker_opens_after_failures_in_a_row_and_tries_again() -> None:
    """Three failures in a row open it for the set time; one success closes it."""
    now = [0.0]
    breaker = Breaker(failures=3, open_seconds=5.0, clock=lambda: now[0])
    breaker.failure()
    breaker.failure()
    assert not breaker.is_open
    breaker.failure()
    assert breaker.is_open
    now[0] = 5.1
    assert not breaker.is_open  # time to try again
    breaker.failure()
    assert breaker.is_open  # the try failed: open again at once
    now[0] = 10.2
    breaker.success()
    breaker.failure()
    assert not breaker.is_open


async def test_concurrent_polls_through_two_proxies_are_all_counted(
    make_proxy: ProxyFactory, redis_state: RedisServer, redis: Any
) -> None:
    """Twenty polls of one payment at once, half through each proxy: the writes collide, are
    judged again, and none is lost: the poll record and the rate window hold all twenty."""
    first = await make_proxy(state_url=redis_state.url, state_timeout_ms=ROOMY_MS)
    second = await make_proxy(state_url=redis_state.url, state_timeout_ms=ROOMY_MS)
    sent = await asyncio.gather(
        *(send(proxy, poll("order-many")) for proxy in [first, second] * 10)
    )
    assert [status for status, _ in sent] == [200] * 20
    env = environment_tag(first.state.settings.upstream_base)
    (key,) = await redis.keys(f"vap:v1:{{{env}.*")
    fields = await redis.hgetall(key)
    assert orjson.loads(fields[b"poll"])["n"] == 20
    (window,) = [v for f, v in fields.items() if f.startswith(b"r:")]
    assert len(orjson.loads(window)["s"]) == 20
    for reason in ("conflict", "busy"):
        given_up = sum(
            p.sample("vipps_proxy_state_errors_total", store="payments", reason=reason)
            for p in (first, second)
        )
        assert given_up == 0, reason  # judged again often enough, never given up


async def test_keys_of_calls_about_no_payment_live_in_keys_of_their_own(
    make_proxy: ProxyFactory, redis_state: RedisServer, redis: Any
) -> None:
    """Recurring charges without an orderId are about no payment the proxy can name before the
    answer: their rate windows share the agreement's key, each idempotency key has a key of its
    own (so they do not pile up under one), and reuse with another body is still a conflict."""
    first = await make_proxy(state_url=redis_state.url, state_timeout_ms=ROOMY_MS)
    second = await make_proxy(state_url=redis_state.url, state_timeout_ms=ROOMY_MS)
    body = orjson.loads(RECURRING_CHARGE.body)
    del body["orderId"]

    def charge(key: str, amount: int) -> Sample:
        changed = {**body, "amount": amount}
        return RECURRING_CHARGE.with_body(orjson.dumps(changed)).with_headers(Idempotency_Key=key)

    first.standin.reply(*(Reply(202, b"{}", JSON) for _ in range(2)))
    assert (await send(first, charge("charge-a", 19900)))[0] == 202
    assert (await send(second, charge("charge-b", 19900)))[0] == 202
    status, headers = await send(second, charge("charge-a", 29900))
    assert status == 409
    assert headers["Audit-Proxy-Findings"] == "idempotency.key_reused"
    env = environment_tag(first.state.settings.upstream_base)
    fields = {
        key.decode(): sorted(f.decode()[:2] for f in await redis.hkeys(key))
        for key in await redis.keys(f"vap:v1:{{{env}.*")
    }
    own = [k for k, names in fields.items() if names == ["i"]]
    shared = [k for k, names in fields.items() if names == ["r:", "r:"]]
    assert len(own) == 2
    assert len(shared) == 1
    assert len(fields) == 3
