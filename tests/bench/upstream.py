"""A fixed-response stand-in for Vipps, fast enough that it is never the benchmark's bottleneck.

Run as a process of its own: `python tests/bench/upstream.py --port 18081`. It is a bare
asyncio protocol (uvloop when installed) with a minimal HTTP/1.1 reader: keep-alive, requests
framed by Content-Length, several requests in one read. It answers like Vipps does for a
successful call: ePayment create 201, get payment 200 with the aggregate, capture and refund
200, eCom initiate 200 with `orderId` and `url`; anything else 404 as a problem document.
The payment's id is echoed from the path, or from the body of the two create calls.

The tests' stand-in (`tests/standin.py`) records every request and is scriptable; this one
records nothing and does as little work per request as HTTP allows.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import time
from email.utils import formatdate
from typing import cast

_HEAD_END = b"\r\n\r\n"
_MAX_HEAD = 64 * 1024
_REFERENCE = re.compile(rb'"reference"\s*:\s*"([^"]{0,64})"')
_ORDER_ID = re.compile(rb'"orderId"\s*:\s*"([^"]{0,64})"')

_AMOUNT = b'{"currency":"NOK","value":49900}'
_ZERO = b'{"currency":"NOK","value":0}'
_AGGREGATE = (
    b'{"authorizedAmount":' + _AMOUNT + b',"cancelledAmount":' + _ZERO
    + b',"capturedAmount":' + _ZERO + b',"refundedAmount":' + _ZERO + b"}"
)  # fmt: skip
_PSP = b'"pspReference":"2bd9f8f3-2c2d-4b6f-8a3e-5a1c9e4b7d10"'


def _created(reference: bytes) -> bytes:
    return (
        b'{"redirectUrl":"https://landing.vipps.no/?token=eyJraWQiOiJqd3RrZXkiLCJhbGciOiJSUzI1NiJ9'
        b'.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJl","reference":"' + reference + b'"}'
    )


def _payment(reference: bytes) -> bytes:
    return (
        b'{"aggregate":' + _AGGREGATE + b',"amount":' + _AMOUNT + b',"state":"AUTHORIZED",'
        b'"paymentMethod":{"type":"WALLET","cardBin":"540185"},"profile":{"sub":null},'
        + _PSP + b',"reference":"' + reference + b'"}'
    )  # fmt: skip


def _modified(reference: bytes) -> bytes:
    return (
        b'{"amount":' + _AMOUNT + b',"state":"AUTHORIZED","aggregate":' + _AGGREGATE
        + b"," + _PSP + b',"reference":"' + reference + b'"}'
    )  # fmt: skip


def _initiated(order_id: bytes) -> bytes:
    return (
        b'{"orderId":"' + order_id + b'","url":"https://api.vipps.no/dwo-api-application/v1/'
        b'deeplink/vippsgateway?v=2&token=eyJraWQiOiJqd3RrZXkiLCJhbGciOiJSUzI1NiJ9.ZXhhbXBsZQ"}'
    )


def _not_found(target: bytes) -> bytes:
    return (
        b'{"type":"https://developer.vippsmobilepay.com/docs/APIs/epayment-api/problems#not-found",'
        b'"title":"Not Found","status":404,"detail":"No such operation","instance":"'
        + target.split(b"?", 1)[0][:200].replace(b'"', b"")
        + b'","traceId":"00-00000000000000000000000000000000-0000000000000000-00"}'
    )


def answer(method: bytes, target: bytes, body: bytes) -> tuple[bytes, bytes]:
    """The status line text and the JSON body Vipps would send for a successful call."""
    path = target.split(b"?", 1)[0].rstrip(b"/")
    parts = path.lower().split(b"/")
    raw_parts = path.split(b"/")
    if parts[1:4] == [b"epayment", b"v1", b"payments"]:
        if len(parts) == 4 and method == b"POST":
            found = _REFERENCE.search(body)
            return b"201 Created", _created(found.group(1) if found else b"")
        if len(parts) == 5 and method == b"GET":
            return b"200 OK", _payment(raw_parts[4])
        if len(parts) == 6 and method == b"POST" and parts[5] in (b"capture", b"refund"):
            return b"200 OK", _modified(raw_parts[4])
    if parts[1:] == [b"ecomm", b"v2", b"payments"] and method == b"POST":
        found = _ORDER_ID.search(body)
        return b"200 OK", _initiated(found.group(1) if found else b"")
    return b"404 Not Found", _not_found(target)


class Clock:
    """The Date header, formatted once per second rather than once per response."""

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def date(self) -> bytes:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._value = formatdate(now, usegmt=True).encode()
        return self._value


class VippsStandIn(asyncio.Protocol):
    """One connection: read requests framed by Content-Length, answer each at once.

    With `received`, each request's head and body are appended to it (for `stages.py`).
    """

    def __init__(self, clock: Clock, received: list[tuple[bytes, bytes]] | None = None) -> None:
        self._clock = clock
        self._received = received
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while self._transport is not None:
            end = self._buffer.find(_HEAD_END)
            if end < 0:
                if len(self._buffer) > _MAX_HEAD:
                    self._fail(b"431 Request Header Fields Too Large")
                return
            head = self._buffer[:end]
            lowered = head.lower()
            if b"\r\ntransfer-encoding:" in lowered:
                self._fail(b"501 Not Implemented")
                return
            length = 0
            at = lowered.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = lowered.find(b"\r\n", at + 2)
                length = int(lowered[at + 17 : stop if stop >= 0 else None])
            if len(self._buffer) < end + 4 + length:
                return
            body = self._buffer[end + 4 : end + 4 + length]
            self._buffer = self._buffer[end + 4 + length :]
            if self._received is not None:
                self._received.append((head, body))
            method, _, rest = head.partition(b" ")
            target = rest.partition(b" ")[0]
            status, payload = answer(method, target, body)
            closing = b"\r\nconnection: close" in lowered
            self._send(status, payload, closing)
            if closing:
                return

    def _send(self, status: bytes, payload: bytes, closing: bool) -> None:
        assert self._transport is not None
        self._transport.write(
            b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json; charset=utf-8\r\n"
            b"Content-Length: " + str(len(payload)).encode() + b"\r\n"
            b"Date: " + self._clock.date() + b"\r\n"
            b"Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n"
            + (b"Connection: close\r\n" if closing else b"")
            + b"\r\n" + payload
        )  # fmt: skip
        if closing:
            self._transport.close()
            self._transport = None

    def _fail(self, status: bytes) -> None:
        self._send(status, b"", closing=True)


async def serve(host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    clock = Clock()
    server = await loop.create_server(lambda: VippsStandIn(clock), host, port, backlog=1024)
    stopped = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    async with server:
        await stopped.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--no-uvloop", action="store_true", help="use asyncio's own loop")
    args = parser.parse_args()
    if not args.no_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            uvloop.run(serve(args.host, args.port))
            return
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
