"""Pure policy logic for Vipps API requests: the operation catalogue, the rules and the engine.

Nothing in this package does I/O or imports aiohttp, prometheus_client or the proxy.
`check` runs one request through the proxy's rules (see `policies.checker`).

The names below are loaded on first use, so that importing one module of the package (the log
redaction, the catalogue) does not build every rule.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from policies.checker import Checker, CheckSettings, check
    from policies.core.model import Decision, Finding, Outcome

__all__ = ["CheckSettings", "Checker", "Decision", "Finding", "Outcome", "check"]

_HOMES = {
    "CheckSettings": "policies.checker",
    "Checker": "policies.checker",
    "check": "policies.checker",
    "Decision": "policies.core.model",
    "Finding": "policies.core.model",
    "Outcome": "policies.core.model",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'policies' has no attribute {name!r}")
    return getattr(import_module(home), name)
