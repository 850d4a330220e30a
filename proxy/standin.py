"""A stand-in for the Vipps API, for trying the proxy on one machine (`vipps-audit-proxy stand-in`).

It answers the main operations plausibly and remembers each payment in memory: ePayment
create, get, events, capture, refund and cancel (with Vipps' `aggregate` figures), eCom
initiate, details, capture, refund and cancel (with `transactionSummary`), the access token,
a Checkout session and a Recurring charge. Captures beyond the reservation and refunds beyond
the captured amount get Vipps' own errors (ePayment 6090 and 6150). It checks no credentials
and is no test double for Vipps' validation: that is the proxy's job. It is never imported by
the proxy's own start-up path.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from dataclasses import dataclass

import orjson
from aiohttp import web

from policies.catalogue.operations import identify

JSON = "application/json"


@dataclass
class Payment:
    """What the stand-in remembers of one payment, in minor units."""

    currency: str
    authorized: int
    captured: int = 0
    refunded: int = 0
    cancelled: int = 0

    @property
    def state(self) -> str:
        if self.cancelled and not self.captured:
            return "TERMINATED"
        return "AUTHORIZED"

    def aggregate(self) -> dict[str, dict[str, object]]:
        def money(value: int) -> dict[str, object]:
            return {"currency": self.currency, "value": value}

        return {
            "authorizedAmount": money(self.authorized),
            "capturedAmount": money(self.captured),
            "refundedAmount": money(self.refunded),
            "cancelledAmount": money(self.cancelled),
        }


def _answer(status: int, body: object, content_type: str = JSON) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type=content_type)


def _problem(status: int, title: str, code: str, path: str) -> web.Response:
    body = {
        "type": f"https://httpstatuses.io/{status}",
        "title": title,
        "status": status,
        "instance": path,
        "extraDetails": [{"name": "ErrorCode", "reason": code}],
        "traceId": "00-5f0c2a9e41d34b7f8f0f6f0d2a1b9c3e-7f1e2d3c4b5a6978-01",
    }
    return _answer(status, body, "application/problem+json")


def _field(body: object, *path: str) -> object:
    node = body
    for step in path:
        node = node.get(step) if isinstance(node, dict) else None
    return node


def _amount(body: object, *path: str) -> int:
    node = _field(body, *path)
    return node if isinstance(node, int) and not isinstance(node, bool) else 0


class StandIn:
    """The stand-in's state: the payments it has been asked to create, by reference."""

    def __init__(self) -> None:
        self.payments: dict[str, Payment] = {}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body: object = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        match = identify(request.method, request.path)
        op = match.operation
        ref = match.params.get("reference") or match.params.get("orderId") or ""
        if op.api == "epayment":
            return self._epayment(op.name, ref, body, request.path)
        if op.api == "ecom":
            return self._ecom(op.name, ref, body, request.path)
        if op.key == "access_token.fetch_access_token":
            token = {"token_type": "Bearer", "expires_in": "3600", "access_token": "stand-in"}
            return _answer(200, token)
        if op.key == "checkout.create_session":
            return _answer(
                201,
                {
                    "token": "stand-in",
                    "checkoutFrontendUrl": "https://checkout.vipps.no/stand-in",
                    "pollingUrl": "https://api.vipps.no/checkout/v3/session/stand-in",
                },
            )
        if op.key == "recurring.create_charge":
            return _answer(201, {"chargeId": "chr-stand-in"})
        if op.api == "unknown":
            return _problem(404, "Not found", "404", request.path)
        return _answer(200, {})

    def _epayment(self, name: str, ref: str, body: object, path: str) -> web.Response:
        if name == "create_payment":
            reference = _field(body, "reference")
            currency = _field(body, "amount", "currency")
            self.payments[str(reference)] = Payment(
                str(currency or "NOK"), _amount(body, "amount", "value")
            )
            landing = f"https://landing.vipps.no/?token=stand-in-{reference}"
            return _answer(201, {"reference": reference, "redirectUrl": landing})
        payment = self.payments.get(ref)
        if payment is None:
            return _problem(404, "Payment not found", "6000", path)
        if name == "capture_payment":
            value = _amount(body, "modificationAmount", "value")
            if payment.captured + value > payment.authorized - payment.cancelled:
                return _problem(400, "Capture amount too high", "6090", path)
            payment.captured += value
        elif name == "refund_payment":
            value = _amount(body, "modificationAmount", "value")
            if payment.refunded + value > payment.captured:
                return _problem(400, "Not enough refundable", "6150", path)
            payment.refunded += value
        elif name == "cancel_payment":
            payment.cancelled = payment.authorized - payment.captured
        elif name == "get_payment_events":
            return _answer(200, [])
        answer = {
            "reference": ref,
            "state": payment.state,
            "amount": {"currency": payment.currency, "value": payment.authorized},
            "aggregate": payment.aggregate(),
            "pspReference": "stand-in",
        }
        return _answer(200, answer)

    def _ecom(self, name: str, ref: str, body: object, path: str) -> web.Response:
        if name == "initiate_payment":
            order_id = str(_field(body, "transaction", "orderId"))
            self.payments[order_id] = Payment("NOK", _amount(body, "transaction", "amount"))
            landing = f"https://landing.vipps.no/?token=stand-in-{order_id}"
            return _answer(200, {"orderId": order_id, "url": landing})
        payment = self.payments.get(ref)
        if payment is None:
            errors = [{"errorGroup": "Payment", "errorCode": "45", "errorMessage": "Not found"}]
            return _answer(404, errors)
        value = _amount(body, "transaction", "amount")
        if name == "capture_payment":
            left = payment.authorized - payment.captured - payment.cancelled
            payment.captured += value or left
        elif name == "refund_payment":
            payment.refunded += value or payment.captured - payment.refunded
        elif name == "cancel_payment":
            payment.cancelled = payment.authorized - payment.captured
        summary = {
            "capturedAmount": payment.captured,
            "remainingAmountToCapture": payment.authorized - payment.captured - payment.cancelled,
            "refundedAmount": payment.refunded,
            "remainingAmountToRefund": payment.captured - payment.refunded,
        }
        return _answer(200, {"orderId": ref, "transactionSummary": summary})


async def run(host: str, port: int) -> None:
    """Serve the stand-in until SIGTERM or SIGINT."""
    runner = web.AppRunner(StandIn().app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    print(f"stand-in Vipps API listening on http://{host}:{port}", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
