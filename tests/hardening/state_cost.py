"""Measure what the payment-level audit's state costs in memory, in a fresh interpreter.

`python -m tests.hardening.state_cost CAP` builds the proxy's state with every store capped at
CAP entries, sends 2 x CAP distinct payments (create, then one poll each) through the engine
and the payment audit as the handler does, and prints the growth of the process's resident
memory in KiB once every store is full, after the resident memory before it. Nothing else
runs in that interpreter, so the figure is the state's own, not what earlier tests left in the
allocator.
"""

from __future__ import annotations

import gc
import sys

from policies.core.model import audited_request
from proxy.app import build_state
from proxy.config import Settings
from tests.hardening.samples import HEADERS, payment, with_key


def rss_kib() -> int:
    """This process's resident memory, from /proc/self/status."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS line")


def main(cap: int) -> tuple[int, int]:
    """Fill every store to `cap`; return the RSS before, and its growth, in KiB."""
    state = build_state(Settings(state_max_entries=cap))

    def one(i: int) -> None:
        ref = f"state-{i:08d}"
        create = audited_request(
            "POST", "/epayment/v1/payments", with_key(ref), payment(reference=ref)
        )
        state.engine.evaluate(create)
        state.payments.record_forwarded(create)
        state.payments.observe(create, 201, {"reference": ref})
        poll = audited_request("GET", f"/epayment/v1/payments/{ref}", HEADERS)
        state.engine.evaluate(poll)
        state.payments.record_forwarded(poll)
        state.payments.observe(poll, 200, {"reference": ref, "state": "AUTHORIZED"})

    one(0)  # every rule's caches warm before the measurement starts
    gc.collect()
    before = rss_kib()
    for i in range(1, 2 * cap + 1):
        one(i)
    gc.collect()
    assert all(s.entries == cap for s in state.payments.stats().values())
    return before, rss_kib() - before


if __name__ == "__main__":
    print(*main(int(sys.argv[1])))
