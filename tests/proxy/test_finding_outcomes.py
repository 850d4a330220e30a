"""Vipps grades the rules: its answer to every forwarded request with findings is counted by
rule (`vipps_proxy_finding_outcomes_total`), named in the audit line and shown per rule on the
error dashboard."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from policies.core.engine import PolicyMode
from proxy.app import create_admin_app
from proxy.handler import vipps_outcome
from tests.conftest import AiohttpClient, Proxy, ProxyFactory
from tests.proxy.test_upstream_faults import free_port, start_proxy
from tests.samples import EPAYMENT_CAPTURE
from tests.standin import EPAYMENT_PROBLEM, Reply

CAPTURE = EPAYMENT_CAPTURE.path
# A 36-character system name, as the Shopware plugin sends its shop's domain: `header.format`
# reports it by default (condition `system_header_length`), so the request is forwarded.
LONG_NAME = {"Vipps-System-Name": "https://shop.example-with-domains.no"}
# No Idempotency-Key: `header.missing` blocks it in enforce mode, reports it in report mode.
WITHOUT_KEY = {"Idempotency-Key": ""}
PROBLEM_JSON = {"Content-Type": "application/problem+json"}


def outcomes(proxy: Proxy, rule: str, operation: str = "capture_payment") -> dict[str, float]:
    """The outcome counter of one rule, by Vipps' answer (absent series read as 0)."""
    return {
        vipps: proxy.sample(
            "vipps_proxy_finding_outcomes_total",
            api="epayment", operation=operation, rule=rule, vipps=vipps,
        )
        for vipps in ("accepted", "rejected", "no_answer")
    }  # fmt: skip


async def capture(proxy: Proxy, headers: dict[str, str]) -> int:
    """Send the sample capture with its own key and these header changes; the status."""
    sent = {"Idempotency-Key": "idem-capture-0001", **headers}
    async with proxy.client.post(CAPTURE, data=EPAYMENT_CAPTURE.body, headers=sent) as resp:
        await resp.read()
        return resp.status


def request_records(proxy: Proxy) -> list[dict[str, Any]]:
    return proxy.log.of("request")


async def admin_of(proxy: Proxy, aiohttp_client: AiohttpClient) -> TestClient[Any, Any]:
    """The proxy's admin application (its dashboard observes the audit log while it runs)."""
    admin: TestClient[Any, Any] = await aiohttp_client(create_admin_app(proxy.state))
    return admin


async def board(admin: TestClient[Any, Any]) -> dict[str, Any]:
    async with admin.get("/dashboard/data") as resp:
        data: dict[str, Any] = orjson.loads(await resp.read())
    return data


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, "accepted"), (201, "accepted"), (204, "accepted"),
        (400, "rejected"), (404, "rejected"), (409, "rejected"), (429, "rejected"),
        (500, "no_answer"), (502, "no_answer"), (None, "no_answer"), (302, "no_answer"),
    ],
)  # fmt: skip
def test_vipps_answer_names_the_outcome(status: int | None, expected: str) -> None:
    """2xx is accepted, 4xx rejected, 5xx and no answer at all are no answer."""
    assert vipps_outcome(status) == expected


async def test_report_mode_would_block_accepted_by_vipps(
    make_proxy: ProxyFactory, aiohttp_client: AiohttpClient
) -> None:
    """In report mode a request the defaults block is forwarded; Vipps' 200 counts `accepted`."""
    proxy = await make_proxy(policy_mode=PolicyMode.REPORT)
    admin = await admin_of(proxy, aiohttp_client)
    assert await capture(proxy, WITHOUT_KEY) == 200
    assert len(proxy.standin.received) == 1
    assert outcomes(proxy, "header.missing") == {"accepted": 1, "rejected": 0, "no_answer": 0}
    [record] = request_records(proxy)
    assert record["vipps_outcome"] == "accepted"
    assert [f["action"] for f in record["findings"]] == ["would_block"]
    [grade] = (await board(admin))["grades"]
    assert (grade["rule"], grade["contradicted"], grade["confirmed"]) == ("header.missing", 1, 0)
    assert grade["latest"]["condition"] == "epayment_idempotency_key"
    assert grade["latest"]["request_id"] == record["request_id"]


