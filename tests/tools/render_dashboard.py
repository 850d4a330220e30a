"""Render `docs/dashboard.png` from realistic traffic.

Starts a stand-in for Vipps that answers as Vipps does (payments created and captured, a
capture before reservation refused with ErrorCode 6080, an eCom user not registered, a 429
on a polled payment), starts the proxy as a real process (`python -m proxy`) in front of it,
sends a merchant's day in miniature through the proxy (ePayment creates, polls, captures and a
refund; eCom payments; a float amount and a Danish number for eCom that the proxy blocks; a
phone number the proxy repairs), then takes a screenshot of the error dashboard with headless
Chromium.

Usage (from the repository root; needs `chromium`):

    .venv/bin/python -m tests.tools.render_dashboard            # writes docs/dashboard.png
    .venv/bin/python -m tests.tools.render_dashboard out.png    # somewhere else
"""

from __future__ import annotations

import asyncio
import copy
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from tests.samples import (
    ECOM_INITIATE,
    EPAYMENT_CAPTURE,
    EPAYMENT_CREATE,
    EPAYMENT_GET,
    EPAYMENT_REFUND,
    Sample,
)
from tests.standin import ECOM_ERRORS, EPAYMENT_PROBLEM

OUTPUT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--window-size=1280,900",
    "--virtual-time-budget=5000",
)
SECONDS = 60.0
# Orders whose capture Vipps refuses (the user has not approved yet) and that it rate-limits.
UNAPPROVED = frozenset({"order-20417"})
THROTTLED = frozenset({"order-20422"})
UNREGISTERED = frozenset({"order-31007"})
RATE_LIMITED = orjson.dumps(
    {
        "type": "https://httpstatuses.io/429",
        "title": "Too Many Requests",
        "status": 429,
        "detail": "Rate limit is exceeded. Try again in 12 seconds.",
        "traceId": "00-4b2e0d3f1c9a8e7d6c5b4a3928170615-1a2b3c4d5e6f7081-01",
    }
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Vipps:
    """A stand-in answering like the Vipps test environment, decided by path."""

    seen: list[str] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        path = request.path
        self.seen.append(f"{request.method} {path}")
        reference = next((part for part in path.split("/") if part.startswith("order-")), "")
        if path.startswith("/ecomm/v2/payments") and request.method == "POST":
            order = orjson.loads(body)["transaction"]["orderId"] if body else ""
            if order in UNREGISTERED:
                return json(400, ECOM_ERRORS)
            return json(202, orjson.dumps({"orderId": order, "url": "https://api.vipps.no/dwo"}))
        if path.endswith("/capture") and reference in UNAPPROVED:
            return json(400, EPAYMENT_PROBLEM, "application/problem+json")
        if request.method == "GET" and reference in THROTTLED:
            return json(429, RATE_LIMITED, "application/problem+json", {"Retry-After": "12"})
        if path == "/epayment/v1/payments":
            created = orjson.loads(body)["reference"]
            answer = {"reference": created, "redirectUrl": "https://pay.vipps.no/dwo-api"}
            return json(201, orjson.dumps(answer))
        return json(200, orjson.dumps({"reference": reference, "state": "AUTHORIZED"}))


def json(
    status: int,
    body: bytes,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> web.Response:
    return web.Response(
        status=status, body=body, headers={"Content-Type": content_type, **(headers or {})}
    )


def for_order(sample: Sample, reference: str, key: str | None = None, **body: Any) -> Sample:
    """The sample for another order (path, reference and idempotency key), body changed."""
    payload = copy.deepcopy(sample.json)
    if isinstance(payload, dict) and "reference" in payload:
        payload["reference"] = reference
    for dotted, value in body.items():
        node = payload
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[part]
        node[last] = value
    headers = dict(sample.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    return Sample(sample.method, sample.path.replace("order-123456", reference), headers, payload)


def traffic() -> list[Sample]:
    """A merchant's morning in miniature, in the order it is sent."""
    orders = [f"order-{n}" for n in range(20411, 20423)]
    mix: list[Sample] = []
    for n, reference in enumerate(orders):
        mix.append(for_order(EPAYMENT_CREATE, reference, f"create-{reference}"))
        if n % 4 == 0:
            mix.append(for_order(EPAYMENT_GET, reference))
        if n % 3 != 2:
            mix.append(for_order(EPAYMENT_CAPTURE, reference, f"capture-{reference}"))
    mix.append(for_order(EPAYMENT_REFUND, orders[0], f"refund-{orders[0]}"))
    mix += [for_order(EPAYMENT_GET, "order-20422") for _ in range(3)]
    # Amounts in kroner with a decimal point: Vipps wants øre as an integer.
    mix += [
        for_order(EPAYMENT_CREATE, f"order-2043{n}", f"create-2043{n}", amount__value=499.0)
        for n in range(2)
    ]
    # A notation slip the proxy repairs before Vipps sees it.
    mix.append(
        for_order(
            EPAYMENT_CREATE, "order-20440", "create-20440", customer__phoneNumber="+47 912 34 567"
        )
    )
    # eCom: a Danish number (eCom takes Norwegian numbers only), an unregistered user.
    ecom = ECOM_INITIATE
    mix.append(
        for_order(
            ecom,
            "order-31002",
            transaction__orderId="order-31002",
            customerInfo__mobileNumber="+45 20 12 34 56",
        )
    )
    mix += [
        for_order(ecom, order, transaction__orderId=order)
        for order in ("order-31005", "order-31006", "order-31007")
    ]
    # A shop plugin that names the system by the shop's domain, longer than the 30 characters
    # the docs advise: Vipps accepts it, so the rule only reports, and Vipps' answer grades it.
    mix += [
        for_order(EPAYMENT_CREATE, order, f"create-{order}").with_headers(
            Vipps_System_Name="www.fjellsport-nettbutikk-eksempel.no"
        )
        for order in ("order-20450", "order-20451")
    ]
    return mix


@asynccontextmanager
async def running_proxy(upstream: str) -> AsyncIterator[tuple[str, str]]:
    """`python -m proxy` against `upstream`; yields its listen and admin base URLs."""
    listen, admin = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIPPS_PROXY_")}
    env.update(
        VIPPS_PROXY_UPSTREAM_URL=upstream,
        VIPPS_PROXY_LISTEN_PORT=str(listen),
        VIPPS_PROXY_ADMIN_PORT=str(admin),
        VIPPS_PROXY_LOG_LEVEL="warning",
        VIPPS_PROXY_SHUTDOWN_GRACE_SECONDS="2",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", env=env, stdout=asyncio.subprocess.DEVNULL
    )
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(f"http://127.0.0.1:{admin}/readyz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError("the proxy did not become ready")
        yield f"http://127.0.0.1:{listen}", f"http://127.0.0.1:{admin}"
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


async def send(listen: str, requests: list[Sample]) -> list[int]:
    """Send each request in order; the statuses the merchant got."""
    statuses = []
    async with aiohttp.ClientSession() as session:
        for sample in requests:
            async with session.request(
                sample.method, listen + sample.path, data=sample.body, headers=sample.headers
            ) as resp:
                await resp.read()
                statuses.append(resp.status)
    return statuses


async def screenshot(url: str, output: Path) -> None:
    """Headless Chromium's screenshot of `url` into `output`."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise RuntimeError("chromium is not installed (apt-get install -y chromium)")
    with tempfile.TemporaryDirectory() as profile:
        process = await asyncio.create_subprocess_exec(
            browser,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={output}",
            url,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await asyncio.wait_for(process.wait(), SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"chromium failed with exit code {process.returncode}")


@asynccontextmanager
async def dashboard_with_traffic() -> AsyncIterator[tuple[str, list[int]]]:
    """The stand-in and the proxy, the mix sent; yields the admin URL and the statuses."""
    runner = web.AppRunner(Vipps().app(), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with running_proxy(f"http://127.0.0.1:{port}") as (listen, admin):
            yield admin, await send(listen, traffic())
    finally:
        await runner.cleanup()


async def render(output: Path) -> list[int]:
    """Send the mix and write the screenshot; returns the statuses the merchant got."""
    async with dashboard_with_traffic() as (admin, statuses):
        await screenshot(f"{admin}/dashboard", output)
    return statuses


def main() -> None:
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT
    statuses = asyncio.run(render(output))
    print(f"{len(statuses)} requests sent; dashboard written to {output}")


if __name__ == "__main__":
    main()
