"""CPU cost of each stage of the proxy's request handling, in-process, without sockets.

    .venv/bin/python tests/bench/stages.py

The requests are the benchmark's own: wrk sends one cycle of `mix.lua` to a recording copy of
the stand-in, and each stage the handler runs per request is then timed on exactly those
requests, calling the proxy's and the policies' real code, including private methods of
`ProxyHandler` (`_block_response`, `_learn`, `_record`): a stage that no longer fits the code
is skipped with a note rather than failing the run. The figures are the best of several rounds,
in microseconds per request averaged over the mix, so a stage that only some requests reach
(rendering a block) counts at its share. What is not here is the I/O around them: aiohttp's
server and client, the event loop, and the thread-pool hop aiohttp makes per upstream request
when its session trusts the environment (the proxy's does): `run_bench.py --profile` shows
those.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

# Run as a file, this directory is on sys.path but the repository root is not.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import orjson
from aiohttp import web
from multidict import CIMultiDict
from prometheus_client import CollectorRegistry

from policies.core.engine import PolicyEngine
from policies.core.model import AuditedRequest, Headers, Rule, Verdict, audited_request
from proxy.app import build_state, create_app
from proxy.config import Settings
from proxy.handler import Exchange, ProxyHandler
from proxy.upstream import UpstreamResponse, end_to_end
from tests.bench.load import run_wrk
from tests.bench.upstream import Clock, VippsStandIn, answer

RESULTS = Path(__file__).resolve().parent / "results"
_CYCLE = 20  # mix.lua repeats its pattern every 20 requests


@dataclass(frozen=True)
class Captured:
    """One request as wrk sent it."""

    method: str
    target: str
    raw_headers: tuple[tuple[bytes, bytes], ...]
    body: bytes

    @property
    def headers(self) -> list[tuple[str, str]]:
        return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self.raw_headers]


def capture_mix(count: int) -> list[Captured]:
    """Let wrk send `count` requests of the mix to a recording stand-in; return them."""
    received: list[tuple[bytes, bytes]] = []
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(lambda: VippsStandIn(Clock(), received), "127.0.0.1", 0)
    )
    port = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        with tempfile.TemporaryDirectory(prefix="vipps-stages-") as tmp:
            run_wrk(f"http://127.0.0.1:{port}", seconds=10, connections=1, tag="stages",
                    workdir=Path(tmp), cpu=None, max_requests=count)  # fmt: skip
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        server.close()
        loop.close()
    captured = []
    for head, body in received[:count]:
        request_line, *lines = head.split(b"\r\n")
        method, target = request_line.decode().split(" ")[:2]
        pairs = tuple((k.strip(), v.strip()) for k, _, v in (ln.partition(b":") for ln in lines))
        captured.append(Captured(method, target, pairs, body))
    return captured


@dataclass
class Prepared:
    """A captured request with everything each stage needs as its input."""

    captured: Captured
    audited: AuditedRequest
    verdict: Verdict
    exchange: Exchange
    response: web.Response
    answer: UpstreamResponse


def best_of(rounds: int, inputs: list[Prepared], stage: Callable[[Prepared], object]) -> float:
    """Microseconds per request: the best round's time over all inputs, divided by their count."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for item in inputs:
            stage(item)
        best = min(best, time.perf_counter() - start)
    return best / len(inputs) * 1e6


@contextmanager
def devnull() -> Iterator[IO[bytes]]:
    with open("/dev/null", "wb") as handle:
        yield handle


def build_handler(write: Callable[[bytes], None]) -> tuple[ProxyHandler, PolicyEngine]:
    """The proxy's handler and engine, built by the application itself with default settings."""
    state = build_state(Settings(), registry=CollectorRegistry(), sink=write)
    app = create_app(state.settings, state)
    handler = getattr(next(iter(app.router.routes())).handler, "__self__", None)
    if not isinstance(handler, ProxyHandler):
        raise TypeError("the proxy application no longer routes to a ProxyHandler method")
    return handler, state.engine


def prepare(handler: ProxyHandler, engine: PolicyEngine, c: Captured) -> Prepared:
    """Run one captured request through the stages once, keeping each stage's input."""
    path, _, query = c.target.partition("?")
    audited = audited_request(c.method, path, Headers(c.headers), c.body, query)
    verdict = engine.evaluate(audited)
    exchange = Exchange(os.urandom(16).hex(), c.method, audited.operation, time.perf_counter())
    exchange.verdict = verdict
    status, payload = answer(c.method.encode(), c.target.encode(), c.body)
    code, _, reason = status.decode().partition(" ")
    upstream = UpstreamResponse(
        int(code), reason, [("Content-Type", "application/json; charset=utf-8")], payload
    )
    if verdict.blocked:
        response = handler._block_response(audited, verdict, exchange)
    else:
        exchange.upstream_seconds = 0.0005
        response = web.Response(status=upstream.status, body=upstream.body)
    return Prepared(c, audited, verdict, exchange, response, upstream)


