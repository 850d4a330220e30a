"""Fixtures: a stand-in Vipps on loopback, and the real proxy pointed at it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from policies.core.engine import PolicyEngine, PolicyMode
from policies.core.model import Rule
from proxy.app import ProxyState, build_state, create_admin_app, create_app
from proxy.config import Settings
from tests.redis_server import RedisServer, redis_server
from tests.samples import BEARER
from tests.standin import StandIn

MERCHANT_HEADERS = {k: v for k, v in BEARER.items() if k != "Content-Type"}

AiohttpServer = Callable[..., Awaitable[TestServer]]
AiohttpClient = Callable[..., Awaitable[TestClient[Any, Any]]]


@dataclass
class LogLines:
    """An audit sink that keeps every line, and parses them on demand."""

    lines: list[bytes] = field(default_factory=list)

    def __call__(self, line: bytes) -> None:
        self.lines.append(line)

    @property
    def records(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.lines]

    def of(self, event: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["event"] == event]

    def text(self) -> str:
        return b"".join(self.lines).decode()


@dataclass
class Proxy:
    """A running proxy: its client, its state, its upstream stand-in and its log lines."""

    client: TestClient[Any, Any]
    state: ProxyState
    standin: StandIn
    log: LogLines

    @property
    def registry(self) -> CollectorRegistry:
        return self.state.registry

    def sample(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


@pytest.fixture(autouse=True)
def no_egress_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback tests talk to loopback: a forward proxy set for the machine is not used."""
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def standin() -> StandIn:
    return StandIn()


@pytest.fixture
async def upstream(aiohttp_server: AiohttpServer, standin: StandIn) -> TestServer:
    """The stand-in Vipps, listening on 127.0.0.1."""
    return await aiohttp_server(standin.app(), host="127.0.0.1")


ProxyFactory = Callable[..., Awaitable[Proxy]]


@pytest.fixture
def make_proxy(
    aiohttp_client: AiohttpClient, upstream: TestServer, standin: StandIn
) -> ProxyFactory:
    """Build a proxy against the stand-in; `rules` replaces the default rules when given."""

    async def build(
        rules: Sequence[Rule] | None = None,
        mode: PolicyMode = PolicyMode.ENFORCE,
        **overrides: Any,
    ) -> Proxy:
        settings = Settings(upstream_url=str(upstream.make_url("/")), **overrides)
        log = LogLines()
        engine = (
            PolicyEngine(rules, mode, settings.rule_actions, fail_open=settings.policy_fail_open)
            if rules is not None
            else None
        )
        state = build_state(settings, registry=CollectorRegistry(), engine=engine, sink=log)
        state.lifecycle.ready = True
        # Every test request carries the headers a real merchant sends, so that the default
        # rules judge what a test changes, not missing credentials.
        client = await aiohttp_client(create_app(settings, state), headers=MERCHANT_HEADERS)
        return Proxy(client, state, standin, log)

    return build


@pytest.fixture
async def proxy(make_proxy: ProxyFactory) -> Proxy:
    """The proxy with its default rules and settings."""
    return await make_proxy()


@pytest.fixture
async def admin_client(aiohttp_client: AiohttpClient, proxy: Proxy) -> TestClient[Any, Any]:
    """The admin application of `proxy`, on its own loopback port."""
    return await aiohttp_client(create_admin_app(proxy.state))


@pytest.fixture(scope="session")
def redis_session() -> Iterator[RedisServer]:
    """One redis-server for the whole run (each test's upstream port separates its keys)."""
    with redis_server() as server:
        yield server


@pytest.fixture
def redis_state(redis_session: RedisServer) -> RedisServer:
    """The session's redis-server, emptied for this test: an upstream port reused by a later
    test would otherwise find an earlier test's payments under the same keys."""
    redis_session.flush()
    return redis_session
