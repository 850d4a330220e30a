"""Load generation: one run of wrk with the workload of `mix.lua`, and what it measured.

wrk runs one thread (`-t1`); at `rate=0` it keeps every connection busy (saturation), at a
positive rate `mix.lua` paces the thread on a fixed schedule (see its `delay()`). A run with
`max_requests` stops after that many responses: the script stops its thread and says so on
stderr, and wrk, which otherwise sleeps out its whole duration, is interrupted with SIGINT.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.bench.processes import BenchError, pinned

MIX = Path(__file__).resolve().parent / "mix.lua"
_RESULT_PREFIX = "BENCH_RESULT "
_LIMIT_MARK = "BENCH_LIMIT_REACHED"


@dataclass(frozen=True)
class LoadResult:
    """What one wrk run measured; latencies are in microseconds, from write to last byte."""

    requests: int
    seconds: float
    statuses: dict[str, int]
    errors: dict[str, int]
    latency_us: dict[str, float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def socket_errors(self) -> int:
        return sum(v for k, v in self.errors.items() if k != "status")

    def share(self, status: str) -> float:
        """The fraction of responses with `status`."""
        total = sum(self.statuses.values())
        return self.statuses.get(status, 0) / total if total else 0.0

    def as_json(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "rps": round(self.rps, 1),
            "statuses": self.statuses,
            "errors": self.errors,
            "latency_us": self.latency_us,
        }


def run_wrk(
    url: str,
    *,
    seconds: float,
    connections: int,
    tag: str,
    workdir: Path,
    cpu: str | None,
    rate: float = 0.0,
    max_requests: int = 0,
) -> LoadResult:
    """Run wrk against `url` and return its measurements."""
    env = dict(os.environ)
    env.update(BENCH_RATE=str(rate), BENCH_MAX_REQUESTS=str(max_requests), BENCH_TAG=tag)
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "-s",
        str(MIX),
        url,
    ]
    out_path, err_path = workdir / f"wrk-{tag}.out", workdir / f"wrk-{tag}.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        process = subprocess.Popen(
            pinned(cpu, argv), stdout=out, stderr=err, env=env, start_new_session=True
        )
        try:
            _wait(process, err_path, deadline=time.monotonic() + seconds + 30)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    output = out_path.read_text(errors="replace")
    if process.returncode != 0:
        raise BenchError(
            f"wrk exited with status {process.returncode}: {err_path.read_text()[-1000:]}"
        )
    return _parse(output)


def _wait(process: subprocess.Popen[bytes], err_path: Path, *, deadline: float) -> None:
    limit_seen = False
    while process.poll() is None:
        if time.monotonic() > deadline:
            raise BenchError("wrk did not finish in time")
        if not limit_seen:
            limit_seen = _LIMIT_MARK in err_path.read_text(errors="replace")
        if limit_seen:
            # Repeated: the first signal may land in wrk's worker thread, not in its sleep.
            process.send_signal(signal.SIGINT)
        time.sleep(0.2)


def _parse(output: str) -> LoadResult:
    for line in output.splitlines():
        if line.startswith(_RESULT_PREFIX):
            data = json.loads(line[len(_RESULT_PREFIX) :])
            return LoadResult(
                requests=int(data["requests"]),
                seconds=data["duration_us"] / 1e6,
                statuses={str(k): int(v) for k, v in sorted(data["statuses"].items())},
                errors={k: int(v) for k, v in data["errors"].items()},
                latency_us={k: float(v) for k, v in data["latency_us"].items()},
            )
    raise BenchError(f"wrk printed no {_RESULT_PREFIX.strip()} line:\n{output[-2000:]}")
