"""Starting the process: settings, state, the event loop, and the one line when start-up fails.

Every start-up failure ends the same way: one line on stderr naming the variable, its value
where it is safe to show and the cause, and exit code 2. A failure once the audit log exists
(a port in use, a host that does not resolve) is also written as a JSON `startup_failed` line.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Coroutine, Mapping
from typing import Any, TextIO

from policies.core.engine import PolicyConfigError
from proxy.app import build_state, process_registry, serve
from proxy.audit import BatchedSink, quiet_server_logs
from proxy.config import ConfigError, StartupError, check_unknown, load_settings, unknown_settings

EXIT_CONFIG = 2


def _run_loop(coro: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)


def _tune_gc() -> None:
    """Fewer, cheaper garbage collections for a process that allocates briefly per request.

    What start-up built (modules, the catalogue, libphonenumber's metadata) lives as long as
    the process: frozen, no collection walks it again. Each request allocates a few hundred
    short-lived objects, so the youngest generation is collected every 10,000 container
    allocations instead of every 700, and the older ones less often: with the payment-audit
    stores full, the worst paced latency fell from 39 to 9 ms (README, "Performance").
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 50, 100)


def run(environ: Mapping[str, str], stderr: TextIO = sys.stderr) -> int:
    """Start the proxy and serve until a stop signal; 0 after a drain, 2 when it cannot start."""
    try:
        settings = load_settings()
        unknown = check_unknown(unknown_settings(environ), strict=settings.strict_settings)
        state = build_state(settings, registry=process_registry(), sink=BatchedSink())
    except (ConfigError, PolicyConfigError) as exc:
        name = "VIPPS_PROXY_RULE_ACTIONS: " if isinstance(exc, PolicyConfigError) else ""
        print(f"vipps-audit-proxy: invalid configuration: {name}{exc}", file=stderr)
        return EXIT_CONFIG
    audit = state.audit
    quiet_server_logs(audit)
    for variable in unknown:
        audit.write("warning", "unknown_setting", {"variable": variable.note})
    _tune_gc()
    try:
        _run_loop(serve(settings, state))
    except StartupError as exc:
        audit.write(
            "error",
            "startup_failed",
            {"variable": exc.variable, "value": exc.value, "cause": exc.cause},
        )
        print(f"vipps-audit-proxy: cannot start: {exc}", file=stderr)
        return EXIT_CONFIG
    finally:
        audit.flush()
    return 0
