"""Where the proxy's memory goes: tracemalloc inside the proxy process, read on a signal.

`run_bench.py --soak-tracemalloc` starts the soak's proxy through `install(path)` (from a
`python -c` prelude, so the proxy's code is unchanged): tracemalloc traces every allocation,
and SIGUSR1 writes the live allocations, grouped by file and by line, to `path`. Tracing
slows the proxy down several times, so the soak's throughput is not comparable then.
"""

from __future__ import annotations

import signal
import tracemalloc
from pathlib import Path
from types import FrameType

_TOP = 20


def summarise(snapshot: tracemalloc.Snapshot) -> str:
    """The live allocations by file and by line, largest first."""
    snapshot = snapshot.filter_traces(
        (
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
        )
    )
    by_file = snapshot.statistics("filename")
    total = sum(stat.size for stat in by_file)
    lines = [f"traced live allocations: {total / 1e6:.1f} MB", "", "by file:"]
    lines += [
        f"  {stat.size / 1e6:7.1f} MB {stat.count:>9,} blocks  {stat.traceback[0].filename}"
        for stat in by_file[:_TOP]
    ]
    lines += ["", "by line:"]
    lines += [
        f"  {stat.size / 1e6:7.1f} MB {stat.count:>9,} blocks  {stat.traceback[0]}"
        for stat in snapshot.statistics("lineno")[:_TOP]
    ]
    return "\n".join(lines) + "\n"


def install(path: str) -> None:
    """Start tracing; on SIGUSR1 write the summary to `path`."""
    tracemalloc.start(1)
    target = Path(path)

    def dump(signum: int, frame: FrameType | None) -> None:
        target.write_text(summarise(tracemalloc.take_snapshot()))

    signal.signal(signal.SIGUSR1, dump)