async def test_report_default_condition_accepted_by_vipps(
    make_proxy: ProxyFactory, aiohttp_client: AiohttpClient
) -> None:
    """In enforce mode a report-default condition is forwarded and graded by Vipps' 200."""
    proxy = await make_proxy()
    admin = await admin_of(proxy, aiohttp_client)
    assert await capture(proxy, LONG_NAME) == 200
    assert outcomes(proxy, "header.format") == {"accepted": 1, "rejected": 0, "no_answer": 0}
    [record] = request_records(proxy)
    assert record["vipps_outcome"] == "accepted"
    assert record["findings"][0]["condition"] == "system_header_length"
    data = await board(admin)
    assert [(g["rule"], g["contradicted"]) for g in data["grades"]] == [("header.format", 1)]


async def test_vipps_rejecting_a_doubted_request_confirms_the_rule(
    make_proxy: ProxyFactory, aiohttp_client: AiohttpClient
) -> None:
    """Vipps' 400 to a forwarded would-block request counts `rejected` ("confirmed")."""
    proxy = await make_proxy()
    admin = await admin_of(proxy, aiohttp_client)
    proxy.standin.reply(Reply(400, EPAYMENT_PROBLEM, PROBLEM_JSON))
    assert await capture(proxy, LONG_NAME) == 400
    assert outcomes(proxy, "header.format") == {"accepted": 0, "rejected": 1, "no_answer": 0}
    [record] = request_records(proxy)
    assert record["vipps_outcome"] == "rejected"
    [grade] = (await board(admin))["grades"]
    assert (grade["contradicted"], grade["confirmed"]) == (0, 1)
    assert grade["latest"]["vipps_error_code"] == "6080"


async def test_vipps_timing_out_is_no_answer(make_proxy: ProxyFactory) -> None:
    """No answer within the timeout counts `no_answer`; so does a 5xx."""
    proxy = await make_proxy(upstream_timeout_seconds=0.2)
    proxy.standin.reply(Reply(200, b"{}", delay=1.0), Reply(503, b"busy", {}))
    assert await capture(proxy, LONG_NAME) == 504
    assert await capture(proxy, {**LONG_NAME, "Idempotency-Key": "idem-capture-0002"}) == 503
    assert outcomes(proxy, "header.format") == {"accepted": 0, "rejected": 0, "no_answer": 2}
    assert [r["vipps_outcome"] for r in request_records(proxy)] == ["no_answer", "no_answer"]


async def test_unreachable_vipps_is_no_answer(aiohttp_client: AiohttpClient) -> None:
    """An upstream nobody listens on counts `no_answer`."""
    client, state, log = await start_proxy(aiohttp_client, f"http://127.0.0.1:{free_port()}")
    headers = {"Idempotency-Key": "idem-capture-0001", **LONG_NAME}
    async with client.post(CAPTURE, data=EPAYMENT_CAPTURE.body, headers=headers) as resp:
        assert resp.status == 502
    labels = {"api": "epayment", "operation": "capture_payment", "rule": "header.format"}
    sample = state.registry.get_sample_value
    assert sample("vipps_proxy_finding_outcomes_total", {**labels, "vipps": "no_answer"}) == 1
    assert sample("vipps_proxy_finding_outcomes_total", {**labels, "vipps": "accepted"}) is None
    [record] = log.of("request")
    assert (record["outcome"], record["vipps_outcome"]) == ("upstream_error", "no_answer")


async def test_blocked_and_clean_requests_are_not_graded(make_proxy: ProxyFactory) -> None:
    """A blocked request never reached Vipps, and one without findings doubted nothing."""
    proxy = await make_proxy()
    assert await capture(proxy, WITHOUT_KEY) == 400
    assert await capture(proxy, {}) == 200
    assert outcomes(proxy, "header.missing") == {"accepted": 0, "rejected": 0, "no_answer": 0}
    assert all("vipps_outcome" not in r for r in request_records(proxy))
    families = {m.name for m in proxy.registry.collect() if m.samples}
    assert "vipps_proxy_finding_outcomes" not in families


async def test_advice_and_repairs_are_counted_but_not_graded_on_the_board(
    make_proxy: ProxyFactory, aiohttp_client: AiohttpClient
) -> None:
    """Advice is counted in the metric by its rule; the board grades only doubted requests."""
    proxy = await make_proxy()
    admin = await admin_of(proxy, aiohttp_client)
    assert await capture(proxy, {"Vipps-System-Plugin-Name": ""}) == 200
    assert outcomes(proxy, "header.system_missing")["accepted"] == 1
    [record] = request_records(proxy)
    assert record["vipps_outcome"] == "accepted"
    assert (await board(admin))["grades"] == []
