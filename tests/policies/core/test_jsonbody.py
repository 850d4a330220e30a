"""The body parser keeps numbers exact and duplicates visible; splicing changes only one value."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.core.jsonbody import (
    MISSING,
    JsonValue,
    encode_value,
    format_path,
    parse_body,
    splice,
    walk,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(b'{"v": 49900.0000001}', Decimal("49900.0000001"), id="fraction-kept-exact"),
        pytest.param(b'{"v": 49900.0}', Decimal("49900.0"), id="integral-float-stays-float"),
        pytest.param(b'{"v": 4.99E+4}', Decimal("4.99E+4"), id="exponent"),
        pytest.param(b'{"v": NaN}', "nan", id="nan"),
        pytest.param(
            b'{"v": 123456789012345678901234567890}', 123456789012345678901234567890, id="bigint"
        ),
    ],
)
def test_numbers_are_kept_as_written(raw: bytes, expected: object) -> None:
    """Numbers parse without loss: fractions as Decimal, NaN as a non-finite Decimal."""
    value = parse_body(raw).get(("v",))
    if expected == "nan":
        assert isinstance(value, Decimal)
        assert value.is_nan()
    else:
        assert value == expected
        assert type(value) is type(expected)


def test_thousands_of_digits_do_not_raise() -> None:
    """A number longer than Python's int() limit parses as a Decimal instead of failing."""
    body = parse_body(b'{"v": ' + b"9" * 5000 + b"}")
    assert body.error is None
    assert isinstance(body.get(("v",)), Decimal)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(b"{", "not valid JSON", id="truncated"),
        pytest.param(b"\xff\xfe", "not valid UTF-8", id="bad-utf8"),
        pytest.param(b'\xef\xbb\xbf{"a":1}', "byte order mark", id="bom"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, "nested too deeply", id="deep"),
    ],
)
def test_bad_bodies_give_an_error_not_an_exception(raw: bytes, message: str) -> None:
    """Unparseable bodies become a readable error."""
    body = parse_body(raw)
    assert body.error is not None
    assert message in body.error
    assert body.value is MISSING


def test_empty_body_is_missing_not_an_error() -> None:
    """An empty or blank body is simply absent."""
    assert parse_body(b"  \n").present is False
    assert parse_body(b"").error is None


def test_duplicate_keys_are_found_at_any_depth() -> None:
    """Every duplicated key is reported with its path; the last value wins as in most parsers."""
    body = parse_body(b'{"a": 1, "x": [{"v": 1, "v": 2}], "a": 3}')
    assert body.duplicate_keys == (("a",), ("x", 0, "v"))
    assert body.get(("a",)) == 3


def test_walk_expands_arrays_and_skips_absent_steps() -> None:
    """walk() visits every array item for "*" and ignores paths that are not there."""
    value = parse_body(b'{"lines": [{"p": 1}, {"q": 2}, {"p": 3}]}').value
    assert isinstance(value, dict)
    assert walk(value, ("lines", "*", "p")) == [(("lines", 0, "p"), 1), (("lines", 2, "p"), 3)]


def test_format_path_reads_like_vipps_field_names() -> None:
    """Paths render as dotted names with array indexes."""
    assert (
        format_path(("receipt", "orderLines", 0, "totalAmount"))
        == "receipt.orderLines[0].totalAmount"
    )
    assert format_path(()) == "(body)"


def test_splice_changes_only_the_target_bytes() -> None:
    """Whitespace, key order, escapes and other values stay byte-identical around a repair."""
    raw = b'{ "k\\"ey": "a\\u00e5",\n "c": {"phone" : "+47 912 34 567" , "n": 1.50},"z":[1,2]}'
    out = splice(raw, [(("c", "phone"), "4791234567"), (("z", 1), 3)])
    assert out == raw.replace(b'"+47 912 34 567"', b'"4791234567"').replace(b"[1,2]", b"[1,3]")


def test_splice_targets_the_last_duplicate_like_the_parser() -> None:
    """With duplicate keys the value the parser kept is the one replaced."""
    assert splice(b'{"a":1,"a":2}', [(("a",), 5)]) == b'{"a":1,"a":5}'


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=8),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
)  # fmt: skip
json_values: st.SearchStrategy[JsonValue] = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values, st.sampled_from([None, 2, "", 4]), st.integers(0, 3))
def test_splice_matches_a_parse_and_set(
    value: JsonValue, indent: int | str | None, pick: int
) -> None:
    """For any document and any leaf, splicing equals parsing, setting that leaf, and comparing."""
    raw = json.dumps(value, indent=indent, default=str).encode()
    parsed = parse_body(raw).value
    leaves = [p for p, _ in _leaves(parsed, ())]
    if not leaves:
        return
    path = leaves[pick % len(leaves)]
    out = splice(raw, [(path, "X")])
    assert encode_value("X") in out.decode()
    expected = parse_body(raw).value
    _set(expected, path, "X")
    assert parse_body(out).value == expected


def _leaves(value: object, at: tuple[str | int, ...]) -> list[tuple[tuple[str | int, ...], object]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, (*at, k))]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, (*at, i))]
    return [(at, value)] if at else []


def _set(doc: object, path: tuple[str | int, ...], new: object) -> None:
    for step in path[:-1]:
        doc = doc[step]  # type: ignore[index]
    doc[path[-1]] = new  # type: ignore[index]
