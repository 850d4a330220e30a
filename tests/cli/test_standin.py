"""`vipps-audit-proxy stand-in`: plausible answers, and never part of the proxy's own path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from proxy.standin import StandIn
from tests.cli.conftest import clean_env
from tests.cli.processes import accepts, console, free_port, running, send, stop, wait_until
from tests.cli.saved import with_json
from tests.conftest import AiohttpClient
from tests.samples import (
    ACCESS_TOKEN,
    CHECKOUT_SESSION,
    ECOM_CAPTURE,
    ECOM_INITIATE,
    EPAYMENT_CAPTURE,
    EPAYMENT_CREATE,
    EPAYMENT_GET,
    EPAYMENT_REFUND,
    RECURRING_CHARGE,
    Sample,
)


def test_the_proxy_start_up_path_does_not_import_the_stand_in() -> None:
    """A fresh interpreter loading everything `serve` runs has no `proxy.standin` module."""
    code = (
        "import sys\n"
        "import proxy.__main__, proxy.app, proxy.cli\n"
        "proxy.cli.build_parser().parse_args([])\n"
        "proxy.app.create_app(proxy.app.Settings())\n"
        "print(','.join(sorted(n for n in sys.modules if n.startswith('proxy.'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    loaded = result.stdout.strip().split(",")
    assert "proxy.app" in loaded  # the check itself sees what was imported
    assert "proxy.standin" not in loaded


@pytest.mark.slow
def test_the_stand_in_answers_like_vipps(tmp_path: Path) -> None:
    """Creates, reads, captures and refunds with Vipps' figures; too much gets Vipps' error."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with console("stand-in", "--port", str(port), env=clean_env(), output=tmp_path / "log") as p:
        wait_until(running(p, lambda: accepts(port)), "the stand-in listening")

        def call(s: Sample) -> tuple[int, Any]:
            status, _, answer = send(s.method, base + s.path, s.headers, s.body)
            return status, json.loads(answer) if answer else None

        assert call(EPAYMENT_CREATE) == (
            201,
            {
                "reference": "order-123456",
                "redirectUrl": "https://landing.vipps.no/?token=stand-in-order-123456",
            },
        )
        status, captured = call(EPAYMENT_CAPTURE)
        assert status == 200
        assert captured["aggregate"]["capturedAmount"] == {"currency": "NOK", "value": 20000}
        status, refunded = call(EPAYMENT_REFUND)
        assert refunded["aggregate"]["refundedAmount"]["value"] == 10000
        too_much = with_json(
            EPAYMENT_CAPTURE, modificationAmount={"currency": "NOK", "value": 40000}
        )
        status, problem = call(too_much)
        assert status == 400
        assert problem["extraDetails"] == [{"name": "ErrorCode", "reason": "6090"}]
        status, payment = call(EPAYMENT_GET)
        assert (status, payment["state"]) == (200, "AUTHORIZED")
        unknown = Sample("GET", "/epayment/v1/payments/nope-0000", {})
        assert call(unknown)[0] == 404

        assert call(ECOM_INITIATE)[0] == 200
        status, ecom = call(ECOM_CAPTURE)
        assert ecom["transactionSummary"]["capturedAmount"] == 20000
        assert ecom["transactionSummary"]["remainingAmountToCapture"] == 29900
        status, token = call(ACCESS_TOKEN)
        assert (status, token["token_type"]) == (200, "Bearer")
        assert call(CHECKOUT_SESSION)[0] == 201
        assert call(RECURRING_CHARGE)[0] == 201
        assert stop(p) == 0
    assert "stand-in Vipps API listening on" in (tmp_path / "log").read_text()


async def test_the_stand_in_keeps_each_payment_in_memory(aiohttp_client: AiohttpClient) -> None:
    """In-process: refunds past the captured amount, cancels, eCom figures, unknown paths."""
    client = await aiohttp_client(StandIn().app())

    async def call(s: Sample, body: bytes | None = None) -> tuple[int, Any]:
        async with client.request(
            s.method, s.path, headers=s.headers, data=s.body if body is None else body
        ) as answer:
            raw = await answer.read()
            return answer.status, orjson.loads(raw) if raw else None

    assert (await call(EPAYMENT_CREATE))[0] == 201
    assert (await call(EPAYMENT_CAPTURE))[0] == 200
    status, problem = await call(
        with_json(EPAYMENT_REFUND, modificationAmount={"currency": "NOK", "value": 20001})
    )
    assert (status, problem["extraDetails"][0]["reason"]) == (400, "6150")
    cancel = Sample("POST", "/epayment/v1/payments/order-123456/cancel", EPAYMENT_GET.headers)
    status, cancelled = await call(cancel)
    assert cancelled["aggregate"]["cancelledAmount"]["value"] == 29900
    events = Sample("GET", "/epayment/v1/payments/order-123456/events", EPAYMENT_GET.headers)
    assert await call(events) == (200, [])
    unknown = Sample("POST", "/epayment/v1/payments/order-999999/cancel", EPAYMENT_GET.headers)
    assert (await call(unknown))[0] == 404

    assert (await call(ECOM_INITIATE))[0] == 200
    status, whole = await call(ECOM_CAPTURE, b"not json")  # no amount: all that is left
    assert whole["transactionSummary"]["capturedAmount"] == 49900
    refund = Sample("POST", "/ecomm/v2/payments/order-123456/refund", ECOM_CAPTURE.headers)
    status, refunded = await call(refund, b"{}")
    assert refunded["transactionSummary"]["remainingAmountToRefund"] == 0
    ecom_cancel = Sample("PUT", "/ecomm/v2/payments/order-123456/cancel", ECOM_CAPTURE.headers)
    assert (await call(ecom_cancel, b"{}"))[0] == 200
    missing = Sample("GET", "/ecomm/v2/payments/order-000000/details", ECOM_CAPTURE.headers)
    status, errors = await call(missing)
    assert (status, errors[0]["errorCode"]) == (404, "45")
    assert (await call(Sample("GET", "/nothing/here", {})))[0] == 404
    agreements = Sample("GET", "/recurring/v3/agreements", EPAYMENT_GET.headers)
    assert await call(agreements) == (200, {})
