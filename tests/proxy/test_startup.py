"""Start-up as an operator meets it: one clear line for a port in use, a host that does not
resolve or a mistyped setting; a `started` line that says what is in force."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Iterator
from typing import Any

import aiohttp
import orjson
import pytest

from proxy.app import plain_upstream_warning, startup_notes
from proxy.config import ConfigError, Settings, check_unknown, unknown_settings
from tests.hardening.process import finish
from tests.proxy.test_lifecycle import proxy_env, start, wait_ready
from tests.proxy.test_upstream_faults import free_port


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port another process already listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def json_lines(stdout: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stdout.splitlines()]


async def failed_start(**settings: str) -> tuple[str, list[dict[str, Any]]]:
    """Start the proxy, expect exit 2; its one stderr line and its JSON lines."""
    process = await start(proxy_env("http://127.0.0.1:9", **settings))
    stdout, stderr = await finish(process, 30)
    assert process.returncode == 2, (stdout, stderr)
    lines = stderr.decode().splitlines()
    assert len(lines) == 1, lines
    return lines[0], json_lines(stdout)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["LISTEN", "ADMIN"])
async def test_port_in_use_is_one_line_and_exit_2(which: str, taken_port: int) -> None:
    """A listen or admin port in use: one stderr line naming the variable, value and cause,
    exit 2, and a JSON startup_failed event; no traceback, no http_server_error."""
    variable = f"VIPPS_PROXY_{which}_PORT"
    line, records = await failed_start(**{variable: str(taken_port)})
    cause = "address already in use"
    assert line == f"vipps-audit-proxy: cannot start: {variable}={taken_port}: {cause}"
    events = [r["event"] for r in records]
    assert events == ["startup_failed"]
    assert records[0]["variable"] == variable
    assert records[0]["value"] == str(taken_port)
    assert records[0]["cause"] == "address already in use"
    assert records[0]["level"] == "error"


@pytest.mark.slow
async def test_host_that_does_not_resolve_is_one_line_and_exit_2() -> None:
    """A listen host that does not resolve names VIPPS_PROXY_LISTEN_HOST and the cause."""
    line, records = await failed_start(VIPPS_PROXY_LISTEN_HOST="no-such-host.invalid")
    assert line == (
        "vipps-audit-proxy: cannot start:"
        " VIPPS_PROXY_LISTEN_HOST=no-such-host.invalid: host name does not resolve"
    )
    assert [r["event"] for r in records] == ["startup_failed"]


@pytest.mark.slow
async def test_mistyped_setting_stops_startup() -> None:
    """`VIPPS_PROXY_POLICY_MOD=report` (a typo) does not start the proxy in enforce: exit 2."""
    line, records = await failed_start(VIPPS_PROXY_POLICY_MOD="report")
    assert line == (
        "vipps-audit-proxy: invalid configuration: VIPPS_PROXY_POLICY_MOD (did you mean"
        " VIPPS_PROXY_POLICY_MODE?): is not a setting (VIPPS_PROXY_STRICT_SETTINGS=false starts"
        " anyway, with a warning)"
    )
    assert records == []


@pytest.mark.slow
async def test_started_line_names_overrides_dashboard_and_warns_on_plain_http() -> None:
    """The started line names rule and rate-limit overrides and the dashboard URL; a plain
    http:// upstream that is not loopback gets a warning line."""
    admin_port = free_port()
    env = proxy_env(
        "http://192.0.2.10:8080",
        VIPPS_PROXY_ADMIN_PORT=str(admin_port),
        VIPPS_PROXY_RULE_ACTIONS="amount.bounds=block",
        VIPPS_PROXY_RATE_LIMITS="ecom.initiate_payment=off",
    )
    process = await start(env)
    try:
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, f"http://127.0.0.1:{admin_port}")
        process.send_signal(signal.SIGTERM)
        stdout, _ = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    records = json_lines(stdout)
    started = next(r for r in records if r["event"] == "started")
    assert started["rule_actions"] == {"amount.bounds": "block"}
    assert started["rate_limits"] == "ecom.initiate_payment=off"
    assert started["dashboard"] == f"http://127.0.0.1:{admin_port}/dashboard"
    [warning] = [r for r in records if r["event"] == "upstream_not_tls"]
    assert warning["level"] == "warning"
    assert warning["upstream"] == "http://192.0.2.10:8080"


