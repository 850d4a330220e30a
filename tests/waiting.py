"""Waiting for something to happen on loopback, with a deadline instead of a fixed sleep.

A fixed sleep before a check is either too short under load (the check fails although the event
would have come) or, before a check that something did *not* happen, proves nothing about what
comes later. Tests wait for the event itself, and fail with a message when it does not come.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

DEADLINE_SECONDS = 10.0
_POLL_SECONDS = 0.01


async def wait_until(
    condition: Callable[[], bool], what: str, seconds: float = DEADLINE_SECONDS
) -> None:
    """Return as soon as `condition()` holds; fail the test if it does not within `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds} s for {what}")
        await asyncio.sleep(_POLL_SECONDS)
