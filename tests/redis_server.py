"""A real `redis-server` on a free loopback port, for the shared-state tests.

It keeps nothing on disk (`--save ''`, `--appendonly no`), listens on 127.0.0.1 only, and dies
with the test process (PR_SET_PDEATHSIG), so an interrupted run leaves none behind. Fault tests
pause it (SIGSTOP), resume it, kill it and start it again on the same port.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

from tests.binaries import require_binary

START_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def command(port: int, *words: str) -> str | None:
    """Send one command; the first line of the answer (`+OK`, `:3`), or None if none came."""
    message = f"*{len(words)}\r\n" + "".join(f"${len(w)}\r\n{w}\r\n" for w in words)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(message.encode())
            reply = sock.recv(1024)
    except OSError:
        return None
    return reply.split(b"\r\n", 1)[0].decode(errors="replace")


@dataclass
class RedisServer:
    """One running redis-server; `url` is what VIPPS_PROXY_STATE_URL takes."""

    binary: str
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--loglevel", "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )  # fmt: skip
        deadline = time.monotonic() + START_SECONDS
        while command(self.port, "PING") != "+PONG":
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Kill it (SIGKILL: as abrupt as a crash), and wait for it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def flush(self) -> None:
        assert command(self.port, "FLUSHALL") == "+OK"


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A fresh redis-server for the block; skipped when absent (failed under CI=true)."""
    server = RedisServer(require_binary("redis-server"), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
