"""Fixtures of the hardening suite: a stand-in that records the bytes on the wire, a canary
server that must never be reached, and the figures the suite reports at the end of a run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, settings
from prometheus_client import CollectorRegistry

from proxy.app import ProxyState, build_state, create_app
from proxy.config import Settings
from tests.conftest import AiohttpServer, LogLines, Proxy
from tests.hardening.wire import LOOPBACK, Canary
from tests.standin import StandIn

# Hypothesis settings of the suite's property tests: bounded, and one proxy per test function
# (the tests forget the stand-in's records before each example instead).
EXAMPLES = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@dataclass
class Figures:
    """Counts and measurements for the README's Reliability section, printed after the run."""

    counts: Counter[str] = field(default_factory=Counter)
    notes: dict[str, str] = field(default_factory=dict)

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def note(self, name: str, text: str) -> None:
        self.notes[name] = text


FIGURES = Figures()


@pytest.fixture
def figures() -> Figures:
    """The run's figures (one object for the whole session)."""
    return FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the figures of whatever part of the hardening suite ran."""
    if not FIGURES.counts and not FIGURES.notes:
        return
    terminalreporter.section("hardening figures")
    for name, value in sorted(FIGURES.counts.items()):
        terminalreporter.write_line(f"{name}: {value}")
    for name, text in sorted(FIGURES.notes.items()):
        terminalreporter.write_line(f"{name}: {text}")


def port_of(proxy: Proxy) -> int:
    """The loopback port the in-process proxy listens on, for raw-socket requests."""
    port = proxy.client.server.port
    assert port is not None
    return port


@pytest.fixture
async def upstream(aiohttp_server: AiohttpServer, standin: StandIn) -> TestServer:
    """The stand-in Vipps on 127.0.0.1, recording bodies as they were on the wire.

    aiohttp's server decodes `Content-Encoding: gzip` bodies by default, which would hide
    what the proxy really sent; this stand-in keeps them as they arrived.
    """
    return await aiohttp_server(standin.app(), host="127.0.0.1", auto_decompress=False)


@pytest.fixture
async def canary() -> AsyncIterator[Canary]:
    """A second loopback server that no request may ever reach."""
    server = Canary()
    await server.start()
    yield server
    await server.stop()


@dataclass
class ServedProxy:
    """The proxy on a loopback port, served the way `proxy.app.serve` serves it."""

    port: int
    state: ProxyState
    log: LogLines

    def sample(self, name: str, **labels: str) -> float:
        value = self.state.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


ServeProxy = Callable[..., Awaitable[ServedProxy]]


@pytest.fixture
async def serve_proxy(upstream: TestServer) -> AsyncIterator[ServeProxy]:
    """Serve proxies with a plain AppRunner, as production does; cleaned up after the test.

    aiohttp's TestServer cancels a handler when its client hangs up; `serve()` does not, so
    tests of clients that disconnect must run the proxy this way to see what production does.
    """
    runners: list[web.AppRunner] = []

    async def serve(upstream_url: str | None = None, **overrides: Any) -> ServedProxy:
        url = upstream_url if upstream_url is not None else str(upstream.make_url("/"))
        settings = Settings(upstream_url=url, **overrides)
        log = LogLines()
        state = build_state(settings, registry=CollectorRegistry(), sink=log)
        runner = web.AppRunner(create_app(settings, state), access_log=None, handle_signals=False)
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, LOOPBACK, 0).start()
        port: int = runner.addresses[0][1]
        return ServedProxy(port, state, log)

    yield serve
    for runner in runners:
        await runner.cleanup()
