"""Side-by-side benchmark: the proxy against a direct path, nginx and a minimal aiohttp proxy.

    .venv/bin/python tests/bench/run_bench.py            # full run: 2.5 min + the soak
    .venv/bin/python tests/bench/run_bench.py --quick    # smoke run, about 2 minutes
    .venv/bin/python tests/bench/run_bench.py --profile  # py-spy profile of row 4 only

The full run's soak of 200,000 requests takes 200,000 / (row 4's req/s): about 4.5 minutes at
750 req/s, so about 7 minutes in all on a 2-core machine.

Needs Debian's `wrk` and `nginx` (`apt-get install -y wrk nginx`), `taskset`, and for
`--profile` py-spy in the venv (`pip install py-spy`). Everything listens on 127.0.0.1 only.

One run starts a fixed-response Vipps stand-in (`upstream.py`) and measures the same workload
(`mix.lua`) against each row in turn: (1) the stand-in directly, the floor; (2) nginx as a plain
reverse proxy; (3) a minimal aiohttp pass-through (`passthrough.py`); (4) the proxy with its
default rules, metrics and audit log (to a file); (4b) row 4 without uvloop, when uvloop is
installed; (5) the proxy in `report` mode; (P) Stoplight Prism's validating proxy on the
ePayment spec, when `prism` is installed (`npm install -g @stoplight/prism-cli`), paced at half
its own saturation when that is below the common rate. With two or more cores the system under
test runs on core 0, and wrk and the stand-in share core 1. Each row gets a warm-up, a
saturation phase (closed loop, 32 connections), a paced phase at a fixed rate well below
saturation, whose latency percentiles minus the direct path's are the latency the row adds, and
a short serial phase (one connection, back to back: the latency without idle gaps between
requests). Then a fresh row-4 process serves a soak of distinct references and its peak RSS is
read from /proc (VmHWM). `--ablation` adds rows that isolate one cost each; `stages.py` times
the handler's stages and each rule in-process; `--profile` samples row 4 with py-spy instead of
measuring.

The table is printed and written with machine facts to `tests/bench/results/<timestamp>.json`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

# Run as a file, this directory is on sys.path but the repository root is not.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.load import LoadResult, run_wrk
from tests.bench.machine import describe_machine, rule_codes
from tests.bench.processes import (
    BenchError,
    Child,
    Children,
    CpuMeter,
    memory_mb,
    require,
)
from tests.bench.profiling import profile_row4
from tests.bench.report import RowResult, Soak, evaluate_targets, render_table
from tests.bench.systems import Setup, rows, start_proxy, start_stand_in, uvloop_installed

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "tests" / "bench" / "results"
# Other processes using this much CPU (in cores) during a phase make its figures suspect.
NOISE_WARNING_CORES = 0.1
SOAK_SAMPLE_SECONDS = 5.0


@dataclass(frozen=True)
class Plan:
    """How long and how hard each phase runs."""

    warmup_s: float
    saturation_s: float
    paced_s: float
    serial_s: float
    rate: float
    saturation_connections: int = 32
    paced_connections: int = 16
    soak_requests: int = 200_000
    soak_max_s: float = 600.0
    profile_s: float = 20.0

    def as_json(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.__dict__.items()}


FULL = Plan(warmup_s=2, saturation_s=8, paced_s=8, serial_s=4, rate=1000)
QUICK = Plan(
    warmup_s=1,
    saturation_s=3,
    paced_s=3,
    serial_s=2,
    rate=1000,
    soak_requests=20_000,
    soak_max_s=60,
    profile_s=5,
)


@dataclass
class Running:
    """A row whose system under test is up (no child for the direct path)."""

    key: str
    label: str
    child: Child | None
    url: str
    saturated: LoadResult | None = None
    rounds: list[LoadResult] = field(default_factory=list)
    paced: LoadResult | None = None
    serial: LoadResult | None = None
    noise: dict[str, float] | None = None


def _phase(
    setup: Setup, row: Running, phase: str, seconds: float, connections: int, rate: float = 0.0
) -> tuple[LoadResult, float]:
    """One wrk run against the row, and the other processes' CPU use meanwhile (cores)."""
    pids = [setup.upstream.pid] + ([row.child.pid] if row.child is not None else [])
    meter = CpuMeter(pids)
    result = run_wrk(
        row.url,
        seconds=seconds,
        connections=connections,
        rate=rate,
        tag=f"{row.key}{phase}",
        workdir=setup.workdir,
        cpu=setup.load_cpu,
    )
    other = meter.other_cores()
    if row.child is not None:
        row.child.check_alive()
    return result, other


