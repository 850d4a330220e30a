"""The pure part of the shared state: encodings that round-trip, tags, and captures in flight."""

from __future__ import annotations

from array import array

import orjson
from hypothesis import given
from hypothesis import strategies as st

from policies.audit.ledger import PaymentLedger, PaymentRecord
from policies.audit.polling import PollState
from policies.audit.ratelimit import RateWindow
from policies.audit.shared_state import (
    InFlight,
    add_in_flight,
    decode_in_flight,
    decode_poll,
    decode_record,
    decode_window,
    encode_in_flight,
    encode_poll,
    encode_record,
    encode_window,
    in_flight_mark,
    payment_tag,
    request_tag,
    touched_payments,
    with_in_flight,
)
from policies.audit.state import BoundedStore, PaymentKey
from policies.core.jsonbody import JsonValue
from policies.core.model import AuditedRequest, Headers, audited_request

MSN = "123456"
amounts = st.integers(min_value=0, max_value=10**12)
marks = st.dictionaries(st.text(max_size=20), amounts, max_size=5)


def request(
    method: str, path: str, body: object = None, key: str | None = "key-1"
) -> AuditedRequest:
    headers = [("Merchant-Serial-Number", MSN), ("Content-Type", "application/json")]
    if key is not None:
        headers.append(("Idempotency-Key", key))
    raw = orjson.dumps(body) if body is not None else b""
    return audited_request(method, path, Headers(headers), raw, "")


def capture(value: int, key: str | None = "key-1", reference: str = "order-1") -> AuditedRequest:
    body = {"modificationAmount": {"currency": "NOK", "value": value}}
    return request("POST", f"/epayment/v1/payments/{reference}/capture", body, key)


@given(
    currency=st.one_of(st.none(), st.sampled_from(["NOK", "DKK", "EUR"])),
    reserved=st.one_of(st.none(), amounts),
    figures=st.tuples(amounts, amounts, amounts),
    confirmed=st.booleans(),
    pending=st.tuples(marks, marks),
    applied=st.lists(st.text(max_size=20), max_size=5, unique=True),
)
def test_a_ledger_record_round_trips(
    currency: str | None,
    reserved: int | None,
    figures: tuple[int, int, int],
    confirmed: bool,
    pending: tuple[dict[str, int], dict[str, int]],
    applied: list[str],
) -> None:
    record = PaymentRecord(
        currency, reserved, *figures, confirmed, pending[0], pending[1], dict.fromkeys(applied)
    )
    again = decode_record(encode_record(record))
    assert again == record
    assert list(again.applied) == applied  # the order says which marks are dropped first


@given(
    stamps=st.lists(st.floats(min_value=0, max_value=4e9), max_size=10),
    banned=st.floats(min_value=0, max_value=4e9),
)
def test_a_rate_window_round_trips(stamps: list[float], banned: float) -> None:
    window = RateWindow()
    window.stamps = array("d", stamps)
    window.banned_until = banned
    again = decode_window(encode_window(window))
    assert list(again.stamps) == stamps
    assert again.banned_until == banned


@given(
    created=st.one_of(st.none(), st.floats(min_value=0, max_value=4e9)),
    last=st.one_of(st.none(), st.floats(min_value=0, max_value=4e9)),
    polls=st.integers(min_value=0, max_value=10**6),
)
def test_a_poll_record_round_trips(created: float | None, last: float | None, polls: int) -> None:
    state = PollState("epayment", created, last, polls)
    assert decode_poll(encode_poll(state)) == state


def test_foreign_values_decode_to_defaults_not_errors() -> None:
    """What another writer (or an older layout) left decodes to empty values, never a crash."""
    assert decode_record(b"[1, 2]") == PaymentRecord()
    assert decode_record(b'{"cap": "many", "res": true, "a": 3}') == PaymentRecord()
    assert decode_poll(b'"x"') == PollState("unknown")
    assert list(decode_window(b'{"s": ["a", 1.5], "b": null}').stamps) == [1.5]
    assert decode_in_flight(b'{"m": ["capture", 5], "n": ["refund", 1, 9.0]}') == {
        "n": InFlight("refund", 1, 9.0)
    }


