"""The dashboard in a real browser: headless Chromium renders the groups the proxy saw.

Needs Debian's `chromium`. Skips when it is absent, except under CI=true, where it fails.
The page is loaded with a virtual-time budget, so Chromium runs the page's polling for a few
seconds of page time and then hands back the DOM (or a screenshot) as the script left it.
"""

from __future__ import annotations

import asyncio
import shutil
import struct
from pathlib import Path
from urllib.parse import quote

import orjson
import pytest
from aiohttp import web

from proxy.app import create_admin_app
from tests.binaries import require_binary
from tests.conftest import AiohttpServer, ProxyFactory
from tests.proxy.test_dashboard import THIRTEEN, RefusesThirteen
from tests.samples import ECOM_CAPTURE, EPAYMENT_CAPTURE
from tests.standin import Reply

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--window-size=1280,900",
    "--virtual-time-budget=5000",
)
CHROMIUM_SECONDS = 30
# A fixed place where people look at the last rendering; the test writes its own copy first.
SHARED_SCREENSHOT = Path("/tmp/dashboard.png")  # noqa: S108
XSS = '<img src=x id="pwned" onerror="document.title=1">'
CAPTURE_ERROR = orjson.dumps(
    {
        "type": "https://httpstatuses.io/400",
        "title": "Cannot capture before reservation",
        "detail": f"Echoed by a test: {XSS}",
        "instance": "/v1/payments/order-123456/capture",
        "status": 400,
        "extraDetails": [{"name": "ErrorCode", "reason": "6080"}],
        "traceId": "00-813b63975adcaaeef2b0ec7c103c40e3-706492e906541d31-01",
    }
)
OPENED_GROUP = "epayment|capture_payment|400|6080"


