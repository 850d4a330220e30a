"""The drain: which requests are in flight, and the moment the shutdown budget cuts them.

aiohttp's own shutdown waits its timeout for running handlers, then cancels them and waits the
timeout again, so a drain could take twice the grace and end a request with an empty reply
that nothing records. The proxy runs its own drain instead: it waits for its requests up to a
point inside the budget, then cancels each one that is still running; the handler turns that
cancellation into an answer and a record like any other (`outcome="shutdown"`).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

# Time kept back from the grace for answering cut requests and closing the servers.
RESERVE_SHARE = 0.25
RESERVE_MAX_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Budget:
    """How a grace period is spent: wait for requests, then cut, then close the servers."""

    grace: float

    @property
    def reserve(self) -> float:
        """Seconds left after the cut for the answers and the servers' own shutdown."""
        return min(RESERVE_MAX_SECONDS, self.grace * RESERVE_SHARE)

    @property
    def wait(self) -> float:
        """Seconds to wait for in-flight requests before cutting them."""
        return self.grace - self.reserve

    @property
    def close(self) -> float:
        """The servers' own shutdown timeout, applied after the cut (aiohttp may use it twice)."""
        return self.reserve / 4


@dataclass
class Drain:
    """The request tasks running now; `cut()` cancels them and marks the cancellation ours."""

    grace: float = 0.0
    cutting: bool = False
    _tasks: set[asyncio.Task[object]] = field(default_factory=set)
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._idle.set()

    @property
    def in_flight(self) -> int:
        """Requests running now."""
        return len(self._tasks)

    def enter(self) -> asyncio.Task[object] | None:
        """Track the current request's task (None outside a task)."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            self._idle.clear()
        return task

    def leave(self, task: asyncio.Task[object] | None) -> None:
        """Forget a request's task once it has its answer."""
        if task is not None:
            self._tasks.discard(task)
            if not self._tasks:
                self._idle.set()

    async def wait_idle(self, seconds: float) -> bool:
        """Wait up to `seconds` for every request to finish; True when none is left."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), seconds)
        return not self._tasks

    def cut(self) -> int:
        """Cancel every request still running; returns how many were cut."""
        self.cutting = True
        for task in self._tasks:
            task.cancel("shutdown grace ended")
        return len(self._tasks)
