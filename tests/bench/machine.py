"""Facts about the machine and software a benchmark ran on, for its results file."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Run in a child interpreter, so a half-edited rule module cannot stop the benchmark itself.
# The engine's rules, as the proxy builds them from default settings.
_LIST_RULES = """
from proxy.app import build_state
from proxy.config import Settings
state = build_state(Settings(), sink=lambda line: None)
print("\\n".join(rule.code for rule in state.engine.rules))
"""


def _first(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            name, _, value = line.partition(":" if ":" in line else "=")
            if name.strip() == key:
                return value.strip().strip('"')
    except OSError:
        return None
    return None


def _output(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else None


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def describe_machine(uvloop: bool) -> dict[str, object]:
    """CPU, cores, memory, kernel, OS, and the versions of everything measured."""
    mem_kb = _first("/proc/meminfo", "MemTotal")
    commit = _output(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = _output(["git", "-C", str(ROOT), "status", "--porcelain"])
    return {
        "cpu_model": _first("/proc/cpuinfo", "model name"),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "memory_gb": round(int(mem_kb.split()[0]) / 1024**2, 1) if mem_kb else None,
        "kernel": platform.release(),
        "os": _first("/etc/os-release", "PRETTY_NAME"),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_executable": sys.executable,
        "uvloop": "on" if uvloop else "off (not installed)",
        "versions": {
            "uvloop": _version("uvloop"),
            "aiohttp": _version("aiohttp"),
            "orjson": _version("orjson"),
            "prometheus-client": _version("prometheus-client"),
            "vipps-audit-proxy": _version("vipps-audit-proxy"),
            "wrk": _output(["wrk", "-v"]),
            "nginx": _output(["nginx", "-v"]),
        },
        "git": f"{commit}{' (uncommitted changes)' if dirty else ''}" if commit else None,
    }


def rule_codes() -> list[str] | str:
    """The codes of the proxy's default rules as they are now, or why they could not be read."""
    done = subprocess.run(
        [sys.executable, "-c", _LIST_RULES],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        return f"unavailable: {done.stderr.strip().splitlines()[-1:]}"
    return [line for line in done.stdout.splitlines() if line]
