"""Audit lines are written one batch per event-loop turn and are never lost.

The batched sink holds lines only until the loop's current turn ends: before the loop next
waits, while the proxy drains, and at interpreter exit every line is out.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime

import aiohttp
import orjson
import pytest

from proxy.audit import AuditLog, BatchedSink
from tests.conftest import AiohttpServer
from tests.proxy.test_lifecycle import proxy_env, start, wait_ready
from tests.samples import EPAYMENT_CAPTURE
from tests.standin import Reply, StandIn


class Stream:
    """A binary stream that records each write and flush."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.flushes = 0

    def write(self, data: bytes) -> int:
        self.writes.append(data)
        return len(data)

    def flush(self) -> None:
        self.flushes += 1


def test_without_a_running_loop_each_line_is_written_at_once() -> None:
    """Outside the event loop (start-up, shutdown) a line goes out as it is written."""
    stream = Stream()
    sink = BatchedSink(stream)  # type: ignore[arg-type]
    sink(b"one\n")
    assert stream.writes == [b"one\n"]
    assert stream.flushes == 1


async def test_lines_of_one_loop_turn_go_out_in_one_write() -> None:
    """Lines written in one turn are held until it ends, then written and flushed together."""
    stream = Stream()
    sink = BatchedSink(stream)  # type: ignore[arg-type]
    sink(b"one\n")
    sink(b"two\n")
    assert stream.writes == []
    await asyncio.sleep(0)  # let the loop finish this turn (the flush is already queued)
    assert stream.writes == [b"one\ntwo\n"]
    assert stream.flushes == 1
    sink(b"three\n")
    await asyncio.sleep(0)
    assert stream.writes == [b"one\ntwo\n", b"three\n"]


async def test_audit_log_flush_writes_what_the_sink_holds() -> None:
    """`AuditLog.flush` empties the sink without waiting for the loop."""
    stream = Stream()
    audit = AuditLog(BatchedSink(stream), "info")  # type: ignore[arg-type]
    audit.write("info", "draining", {"grace_seconds": 1})
    audit.flush()
    assert [orjson.loads(line)["event"] for line in b"".join(stream.writes).splitlines()] == [
        "draining"
    ]


def test_lines_left_when_the_loop_closes_are_written_at_exit() -> None:
    """A line whose flush never ran because the loop closed still reaches stdout at exit."""
    code = (
        "import asyncio\n"
        "from proxy.audit import BatchedSink\n"
        "sink = BatchedSink()\n"
        "loop = asyncio.new_event_loop()\n"
        "def last() -> None:\n"
        "    loop.stop()\n"  # the loop ends after this turn: the queued flush never runs
        "    sink(b'last words\\n')\n"
        "loop.call_soon(last)\n"
        "loop.run_forever()\n"
        "loop.close()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, check=True, timeout=60
    )
    assert result.stdout == b"last words\n"


def test_timestamps_are_iso_utc_with_milliseconds() -> None:
    """The cached-prefix timestamp reads as the current UTC time, to the millisecond."""
    lines: list[bytes] = []
    audit = AuditLog(lines.append, "info")
    before = datetime.now(UTC)
    audit.write("info", "started", {})
    after = datetime.now(UTC)
    stamp = orjson.loads(lines[0])["ts"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= moment <= after


async def _next_event(process: asyncio.subprocess.Process, event: str) -> None:
    """Read the process's stdout until a line of `event` arrives (10 s deadline)."""
    assert process.stdout is not None
    async with asyncio.timeout(10):
        while True:
            line = await process.stdout.readline()
            assert line, f"stdout closed before a {event!r} line"
            if orjson.loads(line)["event"] == event:
                return


@pytest.mark.slow
async def test_the_real_process_writes_each_line_before_it_waits(
    aiohttp_server: AiohttpServer,
) -> None:
    """Idle after start-up, after a request, and while draining, every line is already out."""
    standin = StandIn()
    standin.reply(Reply(200, b'{"ok":true}'), Reply(200, b'{"ok":true}', delay=2.0))
    server = await aiohttp_server(standin.app(), host="127.0.0.1")
    env = proxy_env(str(server.make_url("/")), VIPPS_PROXY_SHUTDOWN_GRACE_SECONDS="10")
    listen = f"http://127.0.0.1:{env['VIPPS_PROXY_LISTEN_PORT']}"
    admin = f"http://127.0.0.1:{env['VIPPS_PROXY_ADMIN_PORT']}"
    process = await start(env)
    try:
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, admin)
            await _next_event(process, "started")
            capture = EPAYMENT_CAPTURE
            async with session.post(
                f"{listen}{capture.path}", data=capture.body, headers=capture.headers
            ) as resp:
                assert resp.status == 200
            await _next_event(process, "request")
            slow = asyncio.create_task(
                session.post(
                    f"{listen}{capture.path}",
                    data=capture.body,
                    headers={**capture.headers, "Idempotency-Key": "idem-capture-0002"},
                )
            )
            for _ in range(500):  # up to 10 s for the slow request to reach the upstream
                if len(standin.received) == 2:
                    break
                await asyncio.sleep(0.02)
            assert len(standin.received) == 2, "the slow request did not reach the upstream"
            process.send_signal(signal.SIGTERM)
            # The slow request is still at the upstream: the draining line is out already.
            await _next_event(process, "draining")
            assert not slow.done()
            async with await slow as resp:
                assert resp.status == 200
            await _next_event(process, "request")
            await _next_event(process, "stopped")
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
