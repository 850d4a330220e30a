"""Bad bodies: whatever a client sends as a body gets a clear 4xx or is forwarded exactly.

Every request goes through the real proxy over loopback with the default rules, and each is
checked by `fidelity.assert_refused_or_forwarded_exactly`: no 5xx for client input; a request
the proxy refused never reaches the upstream; a forwarded one arrives once, byte for byte.
"""

from __future__ import annotations

import gzip
import json
import time
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import Proxy, ProxyFactory
from tests.hardening.conftest import EXAMPLES, Figures
from tests.hardening.fidelity import Sent, assert_refused_or_forwarded_exactly, send, unique
from tests.hardening.samples import (
    BODY_OPERATIONS,
    CREATE_PAYMENT,
    HEADERS,
    PHONE,
    REFERENCE,
    VALID_PAYMENT,
    fresh,
    payment,
    with_key,
)

pytestmark = pytest.mark.slow

# The proxy must answer every body of up to its 1 MiB limit well within this; a parser or rule
# that goes quadratic on deep nesting or long numbers shows up here as a failure, not a hang.
ANSWER_SECONDS = 5.0
# Everything but Content-Type, which the tests choose themselves.
VIPPS_HEADERS = tuple((n, v) for n, v in HEADERS if n != "Content-Type")


# --- Strategies ------------------------------------------------------------------------------

_NUMBERS = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(
        ["NaN", "-NaN", "Infinity", "-Infinity", "1e999999999", "-1E+400000", "1e-999999999",
         "49900.0000001", "49900.0", "-0", "0e0", "1.5e3", "4.99e4", "01", "+1", ".5", "0x10"]
    ),
    st.integers(1000, 20000).map(lambda n: "9" * n),  # thousands of digits
    st.integers(1000, 20000).map(lambda n: "0." + "0" * n + "1"),
)  # fmt: skip
_STRINGS = st.one_of(
    st.text(max_size=30).map(lambda s: json.dumps(s, ensure_ascii=False)),
    st.text(max_size=30).map(json.dumps),
    st.sampled_from(
        ["+47 987 65 432", "4798765432", "98765432", "http://localhost/x", "https://example.com",
         "WALLET", "NOK", "EUR", "order-123456", "", " ", "\\ud83d\\ude00", "\\u0000",
         "\\ud800", "x\\udfffy", "\\ude00\\ud83d"]
    ).map(lambda s: '"' + s + '"'),
)  # fmt: skip
_KEYS = st.sampled_from(
    ["amount", "value", "currency", "reference", "customer", "phoneNumber", "returnUrl",
     "userFlow", "paymentMethod", "type", "modificationAmount", "transaction", "orderId",
     "merchantInfo", "callbackPrefix", "Amount", "x", ""]
)  # fmt: skip
_SCALARS = st.one_of(_NUMBERS, _STRINGS, st.sampled_from(["true", "false", "null"]))


