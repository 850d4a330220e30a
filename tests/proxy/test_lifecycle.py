"""The real process: start-up, configuration errors, and draining on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping

import aiohttp
import orjson
import pytest

from tests.conftest import AiohttpServer
from tests.proxy.test_upstream_faults import free_port
from tests.samples import EPAYMENT_CAPTURE
from tests.standin import Reply, StandIn

pytestmark = pytest.mark.slow


def proxy_env(upstream: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIPPS_PROXY_")}
    env.update(
        VIPPS_PROXY_UPSTREAM_URL=upstream,
        VIPPS_PROXY_LISTEN_PORT=str(free_port()),
        VIPPS_PROXY_ADMIN_PORT=str(free_port()),
    )
    env.update(extra)
    return env


async def start(env: Mapping[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", env=dict(env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def wait_ready(session: aiohttp.ClientSession, admin: str, status: int = 200) -> None:
    """Wait (10 s at most) until the admin port's /readyz answers `status`."""
    for _ in range(200):
        try:
            async with session.get(f"{admin}/readyz") as resp:
                if resp.status == status:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"/readyz did not answer {status}")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_sigterm_drains_in_flight_requests(
    aiohttp_server: AiohttpServer, session: aiohttp.ClientSession
) -> None:
    """SIGTERM during slow in-flight requests: every one completes, readiness drops, exit 0."""
    standin = StandIn()
    standin.reply(*[Reply(200, b'{"ok":true}', delay=1.5) for _ in range(5)])
    server = await aiohttp_server(standin.app(), host="127.0.0.1")
    env = proxy_env(str(server.make_url("/")), VIPPS_PROXY_SHUTDOWN_GRACE_SECONDS="10")
    listen = f"http://127.0.0.1:{env['VIPPS_PROXY_LISTEN_PORT']}"
    admin = f"http://127.0.0.1:{env['VIPPS_PROXY_ADMIN_PORT']}"
    process = await start(env)
    try:
        await wait_ready(session, admin)

        async def call(i: int) -> tuple[int, bytes]:
            capture = EPAYMENT_CAPTURE.with_headers(Idempotency_Key=f"idem-drain-{i}")
            path = capture.path.replace("order-123456", f"order-{i:08d}")
            async with session.post(
                f"{listen}{path}", data=capture.body, headers=capture.headers
            ) as resp:
                return resp.status, await resp.read()

        calls = [asyncio.create_task(call(i)) for i in range(5)]
        for _ in range(250):
            if len(standin.received) == 5:
                break
            await asyncio.sleep(0.02)
        assert len(standin.received) == 5, "the requests did not reach the upstream"
        process.send_signal(signal.SIGTERM)
        await wait_ready(session, admin, status=503)
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(f"{listen}/x", timeout=aiohttp.ClientTimeout(total=2)):
                pass
        results = await asyncio.gather(*calls)
        assert results == [(200, b'{"ok":true}')] * 5
        assert await asyncio.wait_for(process.wait(), 10) == 0
        assert len(standin.received) == 5
        stdout = (await process.communicate())[0]
        events = [orjson.loads(line)["event"] for line in stdout.splitlines()]
        assert events[0] == "started"
        # The in-flight requests finish (and are logged) after draining starts, before the stop.
        assert events == ["started", "draining", *["request"] * 5, "stopped"]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            "VIPPS_PROXY_LISTEN_PORT",
            "eighty",
            "VIPPS_PROXY_LISTEN_PORT: Input should be a valid integer",
        ),
        (
            "VIPPS_PROXY_UPSTREAM_URL",
            "ftp://x",
            "VIPPS_PROXY_UPSTREAM_URL: URL scheme should be 'http' or 'https'",
        ),
        (
            "VIPPS_PROXY_POLICY_MODE",
            "strict",
            "VIPPS_PROXY_POLICY_MODE: Input should be 'enforce', 'report' or 'off'",
        ),
        (
            "VIPPS_PROXY_RULE_ACTIONS",
            "no.such.rule=block",
            "VIPPS_PROXY_RULE_ACTIONS: unknown rule no.such.rule",
        ),
        (
            "VIPPS_PROXY_RULE_ACTIONS",
            "amount.bounds",
            "VIPPS_PROXY_RULE_ACTIONS: 'amount.bounds' is not of the form rule=action",
        ),
    ],
)
async def test_invalid_setting_stops_startup_with_one_line(
    variable: str, value: str, expected: str
) -> None:
    """An invalid value exits non-zero with one readable line naming the variable."""
    process = await start(proxy_env("http://127.0.0.1:9", **{variable: value}))
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert expected in lines[0]
    assert stdout == b""


async def test_unknown_variable_is_reported_with_a_suggestion(
    session: aiohttp.ClientSession,
) -> None:
    """Without strict settings, a misspelt VIPPS_PROXY_ variable is logged as a warning
    naming the closest setting."""
    env = proxy_env(
        "http://127.0.0.1:9",
        VIPPS_PROXY_UPSTREAM_TIMEOUT_SECOND="5",
        VIPPS_PROXY_STRICT_SETTINGS="false",
    )
    process = await start(env)
    try:
        await wait_ready(session, f"http://127.0.0.1:{env['VIPPS_PROXY_ADMIN_PORT']}")
        process.send_signal(signal.SIGTERM)
        stdout, _ = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
    first = orjson.loads(stdout.splitlines()[0])
    assert first["event"] == "unknown_setting"
    assert first["level"] == "warning"
    assert "did you mean VIPPS_PROXY_UPSTREAM_TIMEOUT_SECONDS" in first["variable"]
