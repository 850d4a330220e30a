"""A real Prometheus server scrapes the proxy's admin port; its HTTP API shows the series.

Needs the Debian `prometheus` package. Skips when it is absent, except under CI=true.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from proxy.app import create_admin_app
from tests.binaries import require_binary
from tests.conftest import AiohttpServer, Proxy
from tests.proxy.test_upstream_faults import free_port
from tests.samples import ECOM_INITIATE, EPAYMENT_CAPTURE, EPAYMENT_CREATE
from tests.standin import EPAYMENT_PROBLEM, Reply

pytestmark = pytest.mark.slow


@pytest.fixture
async def admin_server(aiohttp_server: AiohttpServer, proxy: Proxy) -> TestServer:
    """The proxy's admin application on its own loopback port."""
    return await aiohttp_server(create_admin_app(proxy.state), host="127.0.0.1")


@pytest.fixture
async def prometheus(admin_server: TestServer, tmp_path: Path) -> AsyncIterator[str]:
    """A Prometheus server on loopback scraping the admin port every second; yields its URL."""
    binary = require_binary("prometheus")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: vipps-audit-proxy\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{admin_server.port}']\n"
    )
    process = await asyncio.create_subprocess_exec(
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{url}/-/ready") as resp:
                        if resp.status == 200:
                            break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("prometheus did not become ready")
        yield url
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def query(url: str, promql: str) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/api/v1/query", params={"query": promql}) as resp,
    ):
        body = orjson.loads(await resp.read())
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


async def eventually(url: str, promql: str, expected: float) -> list[dict[str, Any]]:
    """Query until the single value equals `expected` (scrapes come every second)."""
    result: list[dict[str, Any]] = []
    for _ in range(100):
        result = await query(url, promql)
        if len(result) == 1 and float(result[0]["value"][1]) == expected:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"{promql}: {result}")


async def test_prometheus_sees_forwarded_blocked_and_vipps_errors(
    proxy: Proxy, prometheus: str
) -> None:
    """Forwarded, blocked and Vipps-error traffic shows up in Prometheus with the right labels."""
    client: TestClient[Any, Any] = proxy.client
    proxy.standin.reply(
        Reply(201, b'{"reference":"order-123456"}', {"Content-Type": "application/json"}),
        Reply(400, EPAYMENT_PROBLEM, {"Content-Type": "application/problem+json"}),
    )
    for sample in (EPAYMENT_CREATE, EPAYMENT_CAPTURE):
        async with client.post(sample.path, data=sample.body, headers=sample.headers) as resp:
            await resp.read()
    bad = orjson.loads(ECOM_INITIATE.body)
    bad["transaction"]["amount"] = 49900.0000001
    for _ in range(3):
        async with client.post(
            ECOM_INITIATE.path, data=orjson.dumps(bad), headers=ECOM_INITIATE.headers
        ) as resp:
            assert resp.status == 400
    assert len(proxy.standin.received) == 2

    job = 'job="vipps-audit-proxy"'
    await eventually(
        prometheus,
        f'vipps_proxy_requests_total{{{job},operation="create_payment",code="201",outcome="forwarded"}}',
        1,
    )
    await eventually(
        prometheus,
        f'vipps_proxy_vipps_errors_total{{{job},operation="capture_payment",error_code="6080"}}',
        1,
    )
    await eventually(
        prometheus,
        f'vipps_proxy_policy_findings_total{{{job},api="ecom",rule="amount.not_integer",action="blocked"}}',
        3,
    )
    await eventually(
        prometheus,
        f'sum(vipps_proxy_requests_total{{{job},api="ecom",outcome="blocked",code="400"}})',
        3,
    )
    up = await query(prometheus, f"up{{{job}}}")
    assert float(up[0]["value"][1]) == 1