def _containers(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    # Objects are lists of pairs, so duplicate keys come naturally.
    pairs = st.lists(st.tuples(_KEYS, inner), max_size=6)
    return st.one_of(
        st.lists(inner, max_size=6).map(lambda items: "[" + ",".join(items) + "]"),
        pairs.map(lambda kv: "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in kv) + "}"),
    )


JSON_TEXT = st.recursive(_SCALARS, _containers, max_leaves=25)
# Places in the valid payment where one value is swapped for anything.
_SLOTS = ("49900", '"NOK"', f'"{PHONE}"', f'"{REFERENCE}"', '"WALLET"', '"WEB_REDIRECT"')


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """A body a client might send by mistake or on purpose."""
    kind = draw(st.sampled_from(["bytes", "json", "one-field", "one-field", "one-field"]))
    if kind == "bytes":
        return draw(st.binary(max_size=2048))
    if kind == "json":
        text = draw(JSON_TEXT)
    else:
        slot = draw(st.sampled_from(_SLOTS))
        text = VALID_PAYMENT.decode().replace(slot, draw(JSON_TEXT), 1)
    raw = text.encode()
    wrap = draw(st.sampled_from(["as-is", "as-is", "bom", "invalid-utf8", "cut", "garbage-tail"]))
    if wrap == "bom":
        return b"\xef\xbb\xbf" + raw
    if wrap == "invalid-utf8":
        at = draw(st.integers(0, len(raw)))
        return (
            raw[:at]
            + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80"]))
            + raw[at:]
        )
    if wrap == "cut":
        return raw[: draw(st.integers(0, len(raw)))]
    if wrap == "garbage-tail":
        return raw + draw(st.binary(min_size=1, max_size=16))
    return raw


CONTENT_TYPES = st.sampled_from(
    [None, "application/json", "application/json; charset=utf-8", "text/plain",
     "application/x-www-form-urlencoded", "application/json; charset=latin-1",
     "multipart/form-data; boundary=x", "application/xml", "*/*", "json", ""]
)  # fmt: skip


# --- Properties --------------------------------------------------------------------------------


@EXAMPLES
@given(
    operation=st.sampled_from(BODY_OPERATIONS),
    body=bodies(),
    content_type=CONTENT_TYPES,
)
async def test_any_body_to_a_catalogued_operation(
    proxy: Proxy,
    figures: Figures,
    operation: tuple[str, str],
    body: bytes,
    content_type: str | None,
) -> None:
    """Arbitrary bytes, broken JSON, odd numbers and content types: 4xx or forwarded exactly."""
    method, path = operation
    headers = VIPPS_HEADERS + ((("Content-Type", content_type),) if content_type else ())
    sent = unique(Sent(method, path, body, headers))
    started = time.perf_counter()
    answer = await send(proxy, sent)
    assert time.perf_counter() - started < ANSWER_SECONDS
    figures.count("bad inputs: " + assert_refused_or_forwarded_exactly(proxy, sent, answer))
    figures.count("bad inputs tried")


# --- Fixed cases: bodies too big to generate by the hundred -------------------------------------

DEPTH = 100_000
LARGE_BODIES = {
    "nested-arrays-100k": b"[" * DEPTH + b"]" * DEPTH,
    "nested-objects-100k": b'{"a":' * DEPTH + b"1" + b"}" * DEPTH,
    "nested-amount-100k": payment('{"value":' * DEPTH + "1" + "}" * DEPTH),
    "array-300k-items": b"[" + b"1," * 300_000 + b"1]",
    "array-of-20k-payments": b"[" + b",".join([VALID_PAYMENT[:40] + b"}}"] * 20_000) + b"]",
    "amount-with-200k-digits": payment("9" * 200_000),
    "amount-with-200k-decimals": payment("0." + "0" * 200_000 + "1"),
    "amount-exponent-1e999999999": payment("1e999999999"),
    "amount-nan": payment("NaN"),
    "amount-infinity": payment("Infinity"),
    "amount-minus-infinity": payment("-Infinity"),
    "amount-duplicate-key-hides-float": VALID_PAYMENT.replace(
        b'"value":49900', b'"value":49900.0000001,"value":49900'
    ),
    "amount-duplicate-key-float-last": VALID_PAYMENT.replace(
        b'"value":49900', b'"value":49900,"value":49900.0000001'
    ),
    "bom": b"\xef\xbb\xbf" + VALID_PAYMENT,
    "invalid-utf8-in-string": VALID_PAYMENT.replace(b"Hardening", b"Hard\xffening"),
    "utf16": VALID_PAYMENT.decode().encode("utf-16"),
    "long-string-900k": payment(phone="9" * 900_000),
    "many-keys-50k": b"{" + b",".join(b'"k%d":1' % i for i in range(50_000)) + b"}",
    "whitespace-only": b" \r\n\t" * 1000,
    "nul-bytes": b"\x00" * 1000,
}


@pytest.mark.parametrize("name", list(LARGE_BODIES))
async def test_hostile_bodies_are_answered_quickly(
    proxy: Proxy, figures: Figures, name: str
) -> None:
    """Deep nesting, huge arrays and numbers, NaN, duplicate keys: 4xx or exact, within 5 s."""
    sent = unique(Sent("POST", CREATE_PAYMENT, LARGE_BODIES[name], HEADERS))
    started = time.perf_counter()
    answer = await send(proxy, sent)
    assert time.perf_counter() - started < ANSWER_SECONDS
    outcome = assert_refused_or_forwarded_exactly(proxy, sent, answer)
    figures.count("bad inputs: " + outcome)
    figures.count("bad inputs tried")


async def test_float_tail_hidden_by_a_duplicate_key_is_not_forwarded(proxy: Proxy) -> None:
    """Two parsers may pick different duplicates; a float amount in either is never forwarded."""
    for body in (
        LARGE_BODIES["amount-duplicate-key-hides-float"],
        LARGE_BODIES["amount-duplicate-key-float-last"],
    ):
        answer = await send(proxy, unique(Sent("POST", CREATE_PAYMENT, body, HEADERS)))
        assert 400 <= answer.status < 500
        assert proxy.standin.received == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(payment('"\\ud800"'), id="amount-value"),
        pytest.param(
            VALID_PAYMENT.replace(b'"currency":"NOK"', b'"currency":"\\udfff"'), id="currency"
        ),
    ],
)
async def test_lone_surrogate_in_a_string_is_a_client_error(proxy: Proxy, body: bytes) -> None:
    """An unpaired UTF-16 surrogate escape in a string gets a 4xx, never a 500."""
    sent = unique(Sent("POST", CREATE_PAYMENT, body, HEADERS))
    answer = await send(proxy, sent)
    assert_refused_or_forwarded_exactly(proxy, sent, answer)
    assert len(proxy.log.of("request")) == 1