def saturate(setup: Setup, plan: Plan, row: Running) -> None:
    """Warm the row up, then measure its throughput with every connection kept busy; over
    several rounds the row's figure is its median round."""
    _phase(setup, row, "w", plan.warmup_s, plan.saturation_connections)
    measured, other = _phase(setup, row, "s", plan.saturation_s, plan.saturation_connections)
    row.rounds.append(measured)
    row.saturated = sorted(row.rounds, key=lambda r: r.rps)[(len(row.rounds) - 1) // 2]
    row.noise = {"saturated": max(other, (row.noise or {}).get("saturated", 0.0))}
    print(
        f"  row {row.key:<3} {row.label:<32} {measured.rps:>9,.0f} req/s"
        f"  statuses {measured.statuses}{_noisy(other)}",
        flush=True,
    )


def pace(setup: Setup, plan: Plan, row: Running, rate: float) -> None:
    """Measure the row's latency at a fixed rate, then one request at a time back to back."""
    row.paced, other = _phase(setup, row, "p", plan.paced_s, plan.paced_connections, rate)
    row.serial, serial_other = _phase(setup, row, "c", plan.serial_s, 1)
    assert row.noise is not None
    row.noise.update(paced=other, serial=serial_other)
    lat, one = row.paced.latency_us, row.serial.latency_us
    print(
        f"  row {row.key:<3} {row.label:<32} p50 {lat['p50']:>6.0f} µs  p99 {lat['p99']:>6.0f} µs"
        f"  ({row.paced.rps:,.0f} req/s achieved); one connection: p50 {one['p50']:.0f} µs"
        f"{_noisy(max(other, serial_other))}",
        flush=True,
    )


def _noisy(other_cores: float) -> str:
    if other_cores < NOISE_WARNING_CORES:
        return ""
    return f"  [other processes used {other_cores:.2f} cores meanwhile: figures are noisy]"


# Rows paced at their own rate, below the common one: a peer much slower than every proxy row
# (Prism) would otherwise pull the common rate down and change every other row's figures.
OWN_RATE_ROWS = frozenset({"P"})


def own_rate(row: Running, rate: float) -> float:
    """The rate `row` is paced at: the common one, or half its own saturation if lower."""
    if row.key not in OWN_RATE_ROWS or row.saturated is None:
        return rate
    half = 0.5 * row.saturated.rps
    return rate if half >= rate else float(max(10, int(half)))


def choose_rate(plan: Plan, requested: float | None, rows: list[Running]) -> float:
    """The paced rate: the one asked for, else half the slowest row's saturated throughput
    (two significant digits), at most `plan.rate`; rows in OWN_RATE_ROWS do not count."""
    slowest = min(
        r.saturated.rps for r in rows if r.saturated is not None and r.key not in OWN_RATE_ROWS
    )
    if requested:
        if requested > 0.7 * slowest:
            print(
                f"warning: {requested:,.0f} req/s is close to or above the slowest row's"
                f" saturation ({slowest:,.0f} req/s); latencies will include queueing",
                file=sys.stderr,
            )
        return requested
    half = 0.5 * slowest
    digits = 10 ** max(0, len(str(int(half))) - 2)
    return float(min(plan.rate, max(10, half // digits * digits)))


def soak(setup: Setup, plan: Plan, uvloop: bool, trace: bool) -> Soak:
    """A fresh row-4 process serves `soak_requests` requests with distinct references."""
    print(
        f"soak: {plan.soak_requests:,} requests with distinct references to row 4"
        f"{' (traced by tracemalloc)' if trace else ''} ...",
        flush=True,
    )
    traced = setup.workdir / "tracemalloc.txt" if trace else None
    child, url = start_proxy(
        setup, "proxy-soak", mode="enforce", with_uvloop=uvloop, tracemalloc_to=traced
    )
    before = memory_mb(child.pid)
    meter = CpuMeter([setup.upstream.pid, child.pid])
    samples: list[tuple[float, float]] = []
    done = threading.Event()
    sampler = threading.Thread(target=_sample_rss, args=(child.pid, samples, done), daemon=True)
    sampler.start()
    try:
        result = run_wrk(
            url,
            seconds=plan.soak_max_s,
            connections=plan.saturation_connections,
            max_requests=plan.soak_requests,
            tag="soak",
            workdir=setup.workdir,
            cpu=setup.load_cpu,
        )
    finally:
        done.set()
        sampler.join()
    other = meter.other_cores()
    child.check_alive()
    after = memory_mb(child.pid)
    allocations = _read_tracemalloc(child, traced) if traced is not None else None
    log_bytes = child.log.stat().st_size
    setup.children.stop(child)
    return Soak(
        result,
        plan.soak_requests,
        before.get("VmRSS", 0.0),
        after["VmHWM"],
        after["VmRSS"],
        log_bytes,
        other,
        allocations,
        samples,
    )


def _sample_rss(pid: int, samples: list[tuple[float, float]], done: threading.Event) -> None:
    """Append (seconds since start, VmRSS MB) every few seconds until `done` is set."""
    started = time.monotonic()
    while not done.wait(SOAK_SAMPLE_SECONDS):
        try:
            samples.append((round(time.monotonic() - started, 1), memory_mb(pid)["VmRSS"]))
        except (OSError, KeyError):
            return


def _read_tracemalloc(child: Child, path: Path, timeout: float = 120.0) -> str:
    """Ask the traced proxy for its live allocations (SIGUSR1) and read them back."""
    child.process.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child.check_alive()
        if path.exists() and path.stat().st_size:
            time.sleep(0.5)  # the proxy may still be writing
            return path.read_text()
        time.sleep(0.5)
    raise BenchError(f"the traced proxy wrote no allocation summary within {timeout} s")


def _cores() -> tuple[str | None, str | None]:
    """(core of the system under test, core of wrk and the stand-in), or no pinning."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        print("warning: fewer than 2 cores; nothing is pinned", file=sys.stderr)
        return None, None
    require("taskset", "util-linux")
    return str(available[0]), str(available[1])


def wait_until_quiet(max_seconds: float, quiet_seconds: int = 3) -> float:
    """Wait up to `max_seconds` until other processes have left the CPUs nearly idle for
    `quiet_seconds` in a row; return the cores they used over the last seconds measured."""
    deadline = time.monotonic() + max_seconds
    told = False
    while True:
        meter = CpuMeter([])
        time.sleep(quiet_seconds)
        other = meter.other_cores()
        if other < NOISE_WARNING_CORES:
            return other
        if time.monotonic() >= deadline:
            print(
                f"warning: other processes use {other:.2f} cores; figures will be noisy",
                file=sys.stderr,
            )
            return other
        if not told:
            print(
                f"waiting up to {max_seconds:g} s for other processes ({other:.2f} cores)"
                " to quieten ...",
                flush=True,
            )
            told = True


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def profile(plan: Plan, stamp: str, workdir: Path, cpus: tuple[str | None, str | None]) -> None:
    """Profile row 4 under saturation with py-spy and print where its time goes."""
    out = RESULTS / f"{stamp}-row4.speedscope.json"
    with Children(workdir) as kids:
        setup = start_stand_in(kids, workdir, *cpus)
        child, url = start_proxy(
            setup, "proxy-profile", mode="enforce", with_uvloop=uvloop_installed()
        )
        print(profile_row4(child, url, out, plan.profile_s, workdir, setup.load_cpu))
    print(f"speedscope profile: {out.relative_to(ROOT)} (open in https://speedscope.app)")


def measure_all(
    args: argparse.Namespace, plan: Plan, workdir: Path, cpus: tuple[str | None, str | None]
) -> tuple[list[RowResult], Soak | None, float]:
    """Start the stand-in and every row, measure them, run the soak; stop every child."""
    uvloop = uvloop_installed()
    with Children(workdir) as kids:
        setup = start_stand_in(kids, workdir, *cpus)
        # Every row's process is started first (an idle one costs nothing on core 0), so the
        # paced rate can be chosen below the slowest row's saturation before any is paced.
        chosen = [r for r in rows(uvloop, ablation=args.ablation) if _wanted(args, r[0])]
        running = [Running(key, label, *start(setup)) for key, label, start in chosen]
        print(
            f"saturation: wrk -t1 -c{plan.saturation_connections}"
            f" for {plan.saturation_s:g} s per row after {plan.warmup_s:g} s of warm-up",
            flush=True,
        )
        # Rounds alternate the order (1 2 3, then 3 2 1, ...), so no row is always measured
        # first or right after the same neighbour; each row's figure is its median round.
        for number in range(args.rounds):
            if args.rounds > 1:
                print(f" round {number + 1} of {args.rounds}", flush=True)
            for row in running if number % 2 == 0 else running[::-1]:
                saturate(setup, plan, row)
        rate = choose_rate(plan, args.rate, running)
        print(
            f"paced: {rate:,.0f} req/s over {plan.paced_connections} connections"
            f" for {plan.paced_s:g} s per row",
            flush=True,
        )
        for row in running:
            pace(setup, plan, row, own_rate(row, rate))
        results = []
        for row in running:
            assert row.saturated is not None
            assert row.paced is not None
            assert row.serial is not None
            assert row.noise is not None
            peak = memory_mb(row.child.pid)["VmHWM"] if row.child is not None else None
            results.append(
                RowResult(row.key, row.label, row.saturated, row.paced, row.serial, peak, row.noise)
            )
            if row.child is not None:
                kids.stop(row.child)
        soaked = soak(setup, plan, uvloop, args.soak_tracemalloc) if not args.no_soak else None
        return results, soaked, rate


def _wanted(args: argparse.Namespace, key: str) -> bool:
    return not args.rows or key in args.rows.split(",")


def run(args: argparse.Namespace) -> int:
    plan = QUICK if args.quick else FULL
    if args.soak_requests:
        plan = dataclasses.replace(plan, soak_requests=args.soak_requests)
    require("wrk", "wrk")
    cpus = _cores()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(exist_ok=True)
    started = time.monotonic()
    machine = describe_machine(uvloop_installed())  # before the run: the code may change meanwhile
    rules = rule_codes()
    background = wait_until_quiet(args.wait_quiet)
    workdir = Path(tempfile.mkdtemp(prefix="vipps-bench-"))
    try:
        if args.profile:
            profile(plan, stamp, workdir, cpus)
            return 0
        results, soaked, rate = measure_all(args, plan, workdir, cpus)
    finally:
        if args.keep:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    table = render_table(results, rate)
    targets = evaluate_targets(results, soaked)
    print()
    print(table)
    if soaked is not None:
        print(soaked.describe())
        if soaked.allocations:
            print(soaked.allocations)
    for line in targets.lines():
        print(line)
    document = {
        "timestamp": stamp,
        "quick": bool(args.quick),
        "elapsed_s": round(time.monotonic() - started, 1),
        "plan": {**plan.as_json(), "paced_rate": rate},
        "pinning": {"system_under_test": cpus[0], "wrk_and_upstream": cpus[1]},
        "other_processes_cores_before": round(background, 3),
        "machine": machine,
        "default_rules": rules,
        "rows": [row.as_json(results) for row in results],
        "soak": soaked.as_json() if soaked is not None else None,
        "targets": targets.as_json(),
        "table": table,
    }
    path = RESULTS / f"{stamp}.json"
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(f"\nresults: {path.relative_to(ROOT)} ({time.monotonic() - started:.0f} s)")
    return 1 if args.check and not targets.all_met else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds per row")
    parser.add_argument(
        "--rate", type=float, help="paced rate in req/s (default: half the slowest row, <= 1000)"
    )
    parser.add_argument("--no-soak", action="store_true", help="skip the distinct-reference soak")
    parser.add_argument("--soak-requests", type=int, help="soak length (default 200,000)")
    parser.add_argument(
        "--soak-tracemalloc",
        action="store_true",
        help="trace the soak's allocations and print where the memory is (slows the soak)",
    )
    parser.add_argument("--profile", action="store_true", help="only profile row 4 with py-spy")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="wait up to this long for other processes to go idle first (default 60)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the logs of every process")
    parser.add_argument(
        "--rows", default="", help="only these rows, e.g. 1,3,4,F (ratios need rows 1 and 3)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="saturation rounds per row, in alternating order; each row's figure is its median",
    )
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="add rows A1-A3, A5, F and D1-D5, each adding or removing one cost (see systems.rows)",
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        return run(args)
    except BenchError as error:
        print(f"run_bench: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("run_bench: interrupted; every child was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
