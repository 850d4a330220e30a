"""Pure policy logic for Vipps API requests: the operation catalogue, the rules and the engine.

Nothing in this package does I/O or imports aiohttp, prometheus_client or the proxy.
`check` runs one request through the proxy's rules (see `policies.checker`).
"""

from policies.checker import Checker, CheckSettings, check
from policies.model import Decision, Finding, Outcome

__all__ = ["CheckSettings", "Checker", "Decision", "Finding", "Outcome", "check"]
