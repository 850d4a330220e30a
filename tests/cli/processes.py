"""The console script as a long-running process (the proxy, the stand-in), and plain HTTP to it.

Output goes to a file, so a full pipe can never stall the process; every wait has a deadline;
a process is always stopped at the end, by SIGTERM and, failing that, by SIGKILL of that one.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from tests.cli.conftest import SCRIPT

START_SECONDS = 30.0
STOP_SECONDS = 30.0


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(ready: Callable[[], bool], what: str, seconds: float = START_SECONDS) -> None:
    """Poll `ready` until it is true, or fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {seconds:g} s")
        time.sleep(0.05)


def running(process: subprocess.Popen[bytes], ready: Callable[[], bool]) -> Callable[[], bool]:
    """`ready`, but failing at once if the process has already ended."""

    def check() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"{process.args!r} ended with exit code {process.returncode}")
        return ready()

    return check


def accepts(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def send(
    method: str, url: str, headers: Mapping[str, str] | None = None, body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request; 4xx and 5xx answers are returned, not raised."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"loopback only: {url}")
    request = urllib.request.Request(  # noqa: S310 - checked above: http on loopback
        url, data=body or None, headers=dict(headers or {}), method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback only
            return answer.status, dict(answer.headers.items()), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


def ready(admin_port: int) -> bool:
    """Whether the proxy's admin port answers /readyz with 200."""
    try:
        return send("GET", f"http://127.0.0.1:{admin_port}/readyz")[0] == 200
    except OSError:
        return False


def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, wait, SIGKILL if it does not end; the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@contextlib.contextmanager
def console(*args: str, env: Mapping[str, str], output: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`vipps-audit-proxy ARGS` running, its stdout and stderr in `output`; stopped after."""
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [str(SCRIPT), *args], env=dict(env), stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        stop(process)
