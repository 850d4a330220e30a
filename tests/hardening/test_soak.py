"""Load: a bounded soak of the proxy as a real process, at a steady rate, with forwarded,
blocked and failing requests mixed. Every request is counted at four places (the client, the
proxy's metrics, its audit log, the upstream), and all four must agree, request by request;
the proxy's memory and open file descriptors must stay flat.

The short soak runs in the suite; `VIPPS_PROXY_SOAK_SECONDS=600` runs the long one.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
import pytest
import yaml
from aiohttp import web

from proxy.config import Settings
from tests.conftest import AiohttpServer
from tests.hardening.conftest import Figures
from tests.hardening.process import ProxyProcess, finish, proxy_process
from tests.hardening.samples import CREATE_PAYMENT, HEADERS, payment

pytestmark = pytest.mark.slow

RATE = 200  # requests per second, steady
CONCURRENCY = 32
WARM_UP_SECONDS = 5.0  # caches, pools and the dashboard's ring buffer fill up first
SHORT_SECONDS = 15.0
REQUEST_SECONDS = 10.0
# The payment-level audit keeps state per payment, by design, up to VIPPS_PROXY_STATE_MAX_ENTRIES
# per store (100 000 by default), and the error dashboard keeps its latest entries. The soak
# sets the smallest caps, so both are full before the warm-up ends: any growth after it is a
# leak, not a cache filling up.
STATE_MAX_ENTRIES = 100
DASHBOARD_MAX_ENTRIES = 10
# RSS may still move by allocator noise after warm-up; a leak of even 1 kB per request would
# add about 3 MB in the short soak and over 100 MB in the long one.
RSS_GROWTH_KIB = {"short": 6 * 1024, "long": 16 * 1024}
# The client's connections close with its session, so what may outlive the run is the proxy's
# pool of idle keep-alive connections to the upstream: at most one per concurrent request,
# kept 15 s by aiohttp. A leak of one descriptor per request would be thousands.
FD_TOLERANCE = CONCURRENCY
SETTLE_SECONDS = 1.0

_SAMPLE = re.compile(r"^vipps_proxy_requests_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$", re.M)
_STATE = re.compile(r'^vipps_proxy_state_entries\{store="([^"]*)"\} (\S+)$', re.M)
_FAIL = b'{"title":"Service Unavailable","status":503,"detail":"try again later"}'


@dataclass
class SoakUpstream:
    """The upstream for the soak: records each X-Request-Id; references `fail-*` get a 503."""

    ids: list[str] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.ids.append(request.headers.get("X-Request-Id", "?"))
        if "/fail-" in request.path:
            return web.Response(status=503, body=_FAIL, content_type="application/problem+json")
        return web.Response(body=b'{"state":"CREATED"}', content_type="application/json")


KINDS = ("forwarded", "blocked", "vipps_error")


def plan(n: int) -> tuple[str, str, str, bytes, int]:
    """Request `n` of the soak: its kind, method, path, body and the status it must get.

    Every payment has a reference of its own, as in production, so no rate limit per payment
    is reached and the payment-level state grows until its cap.
    """
    slot, reference = n % 10, f"soak-{n:08d}"
    if slot < 3:
        return "forwarded", "GET", f"/epayment/v1/payments/{reference}", b"", 200
    if slot < 6:
        return "forwarded", "POST", CREATE_PAYMENT, payment(reference=reference), 200
    if slot < 8:
        return "blocked", "POST", CREATE_PAYMENT, payment("49900.0000001", reference=reference), 400
    return "vipps_error", "GET", f"/epayment/v1/payments/fail-{reference}", b"", 503


@dataclass
class Tally:
    """What the client saw."""

    sent: Counter[str] = field(default_factory=Counter)
    ok: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    upstream_ids: set[str] = field(default_factory=set)
    latencies: list[float] = field(default_factory=list)


async def one_request(
    session: aiohttp.ClientSession, proxy: ProxyProcess, n: int, tally: Tally
) -> None:
    kind, method, path, body, status = plan(n)
    request_id = f"soak-{n:08d}"
    headers = {**dict(HEADERS), "X-Request-Id": request_id, "Idempotency-Key": request_id}
    tally.sent[kind] += 1
    started = time.perf_counter()
    try:
        async with session.request(
            method, proxy.listen + path, data=body or None, headers=headers
        ) as resp:
            await resp.read()
            if resp.status == status and resp.headers.get("X-Request-Id") == request_id:
                tally.ok[kind] += 1
            else:
                tally.failures.append(f"{request_id} {kind}: {resp.status}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        tally.failures.append(f"{request_id} {kind}: {type(exc).__name__}")
    tally.latencies.append(time.perf_counter() - started)
    if kind != "blocked":
        tally.upstream_ids.add(request_id)


async def drive(
    proxy: ProxyProcess, seconds: float, first: int, tally: Tally, on_second: list[tuple[int, int]]
) -> int:
    """Send requests at RATE for `seconds` (bounded: each request has a deadline too)."""
    limiter = asyncio.Semaphore(CONCURRENCY)
    tasks: list[asyncio.Task[None]] = []
    timeout = aiohttp.ClientTimeout(total=REQUEST_SECONDS)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

        async def bounded(n: int) -> None:
            async with limiter:
                await one_request(session, proxy, n, tally)

        started = time.perf_counter()
        n = first
        next_sample = started + 1.0
        while (now := time.perf_counter()) - started < seconds:
            due = started + (n - first) / RATE
            if due > now:
                await asyncio.sleep(due - now)
            tasks.append(asyncio.create_task(bounded(n)))
            n += 1
            if time.perf_counter() >= next_sample:
                on_second.append((proxy.rss_kib(), proxy.open_fds()))
                next_sample += 1.0
        await asyncio.wait_for(asyncio.gather(*tasks), REQUEST_SECONDS + 5)
    return n


async def scrape(proxy: ProxyProcess) -> tuple[Counter[str], dict[str, int]]:
    """From the admin /metrics: vipps_proxy_requests_total summed by outcome and in total, and
    the entries held per payment-audit store."""
    async with aiohttp.ClientSession() as session, session.get(proxy.admin + "/metrics") as resp:
        text = await resp.text()
    totals: Counter[str] = Counter()
    for match in _SAMPLE.finditer(text):
        outcome = re.search(r'outcome="([^"]*)"', match["labels"])
        assert outcome is not None
        totals[outcome[1]] += int(float(match["value"]))
        totals["all"] += int(float(match["value"]))
    stores = {m[1]: int(float(m[2])) for m in _STATE.finditer(text)}
    return totals, stores


async def soak(aiohttp_server: AiohttpServer, figures: Figures, seconds: float, size: str) -> None:
    upstream = SoakUpstream()
    server = await aiohttp_server(upstream.app(), host="127.0.0.1")
    tally = Tally()
    samples: list[tuple[int, int]] = []
    async with proxy_process(
        str(server.make_url("/")),
        VIPPS_PROXY_STATE_MAX_ENTRIES=str(STATE_MAX_ENTRIES),
        VIPPS_PROXY_DASHBOARD_MAX_ENTRIES=str(DASHBOARD_MAX_ENTRIES),
    ) as proxy:
        first_rss, first_fds = proxy.rss_kib(), proxy.open_fds()
        n = await drive(proxy, WARM_UP_SECONDS, 0, tally, [])
        await asyncio.sleep(SETTLE_SECONDS)
        base_rss, base_fds = proxy.rss_kib(), proxy.open_fds()
        tally.latencies.clear()
        started = time.perf_counter()
        total = await drive(proxy, seconds, n, tally, samples)
        elapsed = time.perf_counter() - started
        await asyncio.sleep(SETTLE_SECONDS)
        end_rss, end_fds = proxy.rss_kib(), proxy.open_fds()
        metrics, stores = await scrape(proxy)
    records = [orjson.loads(line) for line in proxy.stdout.splitlines()]
    logged = [r["request_id"] for r in records if r["event"] == "request"]

    sent = sum(tally.sent.values())
    assert sent == total
    assert tally.failures == [], tally.failures[:20]
    assert tally.ok == tally.sent
    # The upstream: each forwarded request exactly once, nothing blocked ever.
    assert len(upstream.ids) == len(set(upstream.ids)), "a request reached the upstream twice"
    assert set(upstream.ids) == tally.upstream_ids
    # The proxy's own counts: metrics and audit log.
    assert metrics["all"] == sent
    assert metrics["blocked"] == tally.sent["blocked"]
    assert metrics["forwarded"] == tally.sent["forwarded"] + tally.sent["vipps_error"]
    assert len(logged) == len(set(logged)) == sent
    assert proxy.stderr == b""
    # Flat: memory and descriptors after the run, against after the warm-up.
    assert end_rss - base_rss <= RSS_GROWTH_KIB[size], (base_rss, end_rss)
    assert end_fds <= base_fds + FD_TOLERANCE, (base_fds, end_fds)
    assert all(entries <= STATE_MAX_ENTRIES for entries in stores.values()), stores

    latencies = sorted(tally.latencies)
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    figures.note(
        f"soak ({size}, {seconds:.0f} s at {RATE}/s after {WARM_UP_SECONDS:.0f} s warm-up)",
        f"{sent} requests ({(sent - n) / elapsed:.0f}/s after warm-up): counted "
        f"client={sent} metrics={metrics['all']} audit-log={len(logged)} "
        f"upstream={len(upstream.ids)} (expected {len(tally.upstream_ids)}, duplicates 0), "
        f"blocked={metrics['blocked']}, lost=0; "
        f"RSS KiB start/after-warm-up/end {first_rss}/{base_rss}/{end_rss}, "
        f"peak {max(r for r, _ in samples)}, at each quarter of the run "
        f"{[samples[len(samples) * q // 4 - 1][0] for q in (1, 2, 3, 4)]}; "
        "fds start/after-warm-up/end "
        f"{first_fds}/{base_fds}/{end_fds}, peak {max(f for _, f in samples)}; "
        f"latency p50 {statistics.median(latencies) * 1000:.1f} ms p99 {p99:.1f} ms; "
        f"state entries {stores}",
    )


async def test_short_soak(aiohttp_server: AiohttpServer, figures: Figures) -> None:
    """15 s at 200/s: four counts agree, no request lost or sent twice, RSS and fds flat."""
    await soak(aiohttp_server, figures, SHORT_SECONDS, "short")


@pytest.mark.skipif(
    "VIPPS_PROXY_SOAK_SECONDS" not in os.environ,
    reason="the long soak runs only with VIPPS_PROXY_SOAK_SECONDS set (e.g. 600)",
)
async def test_long_soak(aiohttp_server: AiohttpServer, figures: Figures) -> None:
    """The same soak for VIPPS_PROXY_SOAK_SECONDS seconds."""
    await soak(aiohttp_server, figures, float(os.environ["VIPPS_PROXY_SOAK_SECONDS"]), "long")


ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT = ROOT / "deploy" / "kubernetes" / "deployment.yaml"


def sidecar_memory_limit_mib() -> int:
    """The proxy container's memory limit in the Kubernetes deployment, in MiB."""
    spec = yaml.safe_load(DEPLOYMENT.read_text())["spec"]["template"]["spec"]
    for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        if container["name"] == "vipps-audit-proxy":
            limit: str = container["resources"]["limits"]["memory"]
            assert limit.endswith("Mi"), limit
            return int(limit.removesuffix("Mi"))
    raise AssertionError("no vipps-audit-proxy container")


async def test_payment_state_at_its_default_cap_fits_the_sidecar_memory(figures: Figures) -> None:
    """Idle memory plus the state at VIPPS_PROXY_STATE_MAX_ENTRIES fits the deployment's limit.

    The state is measured full at a cap of 1 000 in a fresh interpreter and scaled linearly to
    the default cap (a full run at 100 000 measured 197 MiB of state, some 15% under the
    projection: the verdict is the same either way).
    """
    cap = 1000
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.hardening.state_cost", str(cap),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, _ = await finish(process, 60)
    assert process.returncode == 0
    idle_kib, state_kib = (int(part) for part in stdout.split())
    default_cap = Settings.model_fields["state_max_entries"].default
    projected_mib = (idle_kib + state_kib * default_cap / cap) / 1024
    limit_mib = sidecar_memory_limit_mib()
    figures.note(
        "memory of the payment-audit state",
        f"{state_kib / cap:.2f} KiB per payment with all four stores full; at the default cap "
        f"of {default_cap} entries, {projected_mib:.0f} MiB with the idle process "
        f"({idle_kib // 1024} MiB), against a sidecar limit of {limit_mib} MiB",
    )
    assert projected_mib <= limit_mib
