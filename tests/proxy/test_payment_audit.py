"""Payment-level audit end to end: ledger, idempotency, rate limits, polling, via the proxy."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry, generate_latest

from proxy.app import build_state, create_app, report_unpolled
from proxy.config import Settings
from tests.conftest import MERCHANT_HEADERS, AiohttpClient, LogLines, Proxy, ProxyFactory
from tests.redis_server import RedisServer
from tests.samples import EPAYMENT_CAPTURE, EPAYMENT_CREATE, EPAYMENT_GET, EPAYMENT_REFUND, Sample
from tests.standin import Reply, StandIn

JSON = {"Content-Type": "application/json"}


@pytest.fixture(params=["in-process", "redis"])
async def proxy(request: pytest.FixtureRequest, make_proxy: ProxyFactory) -> Proxy:
    """The proxy with its default rules, its payment-level state in-process or on Redis."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_state")
        # A roomy timeout: these tests are about the rules, not about a loaded machine's Redis.
        return await make_proxy(state_url=server.url, state_timeout_ms=1000)
    return await make_proxy()


def aggregate(authorized: int, captured: int = 0, refunded: int = 0) -> bytes:
    """An ePayment GET payment answer with Vipps' own figures."""

    def amount(value: int) -> dict[str, Any]:
        return {"currency": "NOK", "value": value}

    return orjson.dumps(
        {
            "reference": "order-123456",
            "state": "AUTHORIZED",
            "aggregate": {
                "authorizedAmount": amount(authorized),
                "capturedAmount": amount(captured),
                "refundedAmount": amount(refunded),
                "cancelledAmount": amount(0),
            },
        }
    )


def with_amount(sample: Sample, value: int, key: str) -> Sample:
    body = orjson.loads(sample.body)
    body["modificationAmount"]["value"] = value
    return sample.with_body(orjson.dumps(body)).with_headers(Idempotency_Key=key)


async def send(proxy: Proxy, sample: Sample) -> tuple[int, Any, dict[str, str]]:
    async with proxy.client.request(
        sample.method, sample.path, data=sample.body or None, headers=sample.headers
    ) as resp:
        raw = await resp.read()
        return resp.status, orjson.loads(raw) if raw else None, dict(resp.headers)


async def test_payment_lifecycle_blocks_over_capture_and_over_refund(proxy: Proxy) -> None:
    """Create, poll, capture part, over-capture (blocked), refund, over-refund (blocked)."""
    standin = proxy.standin
    standin.reply(
        Reply(201, b'{"reference":"order-123456","redirectUrl":"https://x"}', JSON),
        Reply(200, aggregate(49900), JSON),
        Reply(200, aggregate(49900, captured=30000), JSON),
        Reply(200, aggregate(49900, captured=30000, refunded=10000), JSON),
    )
    assert (await send(proxy, EPAYMENT_CREATE))[0] == 201
    assert (await send(proxy, EPAYMENT_GET))[0] == 200
    assert (await send(proxy, with_amount(EPAYMENT_CAPTURE, 30000, "cap-1")))[0] == 200

    status, body, headers = await send(proxy, with_amount(EPAYMENT_CAPTURE, 30000, "cap-2"))
    assert status == 400
    assert headers["Audit-Proxy-Findings"] == "ledger.capture_exceeds_reserved"
    assert "49900" in str(body["extraDetails"])

    assert (await send(proxy, with_amount(EPAYMENT_REFUND, 10000, "ref-1")))[0] == 200
    status, _, headers = await send(proxy, with_amount(EPAYMENT_REFUND, 25000, "ref-2"))
    assert status == 400
    assert headers["Audit-Proxy-Findings"] == "ledger.refund_exceeds_captured"
    assert len(standin.received) == 4  # the two blocked ones never arrived
    labels = {"api": "epayment", "action": "blocked"}
    assert proxy.sample(
        "vipps_proxy_policy_findings_total",
        **labels, operation="capture_payment", rule="ledger.capture_exceeds_reserved",
    ) == 1  # fmt: skip


