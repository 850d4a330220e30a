"""Payment-level state on Redis (or Valkey), shared by every replica of the proxy.

The pure rules read and write their state through the synchronous `Store` protocol. Here each
request gets a snapshot of its payment's state, loaded in one round trip before the rules judge
it (one hash per payment, its name hash-tagged so all of it sits in one Cluster slot); the
stores read from that snapshot and note what the rules change. The changes are applied by one
Lua script per payment that first checks that every field read is still what was read, then
writes: a compare-and-set. If another replica changed the payment in between, the snapshot is
refreshed from the script's answer and the rules judge again (at most a few times). So a
capture counted in flight by one proxy is seen by a concurrent capture through another, rate
windows hold every replica's calls, and an idempotency key binds to its first body once.

Created payments wait for the never-polled audit in one sorted set by deadline; a script takes
the due ones out atomically, so exactly one replica reports each.

Redis down, slow or refusing: the request goes on without state (the payment-level rules find
nothing: fail open), each round trip waits at most the timeout, the failure is counted, and
after a few failures in a row a circuit breaker skips Redis entirely for a while, then tries
again. This is the only module that knows redis-py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

import orjson
from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from policies.audit.idempotency import key_scope
from policies.audit.ledger import PaymentRecord
from policies.audit.payment_audit import AuditStores, ObserveResult
from policies.audit.polling import PollState, Unpolled
from policies.audit.shared_state import (
    add_in_flight,
    decode_in_flight,
    decode_poll,
    decode_record,
    decode_window,
    encode_in_flight,
    encode_poll,
    encode_record,
    encode_window,
    environment_tag,
    idempotency_tag,
    in_flight_mark,
    payment_tag,
    request_tag,
    touched_payments,
    with_in_flight,
)
from policies.audit.state import Clock, PaymentKey, payment_key
from policies.core.jsonbody import JsonValue
from policies.core.model import AuditedRequest, Verdict
from proxy.config import Settings
from proxy.metrics import ProxyMetrics
from proxy.state_snapshot import Breaker, Field, SharedStore, Snapshot, Turn, current, use

__all__ = ["RedisState", "StateUnavailable"]

VERSION = "v1"
LEDGER, POLL, IN_FLIGHT = "ledger", "poll", "inflight"
PAYMENTS, UNPOLLED = "payments", "unpolled"  # the `store` label of the state metrics
ATTEMPTS = 8  # judging again after another replica's change: a few times, then go on without
TURN_TIMEOUTS = 4  # how long a request may queue behind others for the same payment, in timeouts
POOL_SIZE = 32
CLAIM_BATCH = 500

# KEYS[1]: one payment's hash. ARGV: time to live (ms), the number of fields read, then
# (field, value read or "" for absent) for each, then (field, new value or "" to delete).
# Nil when written; else the hash as it is now, for the caller to judge again.
_COMPARE_AND_SET = """
local checks = tonumber(ARGV[2])
local i = 3
for _ = 1, checks do
  local now = redis.call('HGET', KEYS[1], ARGV[i]) or ''
  if now ~= ARGV[i + 1] then
    return redis.call('HGETALL', KEYS[1])
  end
  i = i + 2
end
while i <= #ARGV do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[1], ARGV[i])
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
  i = i + 2
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return false
"""

# KEYS[1]: the created payments by deadline. Takes out (and returns) those due by ARGV[1].
_CLAIM_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #due > 0 then
  redis.call('ZREM', KEYS[1], unpack(due))
end
return due
"""

T = TypeVar("T")


