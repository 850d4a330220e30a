"""The proxy as a real process (`python -m proxy`): its output read as it comes (a full pipe
would stall it), its memory and open file descriptors read from /proc, and a stop that always
happens, by SIGTERM and, failing that, by SIGKILL of that one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp

from tests.proxy.test_lifecycle import proxy_env, start, wait_ready

STOP_SECONDS = 30.0


async def _collect(stream: asyncio.StreamReader | None, into: list[bytes]) -> None:
    if stream is None:
        return
    while chunk := await stream.read(65536):
        into.append(chunk)


@dataclass
class ProxyProcess:
    """A running `python -m proxy`, with everything it has written so far."""

    process: asyncio.subprocess.Process
    env: dict[str, str]
    stdout_chunks: list[bytes] = field(default_factory=list)
    stderr_chunks: list[bytes] = field(default_factory=list)
    readers: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def listen(self) -> str:
        return f"http://127.0.0.1:{self.env['VIPPS_PROXY_LISTEN_PORT']}"

    @property
    def listen_port(self) -> int:
        return int(self.env["VIPPS_PROXY_LISTEN_PORT"])

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.env['VIPPS_PROXY_ADMIN_PORT']}"

    @property
    def stdout(self) -> bytes:
        return b"".join(self.stdout_chunks)

    @property
    def stderr(self) -> bytes:
        return b"".join(self.stderr_chunks)

    def rss_kib(self) -> int:
        """Resident memory now, from /proc/PID/status (VmRSS, in KiB)."""
        with open(f"/proc/{self.process.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS line")

    def open_fds(self) -> int:
        """File descriptors open now, from /proc/PID/fd."""
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    async def stop(self) -> int | None:
        """SIGTERM, wait for the drain, SIGKILL if it does not end; return the exit code."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), STOP_SECONDS)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        await asyncio.gather(*self.readers, return_exceptions=True)
        return self.process.returncode


async def finish(process: asyncio.subprocess.Process, seconds: float) -> tuple[bytes, bytes]:
    """Wait for a process that should end by itself; kill it if it has not within `seconds`."""
    try:
        return await asyncio.wait_for(process.communicate(), seconds)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@contextlib.asynccontextmanager
async def proxy_process(upstream_url: str, **settings: str) -> AsyncIterator[ProxyProcess]:
    """Start the proxy against `upstream_url` with `VIPPS_PROXY_*` settings; stop it after."""
    env = proxy_env(upstream_url, **settings)
    running = ProxyProcess(await start(env), env)
    running.readers = [
        asyncio.create_task(_collect(running.process.stdout, running.stdout_chunks)),
        asyncio.create_task(_collect(running.process.stderr, running.stderr_chunks)),
    ]
    try:
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, running.admin)
        yield running
    finally:
        await running.stop()
