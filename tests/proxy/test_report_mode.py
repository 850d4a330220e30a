"""Report mode names what enforce would do: a repair is `would_repair`, not `would_block`."""

from __future__ import annotations

import copy
from typing import Any

import orjson
from aiohttp.test_utils import TestClient

from policies.core.engine import PolicyMode
from proxy.app import create_admin_app
from tests.conftest import AiohttpClient, ProxyFactory
from tests.samples import EPAYMENT_CREATE


async def test_repairable_phone_in_report_mode_is_would_repair(
    make_proxy: ProxyFactory, aiohttp_client: AiohttpClient
) -> None:
    """A phone enforce would repair is forwarded unchanged in report mode and counted, logged
    and shown as would_repair; nothing is counted as would_block."""
    proxy = await make_proxy(policy_mode=PolicyMode.REPORT)
    admin: TestClient[Any, Any] = await aiohttp_client(create_admin_app(proxy.state))
    body: dict[str, Any] = copy.deepcopy(EPAYMENT_CREATE.json)
    body["customer"]["phoneNumber"] = "+47 912 34 567"
    sent = orjson.dumps(body)
    async with proxy.client.post(
        EPAYMENT_CREATE.path, data=sent, headers=EPAYMENT_CREATE.headers
    ) as resp:
        assert resp.status == 200
    [received] = proxy.standin.received
    assert received.body == sent
    labels = {"api": "epayment", "operation": "create_payment", "rule": "phone.format"}
    findings = "vipps_proxy_policy_findings_total"
    assert proxy.sample(findings, **labels, action="would_repair") == 1
    assert proxy.sample(findings, **labels, action="would_block") == 0
    [record] = proxy.log.of("request")
    assert [f["action"] for f in record["findings"]] == ["would_repair"]
    async with admin.get("/dashboard/data") as resp:
        board = orjson.loads(await resp.read())
    assert [g["kind"] for g in board["groups"]] == ["would_repair"]
    assert board["totals"]["would_block"] == 0
