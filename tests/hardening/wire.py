"""HTTP/1.1 as bytes on loopback: a client that sends exactly what a test wrote, and upstreams
that misbehave on purpose (half a response, no response, one byte at a time, a reset).

aiohttp's own client normalises what it sends (methods, targets, framing), so the attacks and
malformed requests of the hardening suite go out through a plain socket instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

LOOPBACK = "127.0.0.1"
# No exchange of the suite should take more than a few seconds; a hang fails instead of waiting.
EXCHANGE_SECONDS = 15.0


def request_bytes(
    method: str,
    target: str,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    *,
    chunked: bool = False,
) -> bytes:
    """One request with `Connection: close`, framed by Content-Length or as one chunk."""
    head = [f"{method} {target} HTTP/1.1", "Host: proxy.test", "Connection: close"]
    head += [f"{name}: {value}" for name, value in headers]
    if chunked:
        head.append("Transfer-Encoding: chunked")
        payload = (f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    else:
        head.append(f"Content-Length: {len(body)}")
        payload = body
    return "\r\n".join(head).encode("latin-1") + b"\r\n\r\n" + payload


@dataclass(frozen=True)
class RawResponse:
    """A response as read off the socket: status, headers in order, the bytes after them."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def parse_response(data: bytes) -> RawResponse:
    """Parse the final response of `data`, skipping interim `100 Continue` responses."""
    while True:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            raise AssertionError(f"no complete response head in {data[:200]!r}")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        if status != 100:
            break
        data = rest
    headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines)]
    return RawResponse(status, headers, rest)


async def exchange(port: int, request: bytes) -> RawResponse:
    """Send `request` to 127.0.0.1:`port` and read until the server closes (bounded in time)."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    try:
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), EXCHANGE_SECONDS)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return parse_response(data)


@dataclass
class Canary:
    """A loopback server nothing may ever reach: it records each connection and its bytes.

    It answers any request with a 200, so that a proxy that did reach it would look like a
    success rather than an error a test might overlook.
    """

    connections: int = 0
    data: list[bytes] = field(default_factory=list)
    server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, LOOPBACK, 0)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(OSError, TimeoutError):
            self.data.append(await asyncio.wait_for(reader.read(65536), 2))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\ncanary")
            await writer.drain()
        writer.close()


@dataclass(frozen=True)
class Arrival:
    """One request as a raw upstream read it: the request line and the body."""

    line: bytes
    body: bytes

    @property
    def method(self) -> str:
        return self.line.split(b" ", 1)[0].decode("latin-1")


Behaviour = Callable[[Arrival, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]

OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"


async def answer_ok(
    arrival: Arrival, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bool:
    """A complete 200 on a kept-alive connection."""
    writer.write(OK_HEAD + b"Content-Length: 11\r\n\r\n" + b'{"ok":true}')
    await writer.drain()
    return True


async def half_response(
    arrival: Arrival, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bool:
    """Promise 20 bytes, send 5, then close: a connection reset mid-response."""
    writer.write(OK_HEAD + b'Content-Length: 20\r\n\r\n{"ok"')
    await writer.drain()
    return False


async def reset_before_response(
    arrival: Arrival, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bool:
    """Read the request, answer nothing, and abort the connection (RST)."""
    writer.transport.abort()
    return False


async def headers_then_nothing(
    arrival: Arrival, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bool:
    """Send the head of a response and never the body, until the client gives up and closes."""
    writer.write(OK_HEAD + b"Content-Length: 20\r\n\r\n")
    await writer.drain()
    await reader.read()
    return False


def drip(body: bytes, interval: float = 0.1) -> Behaviour:
    """Send a complete response whose body comes one byte per `interval` seconds."""

    async def behave(
        arrival: Arrival, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(OK_HEAD + f"Content-Length: {len(body)}\r\n\r\n".encode())
        for byte in body:
            await writer.drain()
            await asyncio.sleep(interval)
            writer.write(bytes([byte]))
        await writer.drain()
        return True

    return behave


def close_after_response(linger: float = 0.0) -> Behaviour:
    """A complete 200 without `Connection: close`; `linger` seconds later the server closes
    the connection without reading anything more, as an upstream's idle timeout does.

    With no linger the close reaches the proxy's pool before it reuses the connection; with a
    few milliseconds, a request sent at once crosses the close and is never read.
    """

    async def behave(
        arrival: Arrival, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        await answer_ok(arrival, reader, writer)
        await asyncio.sleep(linger)
        return False

    return behave


class RawUpstream:
    """A loopback HTTP/1.1 server whose every answer is a `Behaviour`; it records arrivals.

    Requests are read with Content-Length framing (the proxy's client always sends it).
    A behaviour returns whether the connection stays open for the next request.
    """

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.arrivals: list[Arrival] = []
        self.connections = 0
        self.closed = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def methods(self) -> list[str]:
        return [arrival.method for arrival in self.arrivals]

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._handle, LOOPBACK, port)

    async def stop(self) -> None:
        """Stop listening and abort every open connection (handlers then end on their own)."""
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._open):
            writer.transport.abort()
        await self._server.wait_closed()
        self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._open.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b""
                arrival = Arrival(head.split(b"\r\n", 1)[0], body)
                self.arrivals.append(arrival)
                if not await self.behaviour(arrival, reader, writer):
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            self._open.discard(writer)
            writer.close()
            self.closed += 1
