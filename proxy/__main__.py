"""Entry point: `vipps-audit-proxy` or `python -m proxy`. Settings come from the environment."""

from __future__ import annotations

import asyncio
import os
import sys

from policies.engine import PolicyConfigError
from proxy.app import build_state, process_registry, serve
from proxy.audit import quiet_server_logs
from proxy.config import ConfigError, load_settings, unknown_variables


def _run_loop(coro: object) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)  # type: ignore[arg-type]
    else:
        uvloop.run(coro)  # type: ignore[arg-type]


def main() -> int:
    """Start the proxy; an invalid setting stops start-up with one line on stderr and exit 2."""
    try:
        settings = load_settings()
        state = build_state(settings, registry=process_registry())
    except (ConfigError, PolicyConfigError) as exc:
        name = "VIPPS_PROXY_RULE_ACTIONS: " if isinstance(exc, PolicyConfigError) else ""
        print(f"vipps-audit-proxy: invalid configuration: {name}{exc}", file=sys.stderr)
        return 2
    audit = state.audit
    quiet_server_logs(audit)
    for note in unknown_variables(os.environ):
        audit.write("warning", "unknown_setting", {"variable": note})
    _run_loop(serve(settings, state))
    return 0


if __name__ == "__main__":
    sys.exit(main())
