"""The README's first example works as shown: each curl call of "Try it", sent to the proxy in
front of a stand-in for Vipps, gets the status, headers and body the README prints."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from proxy.app import build_state, create_app
from proxy.config import Settings
from tests.conftest import AiohttpClient, LogLines
from tests.samples import SUBSCRIPTION_KEY, TOKEN
from tests.standin import Reply, StandIn

README = Path(__file__).resolve().parents[2] / "README.md"
CREDENTIALS = {
    "VIPPS_ACCESS_TOKEN": TOKEN,
    "VIPPS_SUBSCRIPTION_KEY": SUBSCRIPTION_KEY,
    "VIPPS_MSN": "123456",
}
# A GET payment answer as ePayment gives it (trimmed), for the stand-in to return.
PAYMENT = (
    b'{"reference":"order-123456","state":"AUTHORIZED","aggregate":{"authorizedAmount":'
    b'{"currency":"NOK","value":49900},"cancelledAmount":{"currency":"NOK","value":0},'
    b'"capturedAmount":{"currency":"NOK","value":0},"refundedAmount":{"currency":"NOK",'
    b'"value":0}},"pspReference":"7686f7788898767977"}'
)
_FENCE = re.compile(r"```(sh|text)\n(.*?)```", re.S)


def try_it_examples() -> list[tuple[str, str]]:
    """(curl command, printed answer) pairs of the README's "Try it" section, in order."""
    text = README.read_text(encoding="utf-8")
    section = text.split("### Try it", 1)[1].split("\n## ", 1)[0]
    blocks = _FENCE.findall(section)
    pairs = list(zip(blocks[::2], blocks[1::2], strict=True))
    assert all(a[0] == "sh" and b[0] == "text" for a, b in pairs)
    return [(a[1], b[1]) for a, b in pairs]


def parse_curl(command: str) -> tuple[str, dict[str, str]]:
    """The path and headers of a `curl -si localhost:8080/... -H ...` command."""
    words = shlex.split(command.replace("\\\n", " "))
    assert words[:2] == ["curl", "-si"]
    url = words[2]
    assert url.startswith("localhost:8080/")
    headers = {}
    for flag, value in zip(words[3::2], words[4::2], strict=True):
        assert flag == "-H"
        name, _, raw = value.partition(": ")
        headers[name] = re.sub(r"\$(\w+)", lambda m: CREDENTIALS[m.group(1)], raw)
    return url.removeprefix("localhost:8080"), headers


@pytest.fixture
async def readme_proxy(
    aiohttp_client: AiohttpClient, aiohttp_server: Any
) -> tuple[TestClient[Any, Any], StandIn]:
    standin = StandIn()
    standin.reply(Reply(200, PAYMENT, headers={"Content-Type": "application/json"}))
    upstream: TestServer = await aiohttp_server(standin.app(), host="127.0.0.1")
    settings = Settings(upstream_url=str(upstream.make_url("/")))
    state = build_state(settings, registry=CollectorRegistry(), sink=LogLines())
    # No default headers: the request carries exactly what the README's command sends.
    return await aiohttp_client(create_app(settings, state)), standin


def test_readme_has_a_passing_and_a_blocked_example() -> None:
    """ "Try it" shows a call that passes first, then one the proxy stops."""
    examples = try_it_examples()
    assert [answer.splitlines()[0] for _, answer in examples] == [
        "HTTP/1.1 200 OK",
        "HTTP/1.1 400 Bad Request",
    ]


@pytest.mark.parametrize("index", [0, 1])
async def test_readme_example_answers_as_shown(
    readme_proxy: tuple[TestClient[Any, Any], StandIn], index: int
) -> None:
    """The call gets the printed status, headers and body start; only a passing call arrives
    at the stand-in, with the headers the command sent."""
    client, standin = readme_proxy
    command, answer = try_it_examples()[index]
    path, headers = parse_curl(command)
    head, _, body = answer.partition("\n\n")
    status_line, *header_lines = head.splitlines()
    _, code, reason = status_line.split(" ", 2)
    async with client.get(path, headers=headers) as resp:
        assert (resp.status, resp.reason) == (int(code), reason)
        received = (await resp.read()).decode()
        for line in header_lines:
            name, _, value = line.partition(": ")
            if name == "X-Request-Id":
                assert re.fullmatch(r"[0-9a-f]{32}", resp.headers[name])
            else:
                assert resp.headers[name] == value
    shown = body.strip()
    assert shown.endswith(",…}")
    assert received.startswith(shown.removesuffix("…}"))
    if resp.status == 200:
        [arrived] = standin.received
        assert arrived.target == path
        sent = {k.lower(): v for k, v in arrived.headers}
        assert all(sent[k.lower()] == v for k, v in headers.items())
        assert received == PAYMENT.decode()
    else:
        assert standin.received == []
