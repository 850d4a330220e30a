"""The benchmark's figures: per-row results, the printed table, and the targets of the issue.

Ratios compare saturated throughput with row 3 (the minimal aiohttp pass-through), row 2
(nginx) and row P (Prism's validating proxy). Added latency is a row's paced percentile minus
the direct path's (row 1) at the same rate; "1c +ms" is the median added with one connection
sending back to back. Peak RSS is the process's VmHWM at the end of its row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.bench.load import LoadResult

# The issues' targets for row 4 (every default rule, metrics and audit log on).
MIN_RATIO_VS_PASSTHROUGH = 0.8
MAX_P50_ADDED_MS = 0.3
MAX_P99_ADDED_MS = 2.0
MAX_SOAK_RSS_MB = 80.0
# The second performance step: at least 0.6x the pass-through on the way to 0.8x, at most
# 0.3 ms added at the median with one connection, and at least 5x Prism.
STEP_RATIO_VS_PASSTHROUGH = 0.6
MAX_SERIAL_P50_ADDED_MS = 0.3
MIN_RATIO_VS_PRISM = 5.0


@dataclass(frozen=True)
class RowResult:
    """One row: its saturated and paced runs and its peak RSS (None for the direct path)."""

    key: str
    label: str
    saturated: LoadResult
    paced: LoadResult
    serial: LoadResult
    peak_rss_mb: float | None
    other_cores: dict[str, float]

    def figures(self, rows: list[RowResult]) -> dict[str, float | None]:
        """rps, the two ratios and the two added latencies, against the other rows."""
        by_key = {r.key: r for r in rows}
        floor = by_key.get("1")

        def ratio(key: str) -> float | None:
            other = by_key.get(key)
            return self.saturated.rps / other.saturated.rps if other else None

        def added(pct: str, serial: bool = False) -> float | None:
            if floor is None:
                return None
            mine, base = (self.serial, floor.serial) if serial else (self.paced, floor.paced)
            return (mine.latency_us[pct] - base.latency_us[pct]) / 1000

        return {
            "rps": self.saturated.rps,
            "ratio_vs_row3": ratio("3"),
            "ratio_vs_row2": ratio("2"),
            "ratio_vs_prism": ratio("P"),
            "p50_added_ms": added("p50"),
            "p99_added_ms": added("p99"),
            "peak_rss_mb": self.peak_rss_mb,
            "serial_p50_added_ms": added("p50", serial=True),
            "serial_p99_added_ms": added("p99", serial=True),
        }

    def as_json(self, rows: list[RowResult]) -> dict[str, object]:
        figures = {k: _round(v) for k, v in self.figures(rows).items()}
        return {
            "key": self.key,
            "label": self.label,
            **figures,
            "blocked_share": round(self.saturated.share("400"), 4),
            "saturated": self.saturated.as_json(),
            "paced": self.paced.as_json(),
            "serial": self.serial.as_json(),
            "other_processes_cores": {k: round(v, 3) for k, v in self.other_cores.items()},
        }


@dataclass(frozen=True)
class Soak:
    """The distinct-reference soak of a fresh row-4 process."""

    load: LoadResult
    requested: int
    rss_start_mb: float
    peak_rss_mb: float
    rss_end_mb: float
    log_bytes: int
    other_cores: float
    allocations: str | None = None
    rss_samples: list[tuple[float, float]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.load.requests >= self.requested

    def trajectory(self) -> str:
        """VmRSS at each quarter of the soak: a plateau or a steady climb."""
        if not self.rss_samples:
            return ""
        last = len(self.rss_samples) - 1
        picks = sorted({round(last * q / 4) for q in range(1, 5)})
        points = ", ".join(
            f"{self.rss_samples[i][1]:.1f} MB at {self.rss_samples[i][0]:.0f} s" for i in picks
        )
        return f"\n  RSS over the soak: {points}"

    def describe(self) -> str:
        short = "" if self.complete else f" (time limit reached: {self.requested:,} were asked)"
        return (
            f"soak: {self.load.requests:,} requests{short}, each with its own reference, to a fresh"
            f" row-4 process at {self.load.rps:,.0f} req/s: peak RSS {self.peak_rss_mb:.1f} MB"
            f" (RSS {self.rss_start_mb:.1f} MB at start, {self.rss_end_mb:.1f} MB at the end);"
            f" audit log {self.log_bytes / 1e6:.0f} MB; statuses {self.load.statuses}"
            + self.trajectory()
        )

    def as_json(self) -> dict[str, object]:
        return {
            "load": self.load.as_json(),
            "requested": self.requested,
            "complete": self.complete,
            "rss_start_mb": round(self.rss_start_mb, 1),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "rss_end_mb": round(self.rss_end_mb, 1),
            "audit_log_bytes": self.log_bytes,
            "other_processes_cores": round(self.other_cores, 3),
            "tracemalloc": self.allocations,
            "rss_samples_s_mb": self.rss_samples,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _cell(value: float | None, form: str) -> str:
    return "-" if value is None else format(value, form)


def render_table(rows: list[RowResult], rate: float) -> str:
    """The table of the issue, then the absolute figures behind it."""
    head = (
        f"{'row':<4}{'system':<34}{'req/s':>9}{'vs 3':>7}{'vs 2':>7}{'vs P':>7}"
        f"{'p50 +ms':>9}{'p99 +ms':>9}{'1c +ms':>8}{'RSS MB':>8}"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        f = row.figures(rows)
        lines.append(
            f"{row.key:<4}{row.label:<34}{_cell(f['rps'], ',.0f'):>9}"
            f"{_cell(f['ratio_vs_row3'], '.2f'):>7}{_cell(f['ratio_vs_row2'], '.2f'):>7}"
            f"{_cell(f['ratio_vs_prism'], '.2f'):>7}"
            f"{_cell(f['p50_added_ms'], '.3f'):>9}{_cell(f['p99_added_ms'], '.3f'):>9}"
            f"{_cell(f['serial_p50_added_ms'], '.3f'):>8}{_cell(f['peak_rss_mb'], '.1f'):>8}"
        )
    lines += [
        "",
        f"latency in µs: paced at {rate:,.0f} req/s, and serial (one connection, back to back);"
        " blocked = share of 400 answers; other CPU = cores used by other processes meanwhile",
        f"{'row':<4}{'paced/s':>8}{'p50':>7}{'p90':>7}{'p99':>7}{'p99.9':>7}"
        f"{'serial p50':>11}{'p99':>7}{'+p50 ms':>8}{'blocked':>8}{'errors':>7}{'other CPU':>10}",
    ]
    for row in rows:
        lat, one = row.paced.latency_us, row.serial.latency_us
        lines.append(
            f"{row.key:<4}{row.paced.rps:>8,.0f}{lat['p50']:>7.0f}{lat['p90']:>7.0f}"
            f"{lat['p99']:>7.0f}{lat['p999']:>7.0f}{one['p50']:>11.0f}{one['p99']:>7.0f}"
            f"{_cell(row.figures(rows)['serial_p50_added_ms'], '.3f'):>8}"
            f"{row.saturated.share('400'):>8.1%}"
            f"{row.paced.socket_errors + row.saturated.socket_errors + row.serial.socket_errors:>7}"
            f"{max(row.other_cores.values(), default=0.0):>10.2f}"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class Target:
    name: str
    value: float | None
    limit: float
    at_least: bool

    @property
    def met(self) -> bool:
        if self.value is None:
            return False
        return self.value >= self.limit if self.at_least else self.value <= self.limit


@dataclass(frozen=True)
class Targets:
    """The issue's targets, each with the measured value."""

    items: tuple[Target, ...]

    @property
    def all_met(self) -> bool:
        return all(t.met for t in self.items)

    def lines(self) -> list[str]:
        out = ["", "targets (row 4):"]
        for t in self.items:
            sign = ">=" if t.at_least else "<="
            value = "n/a" if t.value is None else f"{t.value:.3f}"
            out.append(f"  {'MET ' if t.met else 'MISS'} {t.name}: {value} {sign} {t.limit}")
        return out

    def as_json(self) -> dict[str, object]:
        return {
            t.name: {"value": _round(t.value), "limit": t.limit, "met": t.met} for t in self.items
        }


def evaluate_targets(rows: list[RowResult], soak: Soak | None) -> Targets:
    row4 = next((r for r in rows if r.key == "4"), None)
    f = row4.figures(rows) if row4 is not None else {}
    return Targets(
        (
            Target("throughput vs row 3", f.get("ratio_vs_row3"), MIN_RATIO_VS_PASSTHROUGH, True),
            Target(
                "throughput vs row 3 (this step)",
                f.get("ratio_vs_row3"),
                STEP_RATIO_VS_PASSTHROUGH,
                True,
            ),
            Target("throughput vs Prism", f.get("ratio_vs_prism"), MIN_RATIO_VS_PRISM, True),
            Target("added p50 ms", f.get("p50_added_ms"), MAX_P50_ADDED_MS, False),
            Target(
                "added p50 ms, one connection",
                f.get("serial_p50_added_ms"),
                MAX_SERIAL_P50_ADDED_MS,
                False,
            ),
            Target("added p99 ms", f.get("p99_added_ms"), MAX_P99_ADDED_MS, False),
            Target(
                "soak peak RSS MB",
                soak.peak_rss_mb if soak is not None and soak.complete else None,
                MAX_SOAK_RSS_MB,
                False,
            ),
        )
    )
