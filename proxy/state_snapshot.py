"""The request side of shared payment-level state: each request's snapshot, and stores over it.

The pure rules use their state through the synchronous `Store` protocol. With shared state,
the proxy loads a request's payment into a `Snapshot` before the rules judge it; the
`SharedStore`s read from that snapshot (the one of the task running the request, held in a
context variable) and note in it what the rules change, for `proxy.state_redis` to write.
Nothing here does I/O or knows a client library. `Breaker` is the circuit breaker that skips a
store after failures in a row.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

from policies.audit.polling import PollState
from policies.audit.state import Clock, Evictions, PaymentKey

__all__ = ["Breaker", "Field", "SharedStore", "Snapshot", "Turn", "current", "use"]

Field = tuple[str, str]  # (hash key, field)
K = TypeVar("K")
V = TypeVar("V")


@dataclass(slots=True)
class Turn:
    """Requests of this process waiting for, or holding, their turn on one payment."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: int = 0


class Breaker:
    """After `failures` failed round trips in a row, skip Redis for `open_seconds`, then try
    again (one more failure opens it again at once)."""

    def __init__(self, failures: int = 3, open_seconds: float = 5.0, clock: Clock = time.monotonic):
        self._threshold = failures
        self._open_seconds = open_seconds
        self._clock = clock
        self._failures = 0
        self._open_until = 0.0

    @property
    def is_open(self) -> bool:
        return self._failures >= self._threshold and self._clock() < self._open_until

    def success(self) -> None:
        self._failures = 0

    def failure(self) -> None:
        self._failures += 1
        if self._failures >= self._threshold:
            self._open_until = self._clock() + self._open_seconds


@dataclass(slots=True)
class Snapshot:
    """One request's view of its payment's shared state, and what the rules changed in it."""

    home: str  # the hash of the request's own payment (or of its merchant, see `payment`)
    payment: bool = True  # whether the request is about one payment
    now: float = 0.0
    available: bool = True
    hashes: dict[str, dict[str, bytes]] = field(default_factory=dict)
    read: set[Field] = field(default_factory=set)
    writes: dict[Field, bytes] = field(default_factory=dict)  # b"" deletes the field
    values: dict[Field, object] = field(default_factory=dict)
    created: list[tuple[str, PaymentKey, PollState]] = field(default_factory=list)
    judging: tuple[str, str] | None = None  # (kind, mark) while the rules judge a capture/refund

    def raw(self, at: Field) -> bytes | None:
        """A field as loaded (None: absent), noted as read: a write checks it is unchanged."""
        self.read.add(at)
        return self.hashes.get(at[0], {}).get(at[1])

    def begin(self, now: float) -> None:
        """Start judging (again) from what was loaded."""
        self.now = now
        self.read.clear()
        self.writes.clear()
        self.values.clear()
        self.created.clear()


_CURRENT: contextvars.ContextVar[Snapshot | None] = contextvars.ContextVar(
    "vipps_proxy_state_snapshot", default=None
)


def use(snapshot: Snapshot) -> None:
    """Make `snapshot` the one the stores see, for the rest of the current task."""
    _CURRENT.set(snapshot)


def current() -> Snapshot | None:
    """The current task's snapshot, unless there is none or the state is unavailable."""
    snapshot = _CURRENT.get()
    return snapshot if snapshot is not None and snapshot.available else None


class SharedStore(Generic[K, V]):
    """A `Store` over the current request's snapshot (each request runs in its own task)."""

    def __init__(
        self,
        locate: Callable[[Snapshot, K], Field],
        encode: Callable[[V], bytes],
        decode: Callable[[bytes], V],
        view: Callable[[Snapshot, Field, V], V] | None = None,
        on_put: Callable[[Snapshot, K, Field, V], None] | None = None,
    ) -> None:
        self._locate = locate
        self._encode = encode
        self._decode = decode
        self._view = view
        self._on_put = on_put

    def get(self, key: K) -> V | None:
        snapshot = current()
        if snapshot is None:
            return None  # no state (Redis unavailable): the rules judge an unknown payment
        at = self._locate(snapshot, key)
        if at in snapshot.values:
            return cast("V | None", snapshot.values[at])
        raw = snapshot.raw(at)
        if raw is None:
            return None
        try:
            value = self._decode(raw)
        except ValueError:
            return None  # not ours (or an older layout): treated as absent, then overwritten
        return self._view(snapshot, at, value) if self._view is not None else value

    def put(self, key: K, value: V) -> None:
        snapshot = current()
        if snapshot is None:
            return
        at = self._locate(snapshot, key)
        if self._on_put is not None:
            self._on_put(snapshot, key, at, value)
        snapshot.values[at] = value
        snapshot.writes[at] = self._encode(value)

    def pop(self, key: K) -> V | None:
        value = self.get(key)
        snapshot = current()
        if snapshot is not None:
            at = self._locate(snapshot, key)
            snapshot.values[at] = None
            snapshot.writes[at] = b""
        return value

    def __len__(self) -> int:
        return 0  # the entries live in Redis, counted there

    def evictions(self) -> Evictions:
        return Evictions()