async def test_unknown_payment_is_never_blocked(proxy: Proxy) -> None:
    """A capture for a payment the proxy never saw is forwarded, whatever its amount."""
    status, _, _ = await send(proxy, with_amount(EPAYMENT_CAPTURE, 6_000_000, "cap-x"))
    assert status == 200
    assert len(proxy.standin.received) == 1


async def test_idempotency_key_reused_with_another_body_gets_409(proxy: Proxy) -> None:
    """Same key, different body: 409 like Vipps; same key, same body: a counted retry."""
    first = with_amount(EPAYMENT_CAPTURE, 1000, "same-key")
    assert (await send(proxy, first))[0] == 200
    assert (await send(proxy, first))[0] == 200
    status, _, headers = await send(proxy, with_amount(EPAYMENT_CAPTURE, 2000, "same-key"))
    assert status == 409
    assert headers["Audit-Proxy-Findings"] == "idempotency.key_reused"
    assert len(proxy.standin.received) == 2
    assert proxy.sample(
        "vipps_proxy_idempotent_retries_total", api="epayment", operation="capture_payment"
    ) == 1  # fmt: skip


async def test_sixth_capture_in_a_minute_is_answered_429_locally(proxy: Proxy) -> None:
    """Vipps allows 5 captures a minute per payment; the sixth gets 429 and Retry-After here."""
    for i in range(5):
        assert (await send(proxy, with_amount(EPAYMENT_CAPTURE, 100, f"burst-{i}")))[0] == 200
    status, body, headers = await send(proxy, with_amount(EPAYMENT_CAPTURE, 100, "burst-5"))
    assert status == 429
    assert 1 <= int(headers["Retry-After"]) <= 60
    assert body["status"] == 429
    assert len(proxy.standin.received) == 5
    assert proxy.sample(
        "vipps_proxy_rate_limited_total", api="epayment", operation="capture_payment"
    ) == 1  # fmt: skip


async def test_upstream_429_is_counted_with_its_retry_after(proxy: Proxy) -> None:
    """A 429 from Vipps itself is counted and its Retry-After logged."""
    proxy.standin.reply(Reply(429, b'{"statusCode":429}', {**JSON, "Retry-After": "30"}))
    assert (await send(proxy, EPAYMENT_GET))[0] == 429
    assert proxy.sample(
        "vipps_proxy_upstream_rate_limited_total", api="epayment", operation="get_payment"
    ) == 1  # fmt: skip
    assert proxy.log.of("request")[0]["retry_after"] == "30"


async def test_payment_never_polled_is_reported_after_the_window(
    aiohttp_client: AiohttpClient, upstream: TestServer, standin: StandIn
) -> None:
    """A payment created but never polled becomes polling.never_polled once the window passes."""
    now = [1000.0]
    settings = Settings(upstream_url=str(upstream.make_url("/")), poll_audit_window_seconds=60)
    log = LogLines()
    state = build_state(settings, registry=CollectorRegistry(), sink=log, clock=lambda: now[0])
    client = await aiohttp_client(create_app(settings, state), headers=MERCHANT_HEADERS)
    standin.reply(Reply(201, b'{"reference":"order-123456"}', JSON))
    create = EPAYMENT_CREATE
    async with client.post(create.path, data=create.body, headers=create.headers) as resp:
        assert resp.status == 201
    assert report_unpolled(state) == 0
    now[0] += 61
    assert report_unpolled(state) == 1
    assert report_unpolled(state) == 0  # reported once
    (record,) = log.of("payment_unpolled")
    assert record["rule"] == "polling.never_polled"
    assert record["reference"] == "order-123456"
    assert state.registry.get_sample_value(
        "vipps_proxy_payments_unpolled_total", {"api": "epayment"}
    ) == 1  # fmt: skip
    exposition = generate_latest(state.registry).decode()
    assert 'vipps_proxy_state_entries{store="polling"} 1.0' in exposition
    assert "vipps_proxy_state_evictions_total" in exposition
