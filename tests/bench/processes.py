"""Child processes of the benchmark: started pinned to a core, each in its own process group,
and all stopped at the end, even on an error or Ctrl-C.

Every child is started with `start_new_session=True`, so `os.killpg` reaches it and anything
it starts (a shell, nginx's workers); `Children` is a context manager that sends SIGTERM to
every group it started, then SIGKILL to whatever is left after a short grace.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

_STOP_GRACE_SECONDS = 5.0


class BenchError(RuntimeError):
    """The benchmark cannot go on: a program is missing or a child failed to start."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pinned(cpu: str | None, argv: Sequence[str]) -> list[str]:
    """`argv` run by `taskset -c CPU` (taskset execs, so the pid stays the program's own)."""
    if cpu is None:
        return list(argv)
    return ["taskset", "-c", cpu, *argv]


def require(program: str, package: str) -> str:
    """The path of `program`, or a BenchError naming the Debian package that provides it."""
    path = shutil.which(program)
    if path is None:
        raise BenchError(f"{program} not found; install it with: apt-get install -y {package}")
    return path


@dataclass
class Child:
    """One started process and the file its output goes to."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def check_alive(self) -> None:
        """Raise BenchError with the tail of its log if the process has exited."""
        code = self.process.poll()
        if code is not None:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise BenchError(f"{self.name} exited with status {code}:\n{tail}")


class Children:
    """Starts children and stops every one of them when the `with` block ends."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._children: list[Child] = []
        self._files: list[IO[bytes]] = []

    def __enter__(self) -> Children:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop_all()

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        cpu: str | None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Child:
        """Start `argv` on `cpu`, stdout and stderr to `<workdir>/<name>.log`."""
        log = self._workdir / f"{name}.log"
        out = log.open("wb")
        self._files.append(out)
        process = subprocess.Popen(
            pinned(cpu, argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
        child = Child(name, process, log)
        self._children.append(child)
        return child

    def stop(self, child: Child) -> None:
        """SIGTERM the child's process group, then SIGKILL it after a grace period."""
        _signal_group(child.process, signal.SIGTERM)
        try:
            child.process.wait(timeout=_STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            _signal_group(child.process, signal.SIGKILL)
            child.process.wait(timeout=_STOP_GRACE_SECONDS)
        # The group may outlive its leader (a child of the child): make sure it is gone.
        _signal_group(child.process, signal.SIGKILL)
        if child in self._children:
            self._children.remove(child)

    def stop_all(self) -> None:
        for child in reversed(list(self._children)):
            try:
                self.stop(child)
            except (OSError, subprocess.TimeoutExpired):
                _signal_group(child.process, signal.SIGKILL)
        for handle in self._files:
            handle.close()
        self._files.clear()


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def wait_listening(child: Child, port: int, timeout: float = 20.0) -> None:
    """Wait until `port` on loopback accepts connections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child.check_alive()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{child.name} did not listen on port {port} within {timeout} s")


def wait_http_ok(child: Child, url: str, timeout: float = 20.0) -> None:
    """Wait until `url` answers 200 (the proxy's /readyz)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child.check_alive()
        try:
            with urllib.request.urlopen(url, timeout=1.0) as answer:  # noqa: S310 - loopback
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise BenchError(f"{child.name} was not ready at {url} within {timeout} s")


def memory_mb(pid: int) -> dict[str, float]:
    """VmHWM (peak resident set) and VmRSS of a process, in MB (10^6 bytes)."""
    sizes: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            sizes[key] = int(value.split()[0]) * 1024 / 1e6
    return sizes


_TICK = os.sysconf("SC_CLK_TCK")


def _busy_seconds() -> float:
    """CPU time spent busy on all cores since boot (user, nice, system, irq, softirq)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[:7])
    return (user + nice + system + irq + softirq) / _TICK


def _process_seconds(pid: int) -> float:
    """CPU time of a running process and of its children it has waited for."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text.rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / _TICK


def _own_seconds() -> float:
    mine = resource.getrusage(resource.RUSAGE_SELF)
    ours = resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + ours.ru_utime + ours.ru_stime


class CpuMeter:
    """How busy the machine was with processes other than the benchmark's, while it measured.

    The machine may be shared: other processes' CPU time (all busy time, less this process,
    its finished children such as wrk, and the running children listed) is reported per phase,
    in cores, so a noisy figure can be told from a slow one.
    """

    def __init__(self, pids: Sequence[int]) -> None:
        self._pids = list(pids)
        self._started = time.monotonic()
        self._busy = _busy_seconds()
        self._own = _own_seconds() + sum(_process_seconds(p) for p in self._pids)

    def other_cores(self) -> float:
        """Cores' worth of CPU used by other processes since the meter was made."""
        elapsed = time.monotonic() - self._started
        busy = _busy_seconds() - self._busy
        own = _own_seconds() + sum(_process_seconds(p) for p in self._pids) - self._own
        return max(0.0, busy - own) / elapsed if elapsed > 0 else 0.0
