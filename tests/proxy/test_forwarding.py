"""Forwarding: what the merchant sends arrives exactly, and Vipps' answer comes back exactly."""

from __future__ import annotations

import asyncio
import base64
import gzip
import io

import orjson
import pytest
from aiohttp.test_utils import TestServer

from policies.catalogue.body_limits import IMAGE_MAX_FILE_BYTES, LARGEST_DOCUMENTED_BODY
from proxy.config import Settings
from tests.conftest import Proxy, ProxyFactory
from tests.samples import EPAYMENT_CREATE
from tests.standin import Reply


async def raw_exchange(proxy: Proxy, request: bytes) -> bytes:
    """Send raw bytes to the proxy's port and read the raw response (connection: close)."""
    server = proxy.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(request)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    await writer.wait_closed()
    return data


# A valid ePayment create with unusual spacing and an unknown field: it must arrive as written.
BODY = EPAYMENT_CREATE.body[:-1].replace(b'"reference":', b'\n  "reference" :  ') + b', "x":1.50}'
HEADER_LINES = b"".join(
    f"{k}: {v}\r\n".encode() for k, v in EPAYMENT_CREATE.headers.items() if k != "Content-Type"
)


async def test_request_arrives_byte_for_byte(proxy: Proxy, upstream: TestServer) -> None:
    """Method, path, query, header names (case, underscores), values and body arrive unchanged."""
    request = (
        b"POST /epayment/v1/payments?foo=a%2Fb&x=1 HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\n" + HEADER_LINES + b"client_id: 0f4d2d8e-1d55\r\n"
        b"X-CUSTOM-Case: MixedValue\r\n"
        b"Connection: close\r\n"
        b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
    )
    response = await raw_exchange(proxy, request)
    assert response.startswith(b"HTTP/1.1 200")
    (got,) = proxy.standin.received
    assert got.method == "POST"
    assert got.target == "/epayment/v1/payments?foo=a%2Fb&x=1"
    assert got.body == BODY
    names = got.header_names()
    assert "client_id" in names
    assert "X-CUSTOM-Case" in names
    assert got.header("X-CUSTOM-Case") == "MixedValue"
    # Hop-by-hop headers are not forwarded; Host is the upstream's own.
    assert got.header("Connection") in (None, "keep-alive")
    assert got.header("Host") == f"127.0.0.1:{upstream.port}"
    # Nothing the merchant did not send is added.
    assert got.header("User-Agent") is None
    assert got.header("Accept-Encoding") is None


async def test_chunked_upload_arrives_as_the_same_bytes(proxy: Proxy) -> None:
    """A chunked request body is forwarded as the same body bytes."""
    chunks = [BODY[:10], BODY[10:]]
    encoded = b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks) + b"0\r\n\r\n"
    request = (
        b"POST /epayment/v1/payments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + HEADER_LINES
        + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + encoded
    )
    response = await raw_exchange(proxy, request)
    assert response.startswith(b"HTTP/1.1 200")
    assert proxy.standin.received[0].body == BODY
    assert proxy.standin.received[0].header("Transfer-Encoding") is None


async def test_response_comes_back_unchanged(proxy: Proxy) -> None:
    """Status, reason, headers and body of Vipps' answer reach the client as sent."""
    body = b'{"reference":"order-123456","state":"AUTHORIZED"}'
    proxy.standin.reply(
        Reply(
            201,
            body,
            {"Content-Type": "application/json", "X-Vipps-Thing": "a_b", "Set-Cookie": "aff=1"},
        )
    )
    async with proxy.client.get("/epayment/v1/payments/order-123456") as resp:
        assert resp.status == 201
        assert await resp.read() == body
        assert resp.headers["X-Vipps-Thing"] == "a_b"
        assert resp.headers["Content-Type"] == "application/json"
        assert resp.headers["Set-Cookie"] == "aff=1"
        assert resp.headers["X-Request-Id"]


async def test_compressed_response_passes_through_untouched(proxy: Proxy) -> None:
    """A gzip response is neither decoded nor re-encoded: the same bytes and Content-Encoding."""
    payload = gzip.compress(b'{"state":"AUTHORIZED"}' * 50)
    proxy.standin.reply(
        Reply(200, payload, {"Content-Type": "application/json", "Content-Encoding": "gzip"})
    )
    async with proxy.client.get(
        "/epayment/v1/payments/order-123456", auto_decompress=False
    ) as resp:
        assert resp.headers["Content-Encoding"] == "gzip"
        assert int(resp.headers["Content-Length"]) == len(payload)
        assert await resp.read() == payload


