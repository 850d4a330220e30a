"""Profile row 4 under saturation with py-spy, and say where its time goes.

py-spy samples the proxy process from outside (no change to the proxy) while wrk saturates it,
and writes a speedscope file. The summary reads that file back: the share of samples spent in
each library (by the file of the innermost Python frame; C code such as orjson or aiohttp's
HTTP parser counts to the Python function that called it), the share under each stage of the
handler (inclusive), and the functions with the most samples of their own.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.bench.load import LoadResult, run_wrk
from tests.bench.processes import BenchError, Child, pinned

ROOT = Path(__file__).resolve().parents[2]
_RATE_HZ = 200


@dataclass(frozen=True)
class Frame:
    name: str
    file: str

    @property
    def library(self) -> str:
        """`aiohttp`, `proxy`, `stdlib asyncio`, ...: who owns the frame's code."""
        file = self.file
        if "site-packages/" in file:
            return file.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
        if file.startswith(str(ROOT) + "/"):
            return file[len(str(ROOT)) + 1 :].split("/", 1)[0]
        if "/python3" in file:
            part = file.split("/python3", 1)[1].split("/", 2)
            return "stdlib " + (part[1].removesuffix(".py") if len(part) > 1 else "?")
        return file or "?"

    def label(self) -> str:
        short = self.file.split("site-packages/", 1)[-1].removeprefix(str(ROOT) + "/")
        return f"{self.name} ({short})"


def _is(name: str, file_end: str) -> Callable[[Frame], bool]:
    """Match a function by its qualified name (py-spy reports `Class.method` on 3.11+)."""
    return lambda f: (f.name == name or f.name.endswith("." + name)) and f.file.endswith(file_end)


# Stages of the request, each measured inclusively (every sample with such a frame on its stack).
STAGES: tuple[tuple[str, Callable[[Frame], bool]], ...] = (
    ("ProxyHandler.handle (everything in the handler)", _is("handle", "proxy/handler.py")),
    ("  request.read (body from aiohttp)", _is("read", "aiohttp/web_request.py")),
    ("  audited_request (identify + JSON parse)", _is("audited_request", "policies/core/model.py")),
    ("    parse_body (JSON parse)", _is("parse_body", "policies/core/jsonbody.py")),
    ("  PolicyEngine.evaluate (rules)", _is("evaluate", "policies/core/engine.py")),
    ("  ProxyHandler._record (metrics + audit log)", _is("_record", "proxy/handler.py")),
    ("    prometheus_client", lambda f: "prometheus_client/" in f.file),
    ("    AuditLog.write (audit log line)", _is("write", "proxy/audit.py")),
    ("  ProxyHandler._forward (Upstream.send + the response)", _is("_forward", "proxy/handler.py")),
    ("    Upstream.send (aiohttp client round trip)", _is("send", "proxy/upstream.py")),
    (
        "      ClientSession._request (aiohttp client, incl. trust_env look-ups)",
        _is("_request", "aiohttp/client.py"),
    ),
    (
        "        ThreadPoolExecutor.submit (trust_env: netrc + proxy look-ups)",
        _is("submit", "concurrent/futures/thread.py"),
    ),
    (
        "aiohttp server: RequestHandler.start (parse, handler, write)",
        _is("start", "aiohttp/web_protocol.py"),
    ),
    (
        "aiohttp server: RequestHandler.data_received (HTTP parser)",
        _is("data_received", "aiohttp/web_protocol.py"),
    ),
)


def _tally(
    samples: list[list[int]], frames: list[Frame]
) -> tuple[int, Counter[Frame], Counter[str], Counter[str]]:
    own: Counter[Frame] = Counter()
    libraries: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    count = 0
    for stack in samples:
        if not stack:
            continue
        count += 1
        leaf = frames[stack[-1]]
        own[leaf] += 1
        libraries[leaf.library] += 1
        on_stack = [frames[i] for i in stack]
        for label, match in STAGES:
            if any(match(f) for f in on_stack):
                stages[label] += 1
    return count, own, libraries, stages


def summarise(path: Path, top: int = 25) -> str:
    """A text summary of a py-spy speedscope file: the event loop's thread, then the others."""
    doc = json.loads(path.read_text())
    frames = [Frame(f.get("name", "?"), f.get("file", "")) for f in doc["shared"]["frames"]]
    main = [p for p in doc["profiles"] if '"MainThread"' in p["name"]]
    others = [p for p in doc["profiles"] if p not in main]
    if not main or not main[0]["samples"]:
        raise BenchError(f"py-spy recorded no samples of the main thread in {path}")
    total, own, libraries, stages = _tally(main[0]["samples"], frames)

    def pct(value: float, of: int = total) -> str:
        return f"{100 * value / of:5.1f} %"

    lines = [
        f"py-spy at {_RATE_HZ} Hz: {total} samples of the event loop's thread (MainThread) while"
        " saturated; shares below are of those samples",
        "",
        "by library (innermost Python frame; C extensions count to their Python caller):",
    ]
    lines += [f"  {pct(v)}  {k}" for k, v in libraries.most_common(12)]
    lines += ["", "by stage (inclusive):"]
    lines += [f"  {pct(stages[label])}  {label}" for label, _ in STAGES]
    lines += ["", f"top {top} functions (own samples):"]
    lines += [f"  {pct(v)}  {f.label()}" for f, v in own.most_common(top)]
    if others:
        merged = [stack for p in others for stack in p["samples"]]
        count, other_own, _, _ = _tally(merged, frames)
        names = ", ".join(p["name"].split(" ", 2)[-1] for p in others)
        lines += [
            "",
            f"other threads ({names}): {count} samples while active,"
            f" {pct(count)} of the main thread's count; their top functions:",
        ]
        lines += [f"  {pct(v, count)}  {f.label()}" for f, v in other_own.most_common(8)]
    return "\n".join(lines)


def profile_row4(
    child: Child, url: str, out: Path, seconds: float, workdir: Path, cpu: str | None
) -> str:
    """Saturate the proxy with wrk while py-spy records it; return the summary."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        raise BenchError("py-spy not found; install it with: .venv/bin/pip install py-spy")
    results: list[LoadResult] = []
    load = threading.Thread(
        target=lambda: results.append(
            run_wrk(
                url, seconds=seconds + 4, connections=32, tag="profile", workdir=workdir, cpu=cpu
            )
        )
    )
    load.start()
    try:
        threading.Event().wait(2.0)  # let the proxy warm up before sampling
        argv = [
            spy,
            "record",
            "--pid",
            str(child.pid),
            "--duration",
            str(round(seconds)),
            "--rate",
            str(_RATE_HZ),
            "--format",
            "speedscope",
            "--output",
            str(out),
        ]
        done = subprocess.run(
            pinned(cpu, argv), capture_output=True, text=True, timeout=seconds + 60, check=False
        )
        if done.returncode != 0:
            raise BenchError(f"py-spy failed: {done.stderr.strip()[-1000:]}")
    finally:
        load.join()
    child.check_alive()
    rps = f"{results[0].rps:,.0f} req/s under the profiler" if results else "wrk failed"
    return f"{summarise(out)}\n\n(wrk: {rps})"