def handler_stages(
    handler: ProxyHandler, engine: PolicyEngine
) -> list[tuple[str, Callable[[Prepared], object]]]:
    """What the handler does per request besides I/O, in its order, each as a function."""

    def parse(p: Prepared) -> object:
        c = p.captured
        return audited_request(c.method, p.audited.path, Headers(c.headers), c.body)

    def block(p: Prepared) -> object:
        if p.verdict.blocked:
            return handler._block_response(p.audited, p.verdict, p.exchange)
        return None

    def learn(p: Prepared) -> object:
        # As ProxyHandler._forward: remember the request, parse Vipps' answer, learn from it.
        if p.verdict.blocked:
            return None
        handler._payments.record_forwarded(p.audited)
        parsed = orjson.loads(p.answer.body)
        handler._learn(p.audited, p.answer, parsed, p.exchange)
        return parsed

    return [
        ("request id: os.urandom(16).hex()", lambda p: os.urandom(16).hex()),
        ("decode raw headers", lambda p: p.captured.headers),
        ("audited_request: identify + Headers + JSON parse", parse),
        ("PolicyEngine.evaluate: every applicable rule", lambda p: engine.evaluate(p.audited)),
        ("render the block answer (blocked requests only)", block),
        ("end_to_end + CIMultiDict for the upstream request",
         lambda p: CIMultiDict(end_to_end(p.captured.headers))),
        ("payment audit: record, parse Vipps' answer, learn", learn),
        ("ProxyHandler._record: metrics + audit log line",
         lambda p: handler._record(p.exchange, p.response, p.audited.path, p.audited.query)),
    ]  # fmt: skip


def _timed(rounds: int, inputs: list[Prepared], stage: Callable[[Prepared], object]) -> float:
    """best_of, or NaN when the stage no longer fits the proxy's code (it changes often)."""
    try:
        return best_of(rounds, inputs, stage)
    except (AttributeError, TypeError, KeyError) as error:
        print(f"  (stage skipped: {type(error).__name__}: {error})", file=sys.stderr)
        return float("nan")


def measure(rounds: int, requests: int) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """(stage, µs per request) for the handler's stages, and for each rule."""
    with devnull() as sink:
        # One write and a flush per line, as stdout_sink; the real process batches the lines
        # of one event-loop turn (BatchedSink), which this does not model.
        def write(line: bytes) -> None:
            sink.write(line)
            sink.flush()

        handler, engine = build_handler(write)
        prepared = [prepare(handler, engine, c) for c in capture_mix(requests)]
        stages = handler_stages(handler, engine)
        timed = [(name, _timed(rounds, prepared, stage)) for name, stage in stages]
        per_rule: dict[str, float] = {}
        validators = engine.body_validators
        if validators is not None:
            # The fast path's own cost; the rules it lets the engine skip are still timed below
            # on every request they apply to, as they run on bodies it cannot prove clean.
            proved = [p for p in prepared if validators.covered(p.audited.operation)]
            if proved:
                cost = _timed(rounds, proved, lambda p: validators.proves_clean(p.audited))
                per_rule["(fast path: proves_clean)"] = cost * len(proved) / len(prepared)
        for rule in engine.rules:
            applicable = [p for p in prepared if rule in engine.rules_for(p.audited.operation)]
            if applicable:
                cost = _timed(rounds, applicable, _checker(rule))
                per_rule[rule.code] = cost * len(applicable) / len(prepared)
    return timed, sorted(per_rule.items(), key=lambda kv: -kv[1])


def _checker(rule: Rule) -> Callable[[Prepared], object]:
    return lambda p: list(rule.check(p.audited))


def _latest_row4_rps() -> tuple[float, str] | None:
    for path in sorted(RESULTS.glob("*.json"), reverse=True):
        if path.name.endswith("speedscope.json"):
            continue
        rows = json.loads(path.read_text()).get("rows", [])
        for row in rows:
            if row.get("key") == "4" and row.get("rps"):
                return float(row["rps"]), path.name
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="best of this many rounds")
    parser.add_argument(
        "--requests",
        type=int,
        default=300 * _CYCLE,
        help="requests of the mix to time (default 6,000, of which 2,400 carry a phone number:"
        " more than the phone rules' cache of 2,048 readings, so it misses as with real traffic)",
    )
    args = parser.parse_args()
    timed, rules = measure(args.rounds, args.requests)
    latest = _latest_row4_rps()
    budget = 1e6 / latest[0] if latest else None
    print(
        f"µs per request, averaged over {args.requests:,} requests of the mix"
        f" (best of {args.rounds} rounds)"
    )
    if budget is not None and latest is not None:
        print(f"share: of {budget:.0f} µs, the CPU time per request of row 4 at saturation"
              f" ({latest[0]:,.0f} req/s in {latest[1]})")  # fmt: skip

    def share(value: float) -> str:
        return f"{100 * value / budget:5.1f} %" if budget else ""

    for name, value in timed:
        print(f"  {value:8.1f}  {share(value)}  {name}")
    total = sum(v for _, v in timed if v == v)  # NaN (a skipped stage) is not equal to itself
    print(f"  {total:8.1f}  {share(total)}  all of the above")
    print("\nper rule (included in PolicyEngine.evaluate above):")
    for code, value in rules:
        print(f"  {value:8.1f}  {share(value)}  {code}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
