"""Metrics and audit log: every call measured, every error body logged, nothing secret leaked."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient
from prometheus_client import generate_latest

from proxy.metrics import ERROR_CODE_CAP
from tests.conftest import Proxy, ProxyFactory
from tests.samples import EPAYMENT_CAPTURE, EPAYMENT_CREATE
from tests.standin import ECOM_ERRORS, EPAYMENT_PROBLEM, Reply

CANARY_TOKEN = "eyJCANARYTOKEN.abc.def"
CANARY_KEY = "canary-subscription-key-4242"
CANARY_SECRET = "canary-client-secret-777"
CANARY_CLIENT_ID = "canary-client-id-3131"
CANARY_PHONE = "4798765432"
SECRETS = (CANARY_TOKEN, CANARY_KEY, CANARY_SECRET, CANARY_CLIENT_ID, CANARY_PHONE)

HEADERS = {
    "Authorization": f"Bearer {CANARY_TOKEN}",
    "Ocp-Apim-Subscription-Key": CANARY_KEY,
    "Merchant-Serial-Number": "123456",
    "Idempotency-Key": "idem-1",
    "Content-Type": "application/json",
}


async def test_vipps_errors_are_counted_with_their_error_code(proxy: Proxy) -> None:
    """ePayment's ErrorCode and eCom's errorCode become the error_code label."""
    proxy.standin.reply(
        Reply(400, EPAYMENT_PROBLEM, {"Content-Type": "application/problem+json"}),
        Reply(400, ECOM_ERRORS, {"Content-Type": "application/json;charset=UTF-8"}),
    )
    capture = EPAYMENT_CAPTURE
    await (await proxy.client.post(capture.path, data=capture.body, headers=capture.headers)).read()
    await (await proxy.client.get("/ecomm/v2/payments/order-1/details")).read()
    assert proxy.sample(
        "vipps_proxy_vipps_errors_total",
        api="epayment", operation="capture_payment", code="400", error_code="6080",
    ) == 1  # fmt: skip
    assert proxy.sample(
        "vipps_proxy_vipps_errors_total",
        api="ecom", operation="get_payment_details", code="400", error_code="81",
    ) == 1  # fmt: skip
    first, second = proxy.log.of("request")
    assert first["upstream_trace_id"] == "00-813b63975adcaaeef2b0ec7c103c40e3-706492e906541d31-01"
    assert first["vipps_error_code"] == "6080"
    assert first["error_body"]["json"]["title"] == "Cannot capture before reservation"
    assert second["error_body"]["json"][0]["errorCode"] == "81"


async def test_successful_requests_are_logged_once_without_body(proxy: Proxy) -> None:
    """A 2xx gives one info record with durations and no body."""
    await (await proxy.client.get("/epayment/v1/payments/order-123456")).read()
    (record,) = proxy.log.records
    assert record["level"] == "info"
    assert record["event"] == "request"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["ts"])
    assert record["operation"] == "get_payment"
    assert record["duration_ms"] >= record["upstream_ms"] > 0
    assert "error_body" not in record


async def test_non_json_error_bodies_are_logged_as_capped_text(make_proxy: ProxyFactory) -> None:
    """An HTML 503 from a gateway is logged as text, cut at VIPPS_PROXY_LOG_BODY_MAX_BYTES."""
    proxy = await make_proxy(log_body_max_bytes=64)
    proxy.standin.reply(
        Reply(503, b"<html>" + b"x" * 500 + b"</html>", {"Content-Type": "text/html"})
    )
    await (await proxy.client.get("/epayment/v1/payments/order-123456")).read()
    (record,) = proxy.log.of("request")
    assert record["level"] == "error"
    assert record["error_body"]["truncated"] is True
    assert len(record["error_body"]["text"]) == 64
    assert proxy.sample(
        "vipps_proxy_vipps_errors_total",
        api="epayment", operation="get_payment", code="503", error_code="none",
    ) == 1  # fmt: skip


async def test_metric_labels_never_carry_references(
    proxy: Proxy, admin_client: TestClient[Any, Any]
) -> None:
    """Many distinct references and error codes leave the label sets bounded."""
    for i in range(150):
        proxy.standin.reply(
            Reply(
                400,
                orjson.dumps({"errorCode": f"weird code {i}"}),
                {"Content-Type": "application/json"},
            ),
            Reply(
                400, orjson.dumps([{"errorCode": f"E{i}"}]), {"Content-Type": "application/json"}
            ),
        )
        await (await proxy.client.get(f"/epayment/v1/payments/ref-unique-{i:06d}")).read()
        await (await proxy.client.get(f"/ecomm/v2/payments/order-{i}/details")).read()
    exposition = (await (await admin_client.get("/metrics")).read()).decode()
    assert "ref-unique" not in exposition
    assert "order-1" not in exposition
    assert "weird" not in exposition
    series = [
        line
        for line in exposition.splitlines()
        if line.startswith("vipps_proxy_vipps_errors_total")
    ]
    epayment = [line for line in series if 'api="epayment"' in line]
    assert len(epayment) == 1  # codes that are not code-shaped fold into "other"
    # Code-shaped values are kept up to the cap, then fold into "other" too.
    assert len(series) == 1 + ERROR_CODE_CAP + 1


async def test_canary_secrets_never_reach_logs_or_metrics(
    proxy: Proxy, admin_client: TestClient[Any, Any]
) -> None:
    """Secret headers, tokens, client secrets and phone numbers appear in no log line or metric."""
    body = orjson.loads(EPAYMENT_CREATE.body)
    body["customer"]["phoneNumber"] = CANARY_PHONE
    create = EPAYMENT_CREATE.with_body(orjson.dumps(body)).with_headers(**HEADERS)
    token_body = orjson.dumps(
        {"access_token": CANARY_TOKEN, "token_type": "Bearer", "expires_in": "3600"}
    )
    echo_secrets = orjson.dumps(
        {"title": "Bad", "detail": f"phone +47 987 65 432 and {CANARY_PHONE}",
         "access_token": CANARY_TOKEN, "client_secret": CANARY_SECRET,
         "customer": {"phoneNumber": CANARY_PHONE}}
    )  # fmt: skip
    proxy.standin.reply(
        Reply(201, b"{}"),
        Reply(400, echo_secrets, {"Content-Type": "application/problem+json"}),
        Reply(500, echo_secrets, {"Content-Type": "application/json"}),
        Reply(200, token_body),
        Reply(401, echo_secrets),
    )
    for _ in range(3):
        await (
            await proxy.client.post(create.path, data=create.body, headers=create.headers)
        ).read()
    token_headers = {
        "client_id": CANARY_CLIENT_ID,
        "client_secret": CANARY_SECRET,
        "Ocp-Apim-Subscription-Key": CANARY_KEY,
    }
    await (await proxy.client.post("/accesstoken/get", headers=token_headers)).read()
    await (await proxy.client.post("/accesstoken/get", headers=token_headers)).read()
    await (
        await proxy.client.get(
            f"/access-management-1.0/access/oauth2/auth?client_id={CANARY_CLIENT_ID}&code={CANARY_SECRET}"
        )
    ).read()
    assert len(proxy.log.of("request")) == 6
    exposition = (
        generate_latest(proxy.registry).decode()
        + (await (await admin_client.get("/metrics")).read()).decode()
    )
    everything = proxy.log.text() + exposition
    for secret in SECRETS:
        assert secret not in everything, secret
    assert "987 65 432" not in everything
    masked = proxy.log.of("request")[1]["error_body"]["json"]
    assert masked["access_token"] == "[redacted]"
    assert masked["customer"]["phoneNumber"] == "******32"


@pytest.mark.parametrize("path", ["/livez", "/readyz"])
async def test_health_endpoints(admin_client: TestClient[Any, Any], path: str) -> None:
    """Liveness and readiness answer 200 while the proxy runs, without asking Vipps."""
    async with admin_client.get(path) as resp:
        assert resp.status == 200


async def test_readiness_turns_false_when_draining(
    proxy: Proxy, admin_client: TestClient[Any, Any]
) -> None:
    """Once draining starts, /readyz answers 503 so no new traffic is routed here."""
    proxy.state.lifecycle.draining = True
    async with admin_client.get("/readyz") as resp:
        assert resp.status == 503


async def test_metrics_exposition_has_the_contract(
    proxy: Proxy, admin_client: TestClient[Any, Any]
) -> None:
    """The admin /metrics lists every contract metric, with build info and in-flight gauge."""
    await (await proxy.client.get("/epayment/v1/payments/order-123456")).read()
    text = (await (await admin_client.get("/metrics")).read()).decode()
    for name in (
        "vipps_proxy_requests_total",
        "vipps_proxy_request_duration_seconds_bucket",
        "vipps_proxy_upstream_duration_seconds_bucket",
        "vipps_proxy_in_flight_requests",
        "vipps_proxy_build_info",
    ):
        assert name in text
    assert (
        'vipps_proxy_requests_total{api="epayment",code="200",method="GET",'
        'operation="get_payment",outcome="forwarded"} 1.0' in text
    )


@pytest.mark.parametrize(
    ("accept", "content_type", "openmetrics"),
    [
        pytest.param("", "text/plain", False, id="prometheus-text"),
        pytest.param(
            "application/openmetrics-text; version=1.0.0",
            "application/openmetrics-text",
            True,
            id="openmetrics",
        ),
    ],
)
async def test_metrics_answer_in_the_format_the_scraper_asks_for(
    proxy: Proxy,
    admin_client: TestClient[Any, Any],
    accept: str,
    content_type: str,
    openmetrics: bool,
) -> None:
    """/metrics speaks Prometheus text by default and OpenMetrics when asked, gzipped on request."""
    await (await proxy.client.get("/epayment/v1/payments/order-123456")).read()
    headers = {"Accept-Encoding": "gzip", **({"Accept": accept} if accept else {})}
    async with admin_client.get("/metrics", headers=headers) as resp:
        assert resp.status == 200
        assert resp.content_type == content_type
        assert resp.headers["Content-Encoding"] == "gzip"
        text = (await resp.read()).decode()  # the client decompresses
    assert "vipps_proxy_requests_total{" in text
    # OpenMetrics ends with an EOF marker; the Prometheus text format has none.
    assert (text.rstrip("\n").splitlines()[-1] == "# EOF") is openmetrics
