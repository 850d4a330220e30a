"""No open proxy: whatever the request line and headers say, only the configured upstream is
contacted. A second loopback server, the canary, must receive nothing, ever.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import Proxy
from tests.hardening.conftest import EXAMPLES, Figures, port_of
from tests.hardening.samples import GET_PAYMENT, HEADERS
from tests.hardening.wire import Canary, RawResponse, exchange, request_bytes
from tests.standin import Reply

pytestmark = pytest.mark.slow


def attacks(canary: int, upstream: int) -> dict[str, bytes]:
    """Requests that try to make the proxy call 127.0.0.1:`canary` instead of the upstream."""
    at = f"127.0.0.1:{canary}"

    def line(method: str, target: str, *headers: str, body: bytes = b"") -> bytes:
        head = [f"{method} {target} HTTP/1.1", f"Host: {at}", "Connection: close", *headers]
        if body:
            head.append(f"Content-Length: {len(body)}")
        return "\r\n".join(head).encode() + b"\r\n\r\n" + body

    def with_host(host: str, *headers: str) -> bytes:
        # A complete merchant request, so that the rules forward it and the test sees where.
        return request_bytes("GET", GET_PAYMENT, HEADERS, b"").replace(
            b"Host: proxy.test", ("\r\n".join((f"Host: {host}", *headers))).encode()
        )

    return {
        "absolute-form-http": line("GET", f"http://{at}/x"),
        "absolute-form-https": line("GET", f"https://{at}/x"),
        "absolute-form-uppercase-scheme": line("GET", f"HTTP://{at}/x"),
        "absolute-form-post": line("POST", f"http://{at}/epayment/v1/payments", body=b"{}"),
        "absolute-form-userinfo": line("GET", f"http://127.0.0.1:{upstream}@{at}/x"),
        "absolute-form-no-scheme": line("GET", f"{at}/x"),
        "scheme-relative": line("GET", f"//{at}/x"),
        "scheme-relative-three-slashes": line("GET", f"///{at}/x"),
        "connect-authority": line("CONNECT", at),
        "connect-origin-form": line("CONNECT", "/x"),
        "options-asterisk": line("OPTIONS", "*"),
        "userinfo-at": line("GET", f"/@{at}/x"),
        "userinfo-encoded-at": line("GET", f"/%40{at}/x"),
        "backslash-after-slash": line("GET", f"/\\{at}/x"),
        "backslashes-only": line("GET", f"\\\\{at}\\x"),
        "encoded-dot-segments": line("GET", f"/%2e%2e/%2e%2e/{at}/x"),
        "encoded-slashes": line("GET", f"/%2F%2F{at}/x"),
        "dot-segments": line("GET", f"/../../{at}/x"),
        "fragment-userinfo": line("GET", f"/x#@{at}"),
        "url-in-query": line("GET", f"/x?url=http://{at}/&next=//{at}"),
        "colon-first": line("GET", f":{canary}/x"),
        "http-colon-single-slash": line("GET", f"http:/{at}/x"),
        "spoofed-host": with_host(at),
        "spoofed-host-userinfo": with_host(f"127.0.0.1:{upstream}@{at}"),
        "x-forwarded-host": with_host(
            "proxy.test",
            f"X-Forwarded-Host: {at}",
            "X-Forwarded-Proto: http",
            f"X-Forwarded-Port: {canary}",
            "X-Forwarded-For: 127.0.0.1",
        ),
        "forwarded-header": with_host("proxy.test", f"Forwarded: host={at};proto=http"),
        "rewrite-headers": with_host(
            "proxy.test", f"X-Original-URL: http://{at}/x", f"X-Rewrite-URL: http://{at}/x"
        ),
        "proxy-headers": with_host(
            "proxy.test", "Proxy-Connection: keep-alive", "Proxy-Authorization: Basic eDp5"
        ),
        "upgrade-h2c": with_host(
            "proxy.test",
            "Upgrade: h2c",
            "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA",
        ).replace(b"Connection: close", b"Connection: Upgrade, HTTP2-Settings, close"),
    }


def assert_only_upstream(proxy: Proxy, canary: Canary, answer: RawResponse) -> None:
    """The canary saw nothing; whatever reached the upstream is an origin-form request to it."""
    assert canary.connections == 0, canary.data
    assert answer.status < 500, (answer.status, answer.body[:200])
    url = proxy.state.settings.upstream_url
    for got in proxy.standin.received:
        assert got.target.startswith("/"), got.target
        assert got.header("Host") == f"{url.host}:{url.port}"


async def test_canary_records_a_connection(canary: Canary) -> None:
    """The canary does notice a visitor, so its silence in the other tests means something."""
    answer = await exchange(canary.port, request_bytes("GET", "/x"))
    assert answer.status == 200
    assert canary.connections == 1


async def test_attacks_reach_only_the_upstream(
    proxy: Proxy, canary: Canary, figures: Figures
) -> None:
    """Absolute-form targets, CONNECT, spoofed Host and forwarding headers, @, //, \\, %2e%2e."""
    port = port_of(proxy)
    upstream = proxy.state.settings.upstream_url.port
    assert upstream is not None
    for name, raw in attacks(canary.port, upstream).items():
        proxy.standin.received.clear()
        answer = await exchange(port, raw)
        try:
            assert_only_upstream(proxy, canary, answer)
        except AssertionError as error:
            raise AssertionError(f"{name}: {error}") from error
        if name.startswith(("absolute-form", "connect", "backslashes-only", "colon-first")):
            assert 400 <= answer.status < 500, name
            assert proxy.standin.received == [], name
        if name.startswith(("spoofed-host", "x-forwarded", "forwarded", "rewrite", "proxy-")):
            assert answer.status == 200, name  # forwarded, to the upstream
        figures.count("open-proxy attempts")