async def run_chromium(browser: str, profile: Path, *args: str) -> bytes:
    """Run headless Chromium to completion and return its standard output."""
    process = await asyncio.create_subprocess_exec(
        browser,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), CHROMIUM_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"chromium did not finish within {CHROMIUM_SECONDS} s")
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    return out


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_dashboard_renders_groups_and_updates_live(
    make_proxy: ProxyFactory, aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    """Chromium shows each group with its count, escapes echoed HTML, and picks up new records."""
    browser = require_binary("chromium")
    proxy = await make_proxy(rules=[RefusesThirteen()], upstream_timeout_seconds=0.2)
    admin = create_admin_app(proxy.state)
    polls = 0

    async def after_first_poll(request: web.Request, response: web.StreamResponse) -> None:
        # A record that arrives while the page is open must appear without a reload.
        nonlocal polls
        if request.path == "/dashboard/data" and response.status == 200:
            polls += 1
            if polls == 1:
                proxy.state.audit.write(
                    "warning",
                    "payment_unpolled",
                    {"rule": "polling.never_polled", "api": "epayment", "reference": "order-live"},
                )

    admin.on_response_prepare.append(after_first_poll)
    server = await aiohttp_server(admin, host="127.0.0.1")

    proxy.standin.reply(
        *[Reply(400, CAPTURE_ERROR, {"Content-Type": "application/problem+json"})] * 3,
        Reply(503, b"<html>busy</html>", {"Content-Type": "text/html"}),
        Reply(200, b"{}", delay=1.0),
    )

    async def send(method: str, path: str, body: bytes = b"") -> None:
        async with proxy.client.request(method, path, data=body) as resp:
            await resp.read()

    for _ in range(3):
        await send("POST", "/epayment/v1/payments/order-123456/capture", b"{}")
    await send("POST", "/epayment/v1/payments", THIRTEEN)
    await send("POST", "/epayment/v1/payments", THIRTEEN)
    await send("GET", "/epayment/v1/payments/order-123456")
    await send("GET", "/epayment/v1/payments/order-123456")

    url = str(server.make_url("/dashboard")) + "#group=" + quote(OPENED_GROUP, safe="")
    screenshot = tmp_path / "dashboard.png"
    # One browser at a time, so the record written after the first poll is news to this one.
    dom = (await run_chromium(browser, tmp_path / "profile-dom", "--dump-dom", url)).decode()
    assert polls >= 2
    await run_chromium(browser, tmp_path / "profile-shot", f"--screenshot={screenshot}", url)

    assert 'class="status live"' in dom
    for key, count in [
        (OPENED_GROUP, 3),
        ("epayment|create_payment|400|test.thirteen", 2),
        ("epayment|get_payment|503|none", 1),
        ("epayment|get_payment|504|timeout", 1),
        ("epayment|payment_unpolled|-|polling.never_polled", 1),
    ]:
        row = dom.split(f'data-key="{key}"', 1)
        assert len(row) == 2, f"no row for {key}"
        assert f'<td class="num count">{count}</td>' in row[1].split("</tr>", 1)[0], key
    # Totals in the header: Vipps errors (3 + 503), blocks, upstream errors.
    assert '<span class="n" id="t-vipps_errors">4</span>' in dom
    assert '<span class="n" id="t-blocked">2</span>' in dom
    assert '<span class="n" id="t-upstream_errors">1</span>' in dom
    # The opened group's example body is shown, its echoed HTML as text, never as markup.
    assert "Cannot capture before reservation" in dom
    assert 'Echoed by a test: &lt;img src=x id=\\"pwned\\"' in dom
    assert "<img" not in dom
    assert "<title>Vipps API errors" in dom  # the echoed onerror never ran

    shot = screenshot.read_bytes()
    assert png_size(shot) == (1280, 900)
    shutil.copyfile(screenshot, SHARED_SCREENSHOT)


async def test_dashboard_shows_how_vipps_graded_the_rules(
    make_proxy: ProxyFactory, aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    """Chromium shows per rule how often Vipps accepted (contradicted) and rejected (confirmed)
    what the rule doubted, with the latest example."""
    browser = require_binary("chromium")
    proxy = await make_proxy()
    server = await aiohttp_server(create_admin_app(proxy.state), host="127.0.0.1")
    proxy.standin.reply(
        Reply(200, b"{}"),
        Reply(200, b"{}"),
        Reply(400, CAPTURE_ERROR, {"Content-Type": "application/problem+json"}),
    )
    # Forwarded with a report-only finding each: a 36-character system name (twice, Vipps
    # accepts), an eCom capture without X-Request-Id (Vipps refuses this one).
    long_name = {"Vipps-System-Name": "https://shop.example-with-domains.no"}
    for n in range(2):
        headers = {**long_name, "Idempotency-Key": f"idem-capture-{n}"}
        async with proxy.client.post(
            EPAYMENT_CAPTURE.path, data=EPAYMENT_CAPTURE.body, headers=headers
        ) as resp:
            assert resp.status == 200
    async with proxy.client.post(ECOM_CAPTURE.path, data=ECOM_CAPTURE.body) as resp:
        assert resp.status == 400

    dom = (
        await run_chromium(
            browser, tmp_path / "profile", "--dump-dom", str(server.make_url("/dashboard"))
        )
    ).decode()

    assert "Vipps grades the rules" in dom
    rows = {}
    for rule in ("header.format", "header.missing"):
        parts = dom.split(f'data-rule="{rule}"', 1)
        assert len(parts) == 2, f"no grade row for {rule}"
        rows[rule] = parts[1].split("</tr>", 1)[0]
    assert '<td class="num count contradicted">2</td>' in rows["header.format"]
    assert '<td class="num count">0</td>' in rows["header.format"]
    assert "Vipps-System-Name" in rows["header.format"]
    assert '<td class="num count confirmed">1</td>' in rows["header.missing"]
    assert "X-Request-Id" in rows["header.missing"]
    assert "Vipps rejected (400)" in rows["header.missing"]
    # Most contradicted first.
    assert dom.index('data-rule="header.format"') < dom.index('data-rule="header.missing"')
    assert 'id="grades-empty" class="empty" hidden' in dom
