"""What the shared state costs per request: the proxy with in-process state and with Redis on
loopback, side by side in one run.

    .venv/bin/python tests/bench/state_cost.py [ROUNDS]

Starts a stand-in Vipps (in this process), a `redis-server` on a free loopback port, and two
proxy processes (`python -m proxy`): one with in-process state, one with
VIPPS_PROXY_STATE_URL. Then it sends the same payment-level requests (create a payment, poll it,
capture part of it) through each, alternating in rounds so both see the same machine noise,
one request at a time, and prints the median and 99th-percentile request time of each and
their ratio. The figures depend on the machine and on what else runs on it; the ratio is the
comparable part.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web

# Run as a file, this directory is on sys.path but the repository root is not.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.hardening.process import ProxyProcess, proxy_process
from tests.redis_server import RedisServer, free_port
from tests.samples import EPAYMENT_CAPTURE, EPAYMENT_CREATE, EPAYMENT_GET, Sample
from tests.standin import StandIn

WARM_UP = 50


def requests_of(n: int, tag: str) -> list[Sample]:
    """Create, two polls and a capture of one payment: four requests, every one stateful."""
    reference = f"bench-{tag}-{n}"
    create = orjson.loads(EPAYMENT_CREATE.body)
    create["reference"] = reference
    capture = orjson.loads(EPAYMENT_CAPTURE.body)
    capture["modificationAmount"]["value"] = 1000
    get = Sample("GET", f"/epayment/v1/payments/{reference}", EPAYMENT_GET.headers)
    return [
        EPAYMENT_CREATE.with_body(orjson.dumps(create)).with_headers(
            Idempotency_Key=f"c-{reference}"
        ),
        get,
        get,
        Sample(
            "POST",
            f"/epayment/v1/payments/{reference}/capture",
            {**EPAYMENT_CAPTURE.headers, "Idempotency-Key": f"k-{reference}"},
        ).with_body(orjson.dumps(capture)),
    ]


async def timed(
    session: aiohttp.ClientSession, proxy: ProxyProcess, samples: list[Sample]
) -> list[float]:
    seconds = []
    for sample in samples:
        started = time.perf_counter()
        async with session.request(
            sample.method,
            proxy.listen + sample.path,
            data=sample.body or None,
            headers=sample.headers,
        ) as resp:
            await resp.read()
            if resp.status >= 300:
                raise AssertionError(f"{sample.method} {sample.path}: {resp.status}")
        seconds.append(time.perf_counter() - started)
    return seconds


async def main(rounds: int) -> None:
    standin = StandIn()
    runner = web.AppRunner(standin.app(), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    upstream = f"http://127.0.0.1:{port}/"
    server = RedisServer(shutil.which("redis-server") or "redis-server", free_port())
    server.start()
    quiet = {"VIPPS_PROXY_LOG_LEVEL": "error", "VIPPS_PROXY_POLL_AUDIT_WINDOW_SECONDS": "3600"}
    try:
        async with (
            proxy_process(upstream, **quiet) as local,
            proxy_process(upstream, VIPPS_PROXY_STATE_URL=server.url, **quiet) as shared,
            aiohttp.ClientSession() as session,
        ):
            for proxy, tag in ((local, "wl"), (shared, "ws")):
                for n in range(WARM_UP):
                    await timed(session, proxy, requests_of(n, tag))
            times: dict[str, list[float]] = {"in-process": [], "redis": []}
            for n in range(rounds):
                times["in-process"] += await timed(session, local, requests_of(n, "l"))
                times["redis"] += await timed(session, shared, requests_of(n, "s"))
            standin.received.clear()
    finally:
        server.stop()
        await runner.cleanup()
    print(f"{rounds} rounds x 4 requests per proxy, one at a time, alternating")
    summary = {}
    for name, values in times.items():
        values.sort()
        median = statistics.median(values)
        p99 = values[int(len(values) * 0.99) - 1]
        summary[name] = (median, p99)
        print(f"{name:>10}: median {median * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms")
    (local_median, local_p99), (redis_median, redis_p99) = summary["in-process"], summary["redis"]
    print(
        f"redis/in-process: median x{redis_median / local_median:.2f} "
        f"(+{(redis_median - local_median) * 1000:.2f} ms), p99 x{redis_p99 / local_p99:.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 500))