async def test_redirect_to_another_host_is_not_followed(
    proxy: Proxy, canary: Canary, figures: Figures
) -> None:
    """A 3xx from the upstream pointing at another host goes back to the client, unfollowed."""
    for status in (301, 302, 303, 307, 308):
        proxy.standin.reply(
            Reply(status, b"", {"Location": f"http://127.0.0.1:{canary.port}/stolen"})
        )
    for status in (301, 302, 303, 307, 308):
        answer = await exchange(
            port_of(proxy), request_bytes("POST", "/faults/v1/redirect", (), b"{}")
        )
        assert answer.status == status
        assert answer.header("Location") == f"http://127.0.0.1:{canary.port}/stolen"
        figures.count("open-proxy attempts")
    assert len(proxy.standin.received) == 5
    assert canary.connections == 0


_CANARY_PIECES = ("http://", "https://", "//", "@", "\\", "%2F", "%2e%2e", "..", ":", "#", "?")


@EXAMPLES
@given(data=st.data())
async def test_no_target_or_host_reaches_another_server(
    proxy: Proxy, canary: Canary, figures: Figures, data: st.DataObject
) -> None:
    """Targets and Host headers mixing the canary's address with URL syntax never reach it."""
    at = f"127.0.0.1:{canary.port}"
    pieces = st.sampled_from((*_CANARY_PIECES, at, "x", "/"))
    target = data.draw(st.lists(pieces, min_size=1, max_size=8).map("".join), label="target")
    host = data.draw(st.sampled_from(["proxy.test", at, f"x@{at}", f"{at}:80", ""]))
    method = data.draw(st.sampled_from(["GET", "POST", "CONNECT", "OPTIONS", "HEAD"]))
    forwarded = data.draw(st.sampled_from(["", f"X-Forwarded-Host: {at}\r\n"]))
    raw = (
        f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n{forwarded}Connection: close\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    proxy.standin.received.clear()
    answer = await exchange(port_of(proxy), raw)
    assert_only_upstream(proxy, canary, answer)
    figures.count("open-proxy attempts")
