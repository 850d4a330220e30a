"""The bad-input invariant: a request is refused with a 4xx and never reaches the upstream, or
it is forwarded once and arrives as sent; never a 5xx for what a client sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.conftest import Proxy
from tests.hardening.conftest import port_of
from tests.hardening.samples import REFERENCE, fresh, with_key
from tests.hardening.wire import RawResponse, exchange, request_bytes


@dataclass(frozen=True)
class Sent:
    """What a test sent: the request as the upstream should see it if it is forwarded."""

    method: str
    target: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def unique(sent: Sent) -> Sent:
    """The same request with a reference and idempotency key of its own (see samples.fresh)."""
    ref = fresh()
    return Sent(
        sent.method,
        sent.target.replace(REFERENCE, ref),
        sent.body.replace(REFERENCE.encode(), ref.encode()),
        with_key(ref, sent.headers),
    )


async def send(proxy: Proxy, sent: Sent, raw: bytes | None = None) -> RawResponse:
    """Forget earlier arrivals and log lines, then send `raw` (default: `sent`, length-framed)."""
    proxy.standin.received.clear()
    proxy.log.lines.clear()
    request = (
        raw if raw is not None else request_bytes(sent.method, sent.target, sent.headers, sent.body)
    )
    return await exchange(port_of(proxy), request)


def on_the_wire(target: str) -> str:
    """The target the upstream is sent: yarl drops an empty query (`/x?` goes out as `/x`).

    Harmless for Vipps (an empty query means no query), so it is allowed here, not pinned.
    """
    return target[:-1] if target.endswith("?") else target


def assert_refused_or_forwarded_exactly(proxy: Proxy, sent: Sent, answer: RawResponse) -> str:
    """The invariant; returns `refused` or `forwarded` for the figures."""
    assert answer.status < 500, (answer.status, answer.body[:300])
    arrived = proxy.standin.received
    records = proxy.log.of("request")
    if not arrived:
        assert 400 <= answer.status < 500, answer.status
        assert all(record["outcome"] == "blocked" for record in records), records
        return "refused"
    (got,) = arrived
    (record,) = records
    assert record["outcome"] == "forwarded"
    assert answer.status == 200
    assert (got.method, got.target) == (sent.method, on_the_wire(sent.target))
    if record.get("repaired"):
        # A default repair (phone notation) changed one value; the proxy says so.
        assert answer.header("Audit-Proxy-Findings")
    else:
        assert got.body == sent.body
    # Names are case-insensitive; a repeated name goes out in the spelling of its first copy.
    delivered = [(name.lower(), value) for name, value in got.headers]
    for name, value in sent.headers:
        assert (name.lower(), value) in delivered, (name, value)
        delivered.remove((name.lower(), value))
    first: dict[str, str] = {}
    for name, _ in sent.headers:
        first.setdefault(name.lower(), name)
    assert all(first.get(name.lower(), name) == name for name, _ in got.headers)
    return "forwarded"
