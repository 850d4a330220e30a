"""The log and the dashboard show the proxy's own words as the client read them: values are
redacted, header and field names and the rules' examples are not."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from proxy.app import build_state, create_admin_app, create_app
from proxy.config import Settings
from tests.conftest import AiohttpClient, LogLines
from tests.samples import ECOM_INITIATE, EPAYMENT_CREATE, SUBSCRIPTION_KEY, TOKEN

FOREIGN_PHONE = "+45 12 34 56 78"


@pytest.fixture
async def clients(
    aiohttp_client: AiohttpClient, upstream: TestServer
) -> tuple[TestClient[Any, Any], TestClient[Any, Any], LogLines]:
    """A proxy client that sends only the headers each test gives, its admin client, its log."""
    settings = Settings(upstream_url=str(upstream.make_url("/")))
    log = LogLines()
    state = build_state(settings, registry=CollectorRegistry(), sink=log)
    client: TestClient[Any, Any] = await aiohttp_client(create_app(settings, state))
    admin: TestClient[Any, Any] = await aiohttp_client(create_admin_app(state))
    return client, admin, log


async def example_body(admin: TestClient[Any, Any], rule: str) -> str:
    async with admin.get("/dashboard/data") as resp:
        board = orjson.loads(await resp.read())
    [group] = [g for g in board["groups"] if g["code"] == rule]
    return orjson.dumps(group["example"]).decode()


async def test_missing_header_message_keeps_the_header_name(
    clients: tuple[TestClient[Any, Any], TestClient[Any, Any], LogLines],
) -> None:
    """`Ocp-Apim-Subscription-Key: required header is missing` reads the same in the answer,
    the log and the dashboard (not `[redacted] header is missing`)."""
    client, admin, log = clients
    headers = {k: v for k, v in EPAYMENT_CREATE.headers.items() if k != "Ocp-Apim-Subscription-Key"}
    async with client.post(EPAYMENT_CREATE.path, data=EPAYMENT_CREATE.body, headers=headers) as r:
        assert r.status == 400
        answer = (await r.read()).decode()
    words = "Ocp-Apim-Subscription-Key: required header is missing"
    assert words in answer
    [record] = log.of("request")
    logged = orjson.dumps(record["error_body"]).decode()
    assert words in logged
    assert "[redacted] header" not in logged
    assert words in await example_body(admin, "header.missing")
    assert TOKEN not in log.text()


async def test_phone_example_stays_readable_and_the_sent_number_hidden(
    clients: tuple[TestClient[Any, Any], TestClient[Any, Any], LogLines],
) -> None:
    """The rule's example `e.g. 91234567` stays readable in the log and on the dashboard; the
    merchant's number is masked there as in the answer."""
    client, admin, log = clients
    body: dict[str, Any] = copy.deepcopy(ECOM_INITIATE.json)
    body["customerInfo"]["mobileNumber"] = FOREIGN_PHONE
    async with client.post(
        ECOM_INITIATE.path, data=orjson.dumps(body), headers=ECOM_INITIATE.headers
    ) as resp:
        assert resp.status == 400
        answer = (await resp.read()).decode()
    assert "e.g. 91234567" in answer
    [record] = log.of("request")
    logged = orjson.dumps(record["error_body"]).decode()
    assert "e.g. 91234567" in logged
    assert "******" not in logged.split("e.g.")[1][:12]
    shown = await example_body(admin, "phone.format")
    assert "e.g. 91234567" in shown
    for text in (logged, shown, log.text()):
        assert "12345678" not in text
        assert "12 34 56 78" not in text
    assert SUBSCRIPTION_KEY not in log.text()