def test_captures_in_flight_count_against_another_capture_only() -> None:
    """Another capture in flight adds to `captured` for a capture, not for a refund; the
    request's own mark (a retry) and expired holds do not count."""
    record = PaymentRecord("NOK", reserved=50000, captured=10000)
    held = {
        "capture:other": InFlight("capture", 30000, expires_at=100.0),
        "capture:mine": InFlight("capture", 5000, expires_at=100.0),
        "capture:gone": InFlight("capture", 7000, expires_at=50.0),
        "refund:r": InFlight("refund", 2000, expires_at=100.0),
    }
    judged = with_in_flight(record, held, "capture", "capture:mine", now=60.0)
    assert judged.captured == 40000
    assert record.captured == 10000  # the snapshot itself is unchanged
    assert with_in_flight(record, held, "refund", "refund:other", now=60.0).refunded == 2000
    assert with_in_flight(record, {}, "capture", "capture:x", now=0.0) is record


def test_a_hold_is_added_and_expired_ones_dropped() -> None:
    held = {"capture:old": InFlight("capture", 1, expires_at=5.0)}
    added = add_in_flight(held, capture(30000), None, "capture", "capture:key-1", 70.0, now=10.0)
    assert added == {"capture:key-1": InFlight("capture", 30000, 70.0)}
    assert decode_in_flight(encode_in_flight(added)) == added
    assert add_in_flight({}, capture(0), None, "capture", "capture:key-1", 70.0, now=10.0) == {}


def test_marks_follow_the_idempotency_key() -> None:
    assert in_flight_mark(capture(100), "req-1") == ("capture", "capture:key-1")
    assert in_flight_mark(capture(100, key=None), "req-1") == ("capture", "capture:#req-1")
    refund = request("POST", "/epayment/v1/payments/order-1/refund", {}, "r-1")
    assert in_flight_mark(refund, "req-1") == ("refund", "refund:r-1")
    assert in_flight_mark(request("GET", "/epayment/v1/payments/order-1"), "req-1") is None


def test_one_tag_per_payment_whatever_the_operation() -> None:
    """A payment's create, capture and poll share one tag (one Redis key); another payment, or
    the same reference under another MSN, has another."""
    create = request("POST", "/epayment/v1/payments", {"reference": "order-1"}, "c-1")
    poll = request("GET", "/epayment/v1/payments/order-1")
    assert request_tag(create) == request_tag(capture(100)) == request_tag(poll)
    assert request_tag(capture(100, reference="order-2")) != request_tag(capture(100))
    assert payment_tag(("epayment", MSN, "order-1")) != payment_tag(("epayment", "999", "order-1"))
    assert "order-1" not in request_tag(poll)


def test_touched_payments_include_those_an_answer_names() -> None:
    listing = request("GET", "/recurring/v3/agreements/agr_1/charges")
    answer: JsonValue = [{"id": "chr_1"}, {"id": "chr_2"}, {"id": "chr_1"}]
    keys = touched_payments(listing, answer)
    assert keys == [("recurring", MSN, "agr_1/chr_1"), ("recurring", MSN, "agr_1/chr_2")]
    assert touched_payments(capture(1), None) == [("epayment", MSN, "order-1")]


def test_unkeyed_captures_of_two_replicas_are_two_operations() -> None:
    """Two replicas sharing a ledger each count a capture sent without an idempotency key; with
    the same replica name (as two in-process ledgers would have) the second looks like a retry."""

    def captured(replicas: tuple[str, str]) -> int:
        store: BoundedStore[PaymentKey, PaymentRecord] = BoundedStore(
            lambda: 0.0, max_entries=10, ttl_seconds=60
        )
        first, second = (PaymentLedger(store, name) for name in replicas)
        body = {"amount": {"currency": "NOK", "value": 50000}, "reference": "order-1"}
        first.observe(request("POST", "/epayment/v1/payments", body, "c-1"), 201, None)
        first.observe(capture(10000, key=None), 200, None)
        second.observe(capture(10000, key=None), 200, None)
        record = store.get(("epayment", MSN, "order-1"))
        assert record is not None
        return record.captured

    assert captured(("a.", "b.")) == 20000
    assert captured(("", "")) == 10000
