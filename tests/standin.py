"""A stand-in for the Vipps API: a real aiohttp application on loopback that records every
request it receives (method, raw target, raw headers, body bytes) and answers like Vipps.

Tests script its answers with `StandIn.reply(...)`; without a script it answers the way the
real API does for a successful call of the operation.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

import orjson
from aiohttp import web


@dataclass(frozen=True)
class Received:
    """One request as it arrived at the stand-in."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def header_names(self) -> list[str]:
        return [key for key, _ in self.headers]


@dataclass
class Reply:
    """A scripted answer."""

    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    delay: float = 0.0


# Answers in Vipps' shapes, for tests of error logging and error-code metrics.
EPAYMENT_PROBLEM = orjson.dumps(
    {
        "type": "https://httpstatuses.io/400",
        "title": "Cannot capture before reservation",
        "detail": "The amount you tried to capture is not reserved.",
        "instance": "/v1/payments/order-123456/capture",
        "status": 400,
        "extraDetails": [{"name": "ErrorCode", "reason": "6080"}],
        "traceId": "00-813b63975adcaaeef2b0ec7c103c40e3-706492e906541d31-01",
    }
)
ECOM_ERRORS = orjson.dumps(
    [{"errorGroup": "User", "errorCode": "81", "errorMessage": "User not registered with Vipps",
      "contextId": "ctx-7f1e"}]
)  # fmt: skip


class StandIn:
    """Records requests and answers from a script, else with a plain success."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        # Requests whose handling has ended: answered, or cancelled when the caller hung up.
        self.finished = 0
        self._script: deque[Reply] = deque()
        self.arrived = asyncio.Event()

    def reply(self, *replies: Reply) -> None:
        """Queue answers for the next requests, in order."""
        self._script.extend(replies)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers]
        self.received.append(Received(request.method, request.raw_path, headers, body))
        self.arrived.set()
        reply = self._script.popleft() if self._script else Reply()
        try:
            if reply.delay:
                await asyncio.sleep(reply.delay)
            return web.Response(status=reply.status, body=reply.body, headers=reply.headers)
        finally:
            self.finished += 1
