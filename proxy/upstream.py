"""The connection to Vipps: one pooled aiohttp ClientSession, and the only module that
translates aiohttp's client errors into the proxy's own (like httpx's transport layer).

Requests are never retried here. aiohttp itself re-sends an idempotent method (GET, PUT,
DELETE, ...) once when the connection closes before any response, as RFC 9112 allows; a POST
or PATCH is never sent twice.
"""

from __future__ import annotations

import ssl
import urllib.request
import warnings
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from proxy.config import Settings
from proxy.problem import UpstreamError, UpstreamTimeout

# RFC 9110 §7.6.1 hop-by-hop fields, plus those the client recomputes for the new connection.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "expect",
    }
)

# aiohttp adds these when absent; a faithful proxy sends only what the client sent.
_SKIP_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


def end_to_end(raw: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Drop hop-by-hop headers, including any the Connection header names."""
    named = {
        token.strip().lower()
        for name, value in raw
        if name.lower() == "connection"
        for token in value.split(",")
    }
    return [(n, v) for n, v in raw if n.lower() not in HOP_BY_HOP and n.lower() not in named]


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    """What Vipps answered: status, end-to-end headers in their original case, body bytes."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


def _payload(body: bytes) -> aiohttp.BytesPayload:
    """The body as aiohttp sends it. aiohttp warns about bytes over 1 MiB (it suggests a
    stream); the proxy's limit allows more (an image upload is up to 2 MB, base64), the body is
    already in memory, and a stream could not be sent again on aiohttp's one retry."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        return aiohttp.BytesPayload(body)


class Upstream:
    """Sends requests to the configured Vipps host, and nowhere else."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._base = settings.upstream_base
        self._max_response = settings.max_response_bytes
        self._session: aiohttp.ClientSession | None = None
        self._proxy: str | None = None

    async def start(self) -> None:
        self._proxy = egress_proxy(self._base)
        ssl_context = ssl.create_default_context(
            cafile=str(self._settings.upstream_ca_bundle)
            if self._settings.upstream_ca_bundle
            else None
        )
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ssl_context, limit=256, ttl_dns_cache=60),
            timeout=aiohttp.ClientTimeout(
                total=self._settings.upstream_timeout_seconds,
                connect=self._settings.upstream_connect_timeout_seconds,
            ),
            # Compressed bodies pass through as they are; cookies are never kept between
            # requests of different callers. trust_env stays off: it would look up ~/.netrc
            # and the proxy variables in a thread on every request; the egress proxy is
            # resolved once, at start-up, instead.
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            skip_auto_headers=_SKIP_AUTO_HEADERS,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> UpstreamResponse:
        """Forward one request; `target` is the raw path and query, as received."""
        if self._session is None:
            raise RuntimeError("Upstream.start() was not awaited")
        may_have_arrived = method not in ("GET", "HEAD", "OPTIONS")
        try:
            async with self._session.request(
                method,
                # encoded=True: the path and query go out exactly as received (no re-quoting).
                URL(self._base + target, encoded=True),
                headers=_one_spelling(headers),
                data=_payload(body) if body or may_have_arrived else None,
                allow_redirects=False,
                compress=False,
                proxy=self._proxy,
            ) as response:
                data = await self._read_body(response)
                raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers]
                return UpstreamResponse(
                    response.status, response.reason or "", end_to_end(raw), data
                )
        except UpstreamError:
            raise
        except aiohttp.ConnectionTimeoutError:
            raise UpstreamTimeout(
                f"no connection to Vipps within"
                f" {self._settings.upstream_connect_timeout_seconds} s;"
                " the request was not sent",
                "connect_timeout",
            ) from None
        except TimeoutError:
            raise UpstreamTimeout(
                f"Vipps did not answer within {self._settings.upstream_timeout_seconds} s"
                + _arrival_note(may_have_arrived),
                "timeout",
            ) from None
        except aiohttp.ClientConnectorCertificateError as exc:
            raise UpstreamError(
                f"TLS certificate of Vipps not trusted: {exc.certificate_error}", "tls"
            ) from None
        except aiohttp.ClientSSLError as exc:
            raise UpstreamError(f"TLS handshake with Vipps failed: {exc.os_error}", "tls") from None
        except aiohttp.ClientConnectorDNSError:
            raise UpstreamError(
                "the Vipps host name could not be resolved; the request was not sent", "dns"
            ) from None
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamError(
                f"connection to {exc.host}:{exc.port} failed"
                f" ({exc.os_error.strerror or exc.os_error});"
                " the request was not sent",
                "connect",
            ) from None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientPayloadError):
            raise UpstreamError(
                "Vipps closed the connection before a complete response"
                + _arrival_note(may_have_arrived),
                "reset",
            ) from None
        except aiohttp.ClientResponseError as exc:
            raise UpstreamError(
                f"Vipps sent an invalid HTTP response: {exc.message}", "protocol"
            ) from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(
                f"request to Vipps failed: {type(exc).__name__}", "client_error"
            ) from None

    async def _read_body(self, response: aiohttp.ClientResponse) -> bytes:
        """Read the whole body, refusing one over the configured size."""
        length = response.content_length
        if (length or 0) > self._max_response:
            raise UpstreamError(
                f"Vipps' response is larger than {self._max_response} bytes", "response_too_large"
            )
        if length is not None:
            # A declared length within the limit: aiohttp reads no more than that.
            return await response.read()
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(65536):
            size += len(chunk)
            if size > self._max_response:
                raise UpstreamError(
                    f"Vipps' response is larger than {self._max_response} bytes",
                    "response_too_large",
                )
            chunks.append(chunk)
        return b"".join(chunks)


def egress_proxy(base_url: str) -> str | None:
    """The forward proxy for the upstream from HTTPS_PROXY / HTTP_PROXY, unless NO_PROXY says no."""
    url = URL(base_url)
    proxy = urllib.request.getproxies().get(url.scheme)
    if not proxy or (url.host and urllib.request.proxy_bypass(url.host)):
        return None
    return proxy


def _one_spelling(headers: list[tuple[str, str]]) -> CIMultiDict[str]:
    """Headers with every copy of a name spelt as its first copy.

    aiohttp's client tells repeated names apart case-sensitively, so `X-A: 1` then `x-a: 2`
    would leave only the second; under one spelling both copies go out.
    """
    first: dict[str, str] = {}
    return CIMultiDict((first.setdefault(name.lower(), name), value) for name, value in headers)


def _arrival_note(may_have_arrived: bool) -> str:
    if not may_have_arrived:
        return ""
    return "; the request may have reached Vipps, so check the payment's status before retrying"