# --- Content-Encoding --------------------------------------------------------------------------


def _encoded(headers: tuple[tuple[str, str], ...], coding: str) -> tuple[tuple[str, str], ...]:
    return (*headers, ("Content-Encoding", coding))


async def test_compressed_body_is_validated_after_decoding(proxy: Proxy, figures: Figures) -> None:
    """A gzip or deflate body with a float amount is judged on its decoded JSON and held."""
    for coding, pack in (("gzip", gzip.compress), ("deflate", zlib.compress)):
        ref = fresh()
        packed = pack(payment("49900.0000001", reference=ref))
        sent = Sent("POST", CREATE_PAYMENT, packed, _encoded(with_key(ref), coding))
        answer = await send(proxy, sent)
        assert 400 <= answer.status < 500
        assert answer.header("Audit-Proxy-Findings")
        assert proxy.standin.received == []
        figures.count("bad inputs tried")


async def test_compressed_body_is_forwarded_as_sent(proxy: Proxy) -> None:
    """A valid gzip body arrives as the same compressed bytes, with its Content-Encoding."""
    ref = fresh()
    packed = gzip.compress(payment(reference=ref))
    sent = Sent("POST", CREATE_PAYMENT, packed, _encoded(with_key(ref), "gzip"))
    answer = await send(proxy, sent)
    assert_refused_or_forwarded_exactly(proxy, sent, answer)
    (got,) = proxy.standin.received
    assert got.body == packed
    assert got.header("Content-Encoding") == "gzip"


async def test_decompression_bomb_is_refused(make_proxy: ProxyFactory, figures: Figures) -> None:
    """10 MB of zeros in a 10 kB gzip body gets 413 and nothing is forwarded."""
    proxy = await make_proxy(max_body_bytes=64 * 1024)
    bomb = gzip.compress(b"0" * 10_000_000, compresslevel=9)
    assert len(bomb) < 64 * 1024
    started = time.perf_counter()
    answer = await send(
        proxy, Sent("POST", CREATE_PAYMENT, bomb, _encoded(with_key(fresh()), "gzip"))
    )
    assert time.perf_counter() - started < ANSWER_SECONDS
    assert answer.status == 413
    assert proxy.standin.received == []
    figures.count("bad inputs tried")


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
async def test_undecodable_compressed_body_is_a_client_error(proxy: Proxy, coding: str) -> None:
    """A body that does not decode as its Content-Encoding says gets a 4xx, not a 500."""
    sent = Sent("POST", CREATE_PAYMENT, b"not compressed", _encoded(with_key(fresh()), coding))
    answer = await send(proxy, sent)
    assert 400 <= answer.status < 500, answer.status
    assert proxy.standin.received == []