async def test_cookies_are_not_shared_between_callers(proxy: Proxy) -> None:
    """A Set-Cookie from Vipps is passed to the client but never replayed by the proxy itself."""
    proxy.standin.reply(Reply(200, b"{}", {"Set-Cookie": "ARRAffinity=abc; Path=/"}))
    get = (
        b"GET /epayment/v1/payments/order-123456 HTTP/1.1\r\nHost: x\r\n"
        + HEADER_LINES
        + b"Connection: close\r\n\r\n"
    )
    first = await raw_exchange(proxy, get)
    assert b"Set-Cookie: ARRAffinity=abc" in first
    await raw_exchange(proxy, get)
    assert proxy.standin.received[1].header("Cookie") is None


async def test_redirects_are_returned_not_followed(proxy: Proxy) -> None:
    """A 302 from upstream goes back to the client; the proxy never follows it elsewhere."""
    proxy.standin.reply(Reply(302, b"", {"Location": "http://127.0.0.1:1/elsewhere"}))
    async with proxy.client.get(
        "/epayment/v1/payments/order-123456", allow_redirects=False
    ) as resp:
        assert resp.status == 302
        assert resp.headers["Location"] == "http://127.0.0.1:1/elsewhere"
    assert len(proxy.standin.received) == 1


async def test_request_id_is_kept_or_generated(proxy: Proxy) -> None:
    """An incoming X-Request-Id is forwarded and returned; without one, one is generated."""
    async with proxy.client.get("/x", headers={"X-Request-Id": "abc-123"}) as resp:
        assert resp.headers["X-Request-Id"] == "abc-123"
    assert proxy.standin.received[0].header("X-Request-Id") == "abc-123"
    generated = []
    for _ in range(2):
        async with proxy.client.get("/x") as resp:
            generated.append(resp.headers["X-Request-Id"])
    # A generated id names one request: it differs per request and is the id in its log line.
    assert generated[0]
    assert generated[0] != generated[1]
    assert [r["request_id"] for r in proxy.log.of("request")] == ["abc-123", *generated]
    # eCom uses X-Request-Id as its idempotency key: the proxy never adds one upstream.
    assert [got.header("X-Request-Id") for got in proxy.standin.received[1:]] == [None, None]


@pytest.mark.parametrize("size", [0, 1, 65536])
async def test_bodies_of_any_size_within_limit_arrive(proxy: Proxy, size: int) -> None:
    """Bodies from empty to large (within the limit) arrive whole."""
    body = b"a" * size
    async with proxy.client.post("/unknown/path", data=body) as resp:
        assert resp.status == 200
    assert proxy.standin.received[0].body == body


async def test_body_over_limit_gets_413_and_never_arrives(make_proxy: ProxyFactory) -> None:
    """A body over VIPPS_PROXY_MAX_BODY_BYTES gets 413 problem+json and is not forwarded."""
    proxy = await make_proxy(max_body_bytes=2048)
    async with proxy.client.post("/epayment/v1/payments", data=b"x" * 4096) as resp:
        assert resp.status == 413
        assert resp.content_type == "application/problem+json"
        problem = orjson.loads(await resp.read())
    assert "2048" in problem["detail"]
    assert proxy.standin.received == []


def test_default_body_limit_fits_the_largest_documented_request() -> None:
    """VIPPS_PROXY_MAX_BODY_BYTES by default is above the largest body Vipps documents."""
    assert Settings().max_body_bytes >= LARGEST_DOCUMENTED_BODY


async def test_largest_documented_request_is_forwarded_with_the_defaults(proxy: Proxy) -> None:
    """A 2 MB image upload to Order Management, base64 with PHP's escaped slashes, arrives whole."""
    image = bytes(range(256)) * (IMAGE_MAX_FILE_BYTES // 256)
    encoded = base64.b64encode(image).decode().replace("/", "\\/")
    body = b'{"imageId":"socks-orange-123","src":"' + encoded.encode() + b'","type":"base64"}'
    assert len(body) > 2 * 1024 * 1024 + IMAGE_MAX_FILE_BYTES // 3
    sent = io.BytesIO(body)
    async with proxy.client.post("/order-management/v1/images", data=sent) as resp:
        assert resp.status == 200
    [received] = proxy.standin.received
    assert received.body == body


async def test_unknown_paths_are_forwarded(proxy: Proxy) -> None:
    """A path outside the catalogue is still forwarded, labelled api=unknown."""
    async with proxy.client.request("PATCH", "/some/new/api?x=1", data=b"raw") as resp:
        assert resp.status == 200
    assert proxy.standin.received[0].target == "/some/new/api?x=1"
    assert proxy.sample(
        "vipps_proxy_requests_total",
        api="unknown", operation="unknown", method="PATCH", code="200", outcome="forwarded",
    ) == 1  # fmt: skip


async def test_absolute_form_target_is_refused(proxy: Proxy) -> None:
    """An absolute-form request target gets 400 and nothing is sent anywhere."""
    response = await raw_exchange(
        proxy,
        b"GET http://evil.example/x HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    )
    assert response.startswith(b"HTTP/1.1 400")
    assert proxy.standin.received == []
