"""Entry point: `vipps-audit-proxy` or `python -m proxy`. Settings come from the environment.

`main` is the proxy's start-up path (`vipps-audit-proxy serve`, and the command without a
subcommand); the command line around it is `proxy.cli`.
"""

from __future__ import annotations

import sys

from proxy.config import process_environment
from proxy.startup import run


def main() -> int:
    """Start the proxy; a setting that cannot be used stops start-up with one line and exit 2."""
    return run(process_environment())


if __name__ == "__main__":
    from proxy.cli import main as cli_main

    sys.exit(cli_main())
