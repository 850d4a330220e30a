"""The policy seam: a blocking verdict answers locally, a repair forwards the fix."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson
import pytest

from policies.catalogue.operations import Operation
from policies.core.engine import PolicyMode
from policies.core.errors import BLOCKED_TYPE
from policies.core.model import Action, AuditedRequest, Condition, Finding, Repair, Source
from tests.conftest import ProxyFactory


@dataclass(frozen=True)
class NoTestAmount:
    """A rule for these tests only: the amount 13 is refused; 14 is repaired to 15."""

    code: str = "test.amount"
    default_action: Action = Action.BLOCK
    can_repair: bool = True
    summary: str = "test rule"
    conditions: tuple[Condition, ...] = ()

    def applies_to(self, operation: Operation) -> bool:
        return operation.api in ("epayment", "ecom", "recurring", "checkout")

    def check(self, request: AuditedRequest) -> Iterable[Finding]:
        value = request.field(("amount", "value"))
        if value == 13:
            yield Finding(
                self.code, Source.BODY, "amount.value", "is unlucky", "any other integer", "13"
            )
        if value == 14:
            yield Finding(
                self.code, Source.BODY, "amount.value", "is off by one", "15", "14",
                repair=Repair(("amount", "value"), 15),
            )  # fmt: skip


@dataclass(frozen=True)
class Exploding:
    """A rule that always raises, to show the engine contains rule bugs."""

    code: str = "test.explodes"
    default_action: Action = Action.BLOCK
    can_repair: bool = False
    summary: str = "raises"
    conditions: tuple[Condition, ...] = ()

    def applies_to(self, operation: Operation) -> bool:
        return True

    def check(self, request: AuditedRequest) -> Iterable[Finding]:
        raise ZeroDivisionError("boom")


PAYMENT = b'{"amount": {"currency": "NOK", "value": 13}, "reference": "order-123456"}'


async def test_blocked_request_never_reaches_upstream(make_proxy: ProxyFactory) -> None:
    """A blocking finding answers 400 in the API's error shape and nothing is forwarded."""
    proxy = await make_proxy(rules=[NoTestAmount()])
    async with proxy.client.post("/epayment/v1/payments", data=PAYMENT) as resp:
        assert resp.status == 400
        assert resp.content_type == "application/problem+json"
        assert resp.headers["Audit-Proxy-Findings"] == "test.amount"
        problem = orjson.loads(await resp.read())
    assert proxy.standin.received == []
    assert problem["type"] == BLOCKED_TYPE
    assert problem["traceId"] == resp.headers["X-Request-Id"]
    assert problem["extraDetails"] == [
        {
            "name": "amount.value",
            "reason": "[test.amount] is unlucky (sent 13); expected any other integer",
        }
    ]
    labels = {"api": "epayment", "operation": "create_payment"}
    assert (
        proxy.sample(
            "vipps_proxy_policy_findings_total", **labels, rule="test.amount", action="blocked"
        )
        == 1
    )
    assert (
        proxy.sample(
            "vipps_proxy_requests_total", **labels, method="POST", code="400", outcome="blocked"
        )
        == 1
    )
    (record,) = proxy.log.of("request")
    assert record["outcome"] == "blocked"
    assert record["level"] == "warning"
    assert record["findings"][0]["rule"] == "test.amount"
    assert record["error_body"]["json"]["extraDetails"]


async def test_ecom_block_uses_the_ecom_error_array(make_proxy: ProxyFactory) -> None:
    """eCom callers get eCom's error array, so their existing error handling works."""
    proxy = await make_proxy(rules=[NoTestAmount()])
    async with proxy.client.post("/ecomm/v2/payments", data=PAYMENT) as resp:
        assert resp.status == 400
        errors = orjson.loads(await resp.read())
    assert errors[0]["errorGroup"] == "InvalidRequest"
    assert errors[0]["errorCode"] == "amount.value"
    assert "is unlucky" in errors[0]["errorMessage"]


async def test_repair_forwards_only_the_changed_value(make_proxy: ProxyFactory) -> None:
    """A repaired request arrives with only the repaired value changed, and says so in a header."""
    proxy = await make_proxy(rules=[NoTestAmount()], rule_actions={"test.amount": Action.REPAIR})
    body = b'{"amount": {"currency": "NOK",   "value": 14 }, "reference": "order-123456"}'
    async with proxy.client.post("/epayment/v1/payments", data=body) as resp:
        assert resp.status == 200
        assert resp.headers["Audit-Proxy-Findings"] == "test.amount"
    assert proxy.standin.received[0].body == body.replace(b"14", b"15")
    assert proxy.sample(
        "vipps_proxy_policy_findings_total",
        api="epayment", operation="create_payment", rule="test.amount", action="repaired",
    ) == 1  # fmt: skip


async def test_report_mode_forwards_byte_for_byte(make_proxy: ProxyFactory) -> None:
    """In report mode a finding is recorded as would_block and the request arrives unchanged."""
    proxy = await make_proxy(rules=[NoTestAmount()], mode=PolicyMode.REPORT)
    async with proxy.client.post("/epayment/v1/payments", data=PAYMENT) as resp:
        assert resp.status == 200
    assert proxy.standin.received[0].body == PAYMENT
    assert proxy.sample(
        "vipps_proxy_policy_findings_total",
        api="epayment", operation="create_payment", rule="test.amount", action="would_block",
    ) == 1  # fmt: skip


@pytest.mark.parametrize(("fail_open", "status", "arrived"), [(False, 500, 0), (True, 200, 1)])
async def test_rule_crash_fails_closed_unless_fail_open(
    make_proxy: ProxyFactory, fail_open: bool, status: int, arrived: int
) -> None:
    """A rule that raises is counted and logged; the request is refused unless fail-open is set."""
    proxy = await make_proxy(rules=[Exploding()], policy_fail_open=fail_open)
    async with proxy.client.post("/epayment/v1/payments", data=PAYMENT) as resp:
        assert resp.status == status
        if not fail_open:
            problem = orjson.loads(await resp.read())
            assert "test.explodes" in problem["detail"]
    assert len(proxy.standin.received) == arrived
    assert proxy.sample("vipps_proxy_rule_errors_total", rule="test.explodes") == 1
    (record,) = proxy.log.of("request")
    assert record["rule_errors"][0]["error"] == "ZeroDivisionError: boom"


async def test_rules_never_run_for_operations_they_do_not_apply_to(
    make_proxy: ProxyFactory,
) -> None:
    """An operation outside a rule's scope is forwarded without calling the rule."""
    proxy = await make_proxy(rules=[NoTestAmount()])
    async with proxy.client.post("/webhooks/v1/webhooks", data=PAYMENT) as resp:
        assert resp.status == 200
    assert len(proxy.standin.received) == 1