@pytest.mark.parametrize(
    ("upstream", "warned"),
    [
        ("https://api.vipps.no", False),
        ("http://127.0.0.1:8081", False),
        ("http://localhost:8081", False),
        ("http://[::1]:8081", False),
        ("http://vipps-standin.shop.svc:8080", True),
        ("http://10.1.2.3", True),
    ],
)
def test_plain_http_warning_only_for_non_loopback(upstream: str, warned: bool) -> None:
    """Plain http:// is warned about unless the host is loopback."""
    settings = Settings(upstream_url=upstream)
    assert (plain_upstream_warning(settings) is not None) is warned


def test_started_notes_without_dashboard_or_overrides() -> None:
    """With the dashboard off there is no URL; no overrides are shown as empty."""
    notes = startup_notes(Settings(dashboard_enabled=False))
    assert notes == {"rule_actions": {}, "rate_limits": ""}
    shown = startup_notes(Settings(admin_host="0.0.0.0", admin_port=9999))
    assert shown["dashboard"] == "http://127.0.0.1:9999/dashboard"


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("VIPPS_PROXY_POLICY_MOD", "VIPPS_PROXY_POLICY_MODE"),
        ("VIPPS_PROXY_UPSTREAM_TIMEOUT_SECOND", "VIPPS_PROXY_UPSTREAM_TIMEOUT_SECONDS"),
        ("vipps_proxy_log_levl", "VIPPS_PROXY_LOG_LEVEL"),
        ("VIPPS_PROXY_FOO", None),
        ("VIPPS_PROXY_MODE", None),
        ("VIPPS_PROXY_CLIENT_SECRET", None),
    ],
)
def test_suggestions_come_from_the_name_after_the_prefix(name: str, suggestion: str | None) -> None:
    """A suggestion is made only when the part after VIPPS_PROXY_ is close to a setting's."""
    [unknown] = unknown_settings({name: "x"})
    assert unknown.suggestion == suggestion


@pytest.mark.parametrize(
    "name",
    [
        "VIPPS_PROXY_SERVICE_HOST",
        "VIPPS_PROXY_SERVICE_PORT",
        "VIPPS_PROXY_SERVICE_PORT_HTTP",
        "VIPPS_PROXY_PORT",
        "VIPPS_PROXY_PORT_8080_TCP",
        "VIPPS_PROXY_PORT_8080_TCP_PROTO",
        "VIPPS_PROXY_ADMIN_SERVICE_HOST",
        "VIPPS_PROXY_ADMIN_PORT_9180_TCP_ADDR",
    ],
)
def test_kubernetes_service_variables_never_stop_startup(name: str) -> None:
    """The names Kubernetes injects for a Service are no typo: strict mode lets them pass."""
    unknown = unknown_settings({name: "tcp://10.0.0.1:8080"})
    assert check_unknown(unknown, strict=True) == []


def test_strict_settings_stop_on_unknown_and_lenient_warns() -> None:
    """Strict (the default) raises naming the variable; false returns it to be warned about."""
    assert Settings().strict_settings is True
    unknown = unknown_settings({"VIPPS_PROXY_POLICY_MOD": "report", "PATH": "/bin"})
    with pytest.raises(ConfigError, match=r"^VIPPS_PROXY_POLICY_MOD \(did you mean"):
        check_unknown(unknown, strict=True)
    assert [u.name for u in check_unknown(unknown, strict=False)] == ["VIPPS_PROXY_POLICY_MOD"]