class StateUnavailable(Exception):
    """A round trip failed or was skipped; the reason is the metric's `reason` label."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _same(value: bytes) -> bytes:
    return value


def _reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError | redis_errors.TimeoutError):
        return "timeout"
    if isinstance(error, redis_errors.AuthenticationError | redis_errors.NoPermissionError):
        return "auth"
    if isinstance(error, redis_errors.ConnectionError | OSError):
        return "connection"
    if isinstance(error, redis_errors.ResponseError):
        return "refused"
    return "error"


class RedisState:
    """The payment-level state of every replica, in one Redis."""

    def __init__(
        self,
        settings: Settings,
        metrics: ProxyMetrics,
        *,
        wall_clock: Clock = time.time,
        breaker: Breaker | None = None,
    ) -> None:
        self._timeout = settings.state_timeout_ms / 1000
        self._ttl_ms = int(settings.state_ttl_seconds * 1000)
        self._poll_window = settings.poll_audit_window_seconds
        # A capture in flight counts until its answer is learnt, or the upstream timeout passed.
        self._in_flight_seconds = (
            settings.upstream_connect_timeout_seconds + settings.upstream_timeout_seconds + 5.0
        )
        self._clock = wall_clock
        self._metrics = metrics
        self._breaker = breaker if breaker is not None else Breaker()
        self.replica = os.urandom(6).hex() + "."
        self._turns: dict[str, Turn] = {}
        env = environment_tag(settings.upstream_base)
        self._prefix = f"vap:{VERSION}:{{{env}."
        self.due_key = f"vap:{VERSION}:{{{env}.due}}"
        self._pool = BlockingConnectionPool.from_url(
            settings.state_url,
            max_connections=POOL_SIZE,
            timeout=self._timeout,  # waiting for a free connection counts against the timeout
            socket_timeout=self._timeout,
            socket_connect_timeout=self._timeout,
            retry=Retry(NoBackoff(), 0),  # no retries on the request path
            health_check_interval=0,
        )
        self._client = Redis(connection_pool=self._pool)
        self._compare_and_set = self._client.register_script(_COMPARE_AND_SET)
        self._claim_due = self._client.register_script(_CLAIM_DUE)
        self._durations = {
            op: metrics.state_duration.labels(op) for op in ("load", "commit", "claim", "queue")
        }

    # --- Keys and stores ----------------------------------------------------------------------

    def hash_key(self, tag: str) -> str:
        """The Redis key of one payment's state: version, environment, and the payment's tag
        in braces (its Cluster slot)."""
        return f"{self._prefix}{tag}}}"

    def _payment_hash(self, key: PaymentKey) -> str:
        return self.hash_key(payment_tag(key))

    def stores(self) -> AuditStores:
        """The stores the payment audit works on, over each request's snapshot."""

        def at_payment(name: str) -> Callable[[Snapshot, PaymentKey], Field]:
            return lambda snapshot, key: (self._payment_hash(key), name)

        def at_home(prefix: str) -> Callable[[Snapshot, bytes], Field]:
            return lambda snapshot, key: (snapshot.home, prefix + key.hex())

        def idempotency_at(snapshot: Snapshot, scope: bytes) -> Field:
            if snapshot.payment:
                return snapshot.home, "i:" + scope.hex()
            return self.hash_key(idempotency_tag(scope)), "i"

        return AuditStores(
            ledger=SharedStore(at_payment(LEDGER), encode_record, decode_record, _judged),
            idempotency=SharedStore(idempotency_at, _same, _same),
            rate_limit=SharedStore(at_home("r:"), encode_window, decode_window),
            polling=SharedStore(at_payment(POLL), encode_poll, decode_poll, on_put=_note_created),
            replica=self.replica,
        )

    # --- Round trips --------------------------------------------------------------------------

    async def _call(self, store: str, operation: str, make: Callable[[], Awaitable[T]]) -> T:
        """One round trip, bounded by the timeout; raises StateUnavailable (counted) on failure."""
        if self._breaker.is_open:
            self._metrics.state_errors.labels(store, "circuit_open").inc()
            raise StateUnavailable("circuit_open")
        started = time.perf_counter()
        try:
            result = await asyncio.wait_for(make(), self._timeout)
        except (TimeoutError, redis_errors.RedisError, OSError) as error:
            self._breaker.failure()
            reason = _reason(error)
            self._metrics.state_errors.labels(store, reason).inc()
            raise StateUnavailable(reason) from None
        finally:
            self._durations[operation].observe(time.perf_counter() - started)
        self._breaker.success()
        return result

    async def _load(self, snapshot: Snapshot, keys: Sequence[str]) -> None:
        missing = [k for k in dict.fromkeys(keys) if k not in snapshot.hashes]
        if not missing:
            return

        async def load() -> list[Any]:
            return list(await asyncio.gather(*(self._client.hgetall(k) for k in missing)))

        for key, found in zip(missing, await self._call(PAYMENTS, "load", load), strict=True):
            fields = cast("dict[bytes, bytes]", found)
            snapshot.hashes[key] = {f.decode(): v for f, v in fields.items()}

    async def _commit(self, snapshot: Snapshot, only: set[str] | None) -> set[str]:
        """Apply the snapshot's changes, per payment; the payments that changed meanwhile
        (their snapshot refreshed) are returned, to be judged again."""
        writes: dict[str, list[str]] = {}
        for hash_key, name in snapshot.writes:
            if only is None or hash_key in only:
                writes.setdefault(hash_key, []).append(name)
        if not writes:
            return set()
        touched = snapshot.read | set(snapshot.writes)
        calls = []
        for hash_key, names in writes.items():
            current = snapshot.hashes.get(hash_key, {})
            checked = sorted({name for h, name in touched if h == hash_key})
            args: list[Any] = [self._ttl_ms, len(checked)]
            for name in checked:
                args += [name, current.get(name, b"")]
            for name in names:
                args += [name, snapshot.writes[(hash_key, name)]]
            calls.append(self._compare_and_set(keys=[hash_key], args=args))

        async def commit() -> list[Any]:
            return list(await asyncio.gather(*calls))

        conflicts: set[str] = set()
        answers = await self._call(PAYMENTS, "commit", commit)
        for hash_key, answer in zip(writes, answers, strict=True):
            if answer is None:  # written: the snapshot now holds what Redis holds
                held = snapshot.hashes.setdefault(hash_key, {})
                for name in writes[hash_key]:
                    raw = snapshot.writes[(hash_key, name)]
                    if raw:
                        held[name] = raw
                    else:
                        held.pop(name, None)
                continue
            pairs = cast("list[bytes]", answer)
            snapshot.hashes[hash_key] = {
                pairs[i].decode(): pairs[i + 1] for i in range(0, len(pairs), 2)
            }
            conflicts.add(hash_key)
        return conflicts

    # --- The request path ---------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _turn(self, snapshot: Snapshot) -> AsyncIterator[bool]:
        """One request of this process at a time per payment, so that they do not collide with
        each other (only with other replicas). Yields False, with the state given up for this
        request, when the turn does not come within a few timeouts."""
        key = snapshot.home
        entry = self._turns.get(key)
        if entry is None:
            entry = self._turns[key] = Turn()
        entry.waiting += 1
        try:
            try:
                await asyncio.wait_for(entry.lock.acquire(), TURN_TIMEOUTS * self._timeout)
            except TimeoutError:
                self._metrics.state_errors.labels(PAYMENTS, "busy").inc()
                snapshot.available = False
                yield False
                return
            try:
                yield True
            finally:
                entry.lock.release()
        finally:
            entry.waiting -= 1
            if not entry.waiting:
                del self._turns[key]

    async def admit(
        self,
        request: AuditedRequest,
        request_id: str,
        evaluate: Callable[[AuditedRequest], Verdict],
        record_forwarded: Callable[[AuditedRequest], None],
    ) -> Verdict:
        """Judge a request on its payment's shared state; if it is to be forwarded, count it
        in the rate windows and its capture or refund in flight, atomically with the judging."""
        snapshot = Snapshot(
            self.hash_key(request_tag(request)), payment=payment_key(request) is not None
        )
        use(snapshot)
        async with self._turn(snapshot) as ours:
            if not ours:
                return evaluate(request)
            return await self._admit(snapshot, request, request_id, evaluate, record_forwarded)

    async def _admit(
        self,
        snapshot: Snapshot,
        request: AuditedRequest,
        request_id: str,
        evaluate: Callable[[AuditedRequest], Verdict],
        record_forwarded: Callable[[AuditedRequest], None],
    ) -> Verdict:
        keys = [snapshot.home]
        scope = key_scope(request) if not snapshot.payment else None
        if scope is not None:
            keys.append(self.hash_key(idempotency_tag(scope)))
        try:
            await self._load(snapshot, keys)
        except StateUnavailable:
            snapshot.available = False
            return evaluate(request)
        marked = in_flight_mark(request, request_id)
        key = payment_key(request)
        verdict: Verdict | None = None
        only: set[str] | None = None  # after a partial write: the keys still to write
        for _ in range(ATTEMPTS):
            snapshot.begin(self._clock())
            snapshot.judging = marked if key is not None else None
            try:
                verdict = evaluate(request)
            finally:
                snapshot.judging = None
            if verdict.blocked:
                return verdict
            record_forwarded(request)
            if marked is not None and key is not None:
                self._hold(snapshot, request, key, *marked)
            try:
                conflicts = await self._commit(snapshot, only)
            except StateUnavailable:
                snapshot.available = False
                return verdict
            if not conflicts:
                return verdict
            only = conflicts if only is None else only & conflicts
        self._metrics.state_errors.labels(PAYMENTS, "conflict").inc()
        snapshot.available = False
        return verdict if verdict is not None else evaluate(request)

    def _hold(
        self, snapshot: Snapshot, request: AuditedRequest, key: PaymentKey, kind: str, mark: str
    ) -> None:
        ledger_raw = snapshot.raw((self._payment_hash(key), LEDGER))
        if ledger_raw is None:
            return  # an unknown payment is never blocked: nothing to hold against
        at = (snapshot.home, IN_FLIGHT)
        raw = snapshot.raw(at)
        entries = decode_in_flight(raw) if raw else {}
        now = snapshot.now
        held = add_in_flight(
            entries, request, decode_record(ledger_raw), kind, mark,
            now + self._in_flight_seconds, now,
        )  # fmt: skip
        snapshot.writes[at] = encode_in_flight(held) if held else b""

    async def learn(
        self,
        request: AuditedRequest,
        response: JsonValue,
        request_id: str,
        observe: Callable[[], ObserveResult],
    ) -> ObserveResult:
        """Learn from Vipps' answer on the shared state (the request's capture leaves flight)."""
        snapshot = current()
        if snapshot is None:
            return observe()
        async with self._turn(snapshot) as ours:
            if not ours:
                return observe()
            return await self._learn(snapshot, request, response, request_id, observe)

    async def _learn(
        self,
        snapshot: Snapshot,
        request: AuditedRequest,
        response: JsonValue,
        request_id: str,
        observe: Callable[[], ObserveResult],
    ) -> ObserveResult:
        keys = [self._payment_hash(k) for k in touched_payments(request, response)]
        try:
            await self._load(snapshot, keys)
        except StateUnavailable:
            snapshot.available = False
            return observe()
        marked = in_flight_mark(request, request_id)
        only: set[str] | None = None
        result = ObserveResult()
        for _ in range(ATTEMPTS):
            snapshot.begin(self._clock())
            result = observe()
            if marked is not None:
                self._release(snapshot, marked[1])
            try:
                conflicts = await self._commit(snapshot, only)
            except StateUnavailable:
                snapshot.available = False
                return result
            # Payments created in a hash written now wait for the never-polled audit.
            await self._queue_created(
                [c for c in snapshot.created if (only is None or c[0] in only)
                 and c[0] not in conflicts]
            )  # fmt: skip
            if not conflicts:
                return result
            only = conflicts if only is None else only & conflicts
        self._metrics.state_errors.labels(PAYMENTS, "conflict").inc()
        return result

    def _release(self, snapshot: Snapshot, mark: str) -> None:
        at = (snapshot.home, IN_FLIGHT)
        if at[0] not in snapshot.hashes:
            return
        raw = snapshot.hashes[at[0]].get(IN_FLIGHT)
        if not raw:
            return
        entries = decode_in_flight(snapshot.raw(at) or b"{}")
        if mark in entries:
            del entries[mark]
            snapshot.writes[at] = encode_in_flight(entries) if entries else b""

    async def _queue_created(self, created: list[tuple[str, PaymentKey, PollState]]) -> None:
        if not created:
            return
        mapping: dict[bytes, float] = {}
        for hash_key, key, state in created:
            created_at = state.created_at or 0.0
            member = orjson.dumps([hash_key, state.api, key[1], key[2], created_at])
            mapping[member] = created_at + self._poll_window

        async def queue() -> None:
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.zadd(self.due_key, mapping)
                pipe.pexpire(self.due_key, self._ttl_ms)
                await pipe.execute()

        try:
            await self._call(UNPOLLED, "queue", queue)
        except StateUnavailable:
            return

    # --- The never-polled audit ---------------------------------------------------------------

    async def due_unpolled(self) -> list[Unpolled]:
        """Payments created through any replica and polled through none within the window:
        each taken out of the queue by exactly one replica, which reports it."""
        now = self._clock()
        try:
            claimed = await self._call(
                UNPOLLED,
                "claim",
                lambda: self._claim_due(keys=[self.due_key], args=[now, CLAIM_BATCH]),
            )
        except StateUnavailable:
            return []
        entries = []
        for member in cast("list[bytes]", claimed or []):
            try:
                hash_key, api, msn, reference, created_at = orjson.loads(member)
            except (ValueError, TypeError):
                continue
            entries.append((str(hash_key), str(api), str(msn), str(reference), float(created_at)))
        if not entries:
            return []

        async def polls() -> list[Any]:
            async with self._client.pipeline(transaction=False) as pipe:
                for entry in entries:
                    pipe.hget(entry[0], POLL)
                return list(await pipe.execute())

        try:
            states = await self._call(UNPOLLED, "claim", polls)
        except StateUnavailable:
            return []  # taken but unread: rather unreported than reported after a poll
        found = []
        for (_, api, msn, reference, created_at), raw in zip(entries, states, strict=True):
            state = decode_poll(raw) if raw else None
            if state is not None and state.created_at == created_at and state.polls == 0:
                found.append(Unpolled(api, msn, reference, created_at, now - created_at))
        return found

    # --- Lifecycle ----------------------------------------------------------------------------

    async def ping(self) -> bool:
        """Whether Redis answers now (for the start-up line)."""
        try:
            await self._call(PAYMENTS, "load", self._client.ping)
        except StateUnavailable:
            return False
        return True

    async def close(self) -> None:
        await self._client.aclose()
        await self._pool.disconnect()


def _judged(snapshot: Snapshot, at: Field, record: PaymentRecord) -> PaymentRecord:
    """While a capture (refund) is judged, the others in flight count as done."""
    if snapshot.judging is None or at[0] != snapshot.home:
        return record
    raw = snapshot.raw((snapshot.home, IN_FLIGHT))
    if not raw:
        return record
    kind, mark = snapshot.judging
    return with_in_flight(record, decode_in_flight(raw), kind, mark, snapshot.now)


def _note_created(snapshot: Snapshot, key: PaymentKey, at: Field, state: PollState) -> None:
    """A poll record that gains its creation time is a payment to queue for the audit."""
    if state.created_at is None:
        return
    raw = snapshot.hashes.get(at[0], {}).get(at[1])
    before = decode_poll(raw) if raw else None
    if before is None or before.created_at is None:
        snapshot.created.append((at[0], key, state))
