"""Tests for the body shape rules: JSON, unique keys, an object, field case, required fields."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.catalogue.operations import OPERATIONS, Operation, find
from policies.catalogue.request_fields import REQUEST_BODIES
from policies.core.engine import PolicyEngine
from policies.core.jsonbody import Path
from policies.core.model import AuditedRequest, Finding, Rule, Source, audited_request
from policies.rules.body_shape import (
    BodyIsJson,
    BodyIsObject,
    FieldNameCase,
    NoDuplicateKeys,
    RequiredFields,
)
from tests.policies.rules.conditions import DELETE
from tests.policies.rules.conditions import changed as edit
from tests.samples import VALID as SAMPLES

Body = dict[str, Any]

RULES: tuple[Rule, ...] = (
    BodyIsJson(),
    NoDuplicateKeys(),
    BodyIsObject(),
    FieldNameCase(),
    RequiredFields(),
)

# Operations with a JSON body whose required fields the tests change; their valid bodies are
# the shared samples.
VALID: dict[str, Body] = {
    key: SAMPLES[key].json
    for key in (
        "ecom.initiate_payment",
        "epayment.create_payment",
        "epayment.capture_payment",
        "recurring.create_charge",
        "recurring.draft_agreement",
        "order_management.set_category",
        "webhooks.register_webhook",
    )
}
ECOM_INITIATE = VALID["ecom.initiate_payment"]
EPAYMENT_CREATE = VALID["epayment.create_payment"]
EPAYMENT_CAPTURE = VALID["epayment.capture_payment"]


def operation(key: str) -> Operation:
    """The catalogue operation `api.name`."""
    api, name = key.split(".", 1)
    return find(api, name)


def path_of(op: Operation) -> str:
    """The operation's path with every parameter filled in."""
    return "/" + "/".join(
        ("ECOM" if s == "{paymentType}" else "order-123456") if s.startswith("{") else s
        for s in op.segments
    )


def request(key: str, body: Body | bytes | Any) -> AuditedRequest:
    """A request to the operation `key`; a non-bytes body is sent as compact JSON."""
    op = operation(key)
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return audited_request(op.method, path_of(op), [("Content-Type", "application/json")], raw)


def changed(body: Body, at: Path, value: Any) -> Body:
    """A deep copy of `body` with the value at `at` replaced (or removed, for DELETE)."""
    edited: Body = edit(body, (at, value))
    return edited


def findings(rule: Rule, req: AuditedRequest) -> list[Finding]:
    """What the rule finds, as the engine would ask: only where it applies."""
    return list(rule.check(req)) if rule.applies_to(req.operation) else []


# --- All rules --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(VALID))
def test_valid_body_has_no_findings(key: str) -> None:
    """A valid body of each operation passes every body shape rule."""
    req = request(key, VALID[key])
    assert [f for rule in RULES for f in findings(rule, req)] == []


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("epayment.get_payment", id="get"),
        pytest.param("access_token.fetch_access_token", id="access-token-post"),
        pytest.param("access_token.fetch_partner_token", id="form-encoded-token"),
        pytest.param("epayment.cancel_payment", id="epayment-cancel-body-optional-or-absent"),
        pytest.param("recurring.cancel_charge", id="delete"),
        pytest.param("recurring.capture_charge_v2", id="v2-capture-without-body"),
    ],
)
def test_operations_without_a_json_body_are_never_checked(key: str) -> None:
    """No body rule applies to an operation that takes no JSON body, whatever it is sent."""
    op = operation(key)
    assert not any(rule.applies_to(op) for rule in RULES)
    req = request(key, b'{"a": 1, "a": 2, "fallback": ')
    assert [f for rule in RULES for f in findings(rule, req)] == []


def test_unknown_operations_are_never_checked() -> None:
    """Requests outside the catalogue are not parsed, so no body rule finds anything."""
    req = audited_request("POST", "/nowhere/v1/things", [], b"{not json")
    assert [f for rule in RULES for f in findings(rule, req)] == []


# --- body.invalid_json ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        pytest.param(
            b'{"amount": 100,}',
            "body is not valid JSON: Expecting property name enclosed in double quotes"
            " at line 1 column 16",
            id="trailing-comma",
        ),
        pytest.param(
            b'{"modificationAmount": {"value": 100',
            "body is not valid JSON: Expecting ',' delimiter at line 1 column 37",
            id="truncated",
        ),
        pytest.param(
            b"{'modificationAmount': 1}",
            "body is not valid JSON: Expecting property name enclosed in double quotes"
            " at line 1 column 2",
            id="single-quotes",
        ),
        pytest.param(b'{"a": "\xff"}', "body is not valid UTF-8 at byte 7", id="latin-1-byte"),
        pytest.param(
            b'\xef\xbb\xbf{"a": 1}',
            "body starts with a UTF-8 byte order mark, which JSON forbids",
            id="byte-order-mark",
        ),
        pytest.param(
            b"modificationAmount=100",
            "body is not valid JSON: Expecting value at line 1 column 1",
            id="form-encoded",
        ),
    ],
)
def test_unparsable_body_is_one_finding_with_the_parser_message(raw: bytes, problem: str) -> None:
    """A body that does not parse is one finding carrying the parser's own message."""
    [finding] = findings(BodyIsJson(), request("epayment.capture_payment", raw))
    assert finding == Finding(
        "body.invalid_json",
        Source.BODY,
        "(body)",
        problem,
        "valid JSON (RFC 8259) encoded as UTF-8",
        condition="invalid_json",
    )


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b" \r\n\t", id="whitespace"),
        pytest.param(b"[1, 2]", id="array-parses"),
        pytest.param(b"NaN", id="nan-parses"),
    ],
)
def test_parsable_or_empty_body_is_not_invalid_json(raw: bytes) -> None:
    """An empty body and any body that parses are not invalid JSON."""
    assert findings(BodyIsJson(), request("epayment.capture_payment", raw)) == []


def test_invalid_json_message_reads_as_one_sentence() -> None:
    """The finding message names the body, the parser's complaint and what is expected."""
    [finding] = findings(BodyIsJson(), request("ecom.initiate_payment", b'{"transaction": }'))
    assert finding.message == (
        "(body): body is not valid JSON: Expecting value at line 1 column 17; "
        "expected valid JSON (RFC 8259) encoded as UTF-8"
    )


# --- body.duplicate_key -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "fields"),
    [
        pytest.param(
            b'{"modificationAmount": {"currency": "NOK", "value": 100, "value": 10000}}',
            ["modificationAmount.value"],
            id="nested-amount",
        ),
        pytest.param(
            b'{"modificationAmount": {"currency": "NOK", "value": 1},'
            b' "modificationAmount": {"currency": "NOK", "value": 1}}',
            ["modificationAmount"],
            id="top-level",
        ),
        pytest.param(
            b'{"a": 1, "a": 2, "a": 3, "b": {"c": [{"d": 1, "d": 2}], "e": 1, "e": 2}}',
            ["a", "b.c[0].d", "b.e"],
            id="one-finding-per-path",
        ),
    ],
)
def test_each_duplicate_key_path_is_one_finding(raw: bytes, fields: list[str]) -> None:
    """Every key named twice in one object is one finding at its path."""
    found = findings(NoDuplicateKeys(), request("epayment.capture_payment", raw))
    assert [f.field for f in found] == fields
    assert all(f.problem == "appears more than once in the same object" for f in found)
    assert all(f.value is None for f in found)


def test_duplicate_key_in_a_free_map_is_a_finding() -> None:
    """Keys of maps such as ePayment metadata are free, but naming one twice is still a finding."""
    raw = (
        json.dumps(EPAYMENT_CREATE)
        .encode()
        .replace(b'"metadata": {', b'"metadata": {"k": "1", "k": "2", ')
    )
    [finding] = findings(NoDuplicateKeys(), request("epayment.create_payment", raw))
    assert finding.message == (
        "metadata.k: appears more than once in the same object; "
        "expected each key once (parsers disagree on which duplicate wins)"
    )


def test_same_key_in_different_objects_is_not_a_duplicate() -> None:
    """A name used once in each of two objects is not a duplicate."""
    raw = b'{"modificationAmount": {"value": 1, "currency": "NOK"}, "value": 1}'
    assert findings(NoDuplicateKeys(), request("epayment.capture_payment", raw)) == []


# --- body.not_object --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        pytest.param(b"[]", "array", id="array"),
        pytest.param(b'"{\\"amount\\": 1}"', "string", id="json-in-a-string"),
        pytest.param(b"49900", "integer", id="integer"),
        pytest.param(b"499.5", "number with a fraction", id="number"),
        pytest.param(b"null", "null", id="null"),
        pytest.param(b"true", "boolean", id="boolean"),
    ],
)
def test_body_that_is_not_an_object_is_a_finding(raw: bytes, kind: str) -> None:
    """A body that parses to anything but an object is one finding naming its JSON kind."""
    [finding] = findings(BodyIsObject(), request("ecom.initiate_payment", raw))
    assert finding == Finding(
        "body.not_object",
        Source.BODY,
        "(body)",
        f"is a JSON {kind}, not an object",
        "a JSON object, {...}, as the operation's request schema describes",
        condition="not_object",
    )


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"{", id="unparsable"),
        pytest.param(b"{}", id="object"),
    ],
)
def test_empty_unparsable_or_object_body_is_not_a_not_object_finding(raw: bytes) -> None:
    """Only a body that parsed to something other than an object is a `body.not_object` finding."""
    assert findings(BodyIsObject(), request("ecom.initiate_payment", raw)) == []


# --- body.field_case --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "at", "wrong", "field", "right"),
    [
        pytest.param(
            "ecom.initiate_payment",
            ("merchantInfo", "fallBack"),
            "fallback",
            "merchantInfo.fallback",
            "fallBack",
            id="ecom-fallback",
        ),
        pytest.param(
            "ecom.initiate_payment",
            ("transaction",),
            "Transaction",
            "Transaction",
            "transaction",
            id="top-level",
        ),
        pytest.param(
            "epayment.create_payment",
            ("receipt", "orderLines", 0, "totalAmount"),
            "TotalAmount",
            "receipt.orderLines[0].TotalAmount",
            "totalAmount",
            id="inside-array-item",
        ),
        pytest.param(
            "epayment.capture_payment",
            ("modificationAmount", "value"),
            "VALUE",
            "modificationAmount.VALUE",
            "value",
            id="epayment-amount-value",
        ),
        pytest.param(
            "recurring.draft_agreement",
            ("campaign", "price"),
            "Price",
            "campaign.Price",
            "price",
            id="oneof-branch-field",
        ),
    ],
)
def test_known_field_in_another_case_is_a_finding(
    key: str, at: Path, wrong: str, field: str, right: str
) -> None:
    """A key that equals a known field of its object only when case is ignored is a finding."""
    body = changed(VALID[key], at, DELETE)
    parent: Any = body
    for step in at[:-1]:
        parent = parent[step]
    parent[wrong] = "sent"
    [finding] = findings(FieldNameCase(), request(key, body))
    assert finding == Finding(
        "body.field_case",
        Source.BODY,
        field,
        f"is not a field of this object; `{right}` is",
        f"`{right}` exactly (field names are case-sensitive)",
        advisory=not key.startswith("ecom."),
        condition="ecom" if key.startswith("ecom.") else "other_api",
    )


def test_ecom_fallback_message() -> None:
    """The message for eCom's `fallback` names the field Vipps knows."""
    body = changed(ECOM_INITIATE, ("merchantInfo", "fallBack"), DELETE)
    body["merchantInfo"]["fallback"] = "https://example.com/vipps/fallback"
    [finding] = findings(FieldNameCase(), request("ecom.initiate_payment", body))
    assert finding.message == (
        "merchantInfo.fallback: is not a field of this object; `fallBack` is; "
        "expected `fallBack` exactly (field names are case-sensitive)"
    )


def test_case_variant_next_to_the_right_field_is_a_finding() -> None:
    """A case variant sent beside the rightly spelled field is a finding: one value is lost."""
    body = changed(EPAYMENT_CAPTURE, ("modificationamount",), {"currency": "NOK", "value": 1})
    [finding] = findings(FieldNameCase(), request("epayment.capture_payment", body))
    assert (finding.field, finding.problem) == (
        "modificationamount",
        "is sent next to `modificationAmount`, which differs only in letter case",
    )


@pytest.mark.parametrize(
    ("key", "at", "value"),
    [
        pytest.param("ecom.initiate_payment", ("merchantInfo", "myOwnField"), 1, id="unknown"),
        pytest.param("ecom.initiate_payment", ("FALLBACK",), "x", id="known-in-another-object"),
        pytest.param("ecom.initiate_payment", ("transaction", "orderid2"), "x", id="near-miss"),
        pytest.param("epayment.create_payment", ("metadata", "AMOUNT"), "x", id="free-map-key"),
        pytest.param("epayment.create_payment", ("extra",), {"Amount": 1}, id="unknown-object"),
    ],
)
def test_unknown_fields_are_never_case_findings(key: str, at: Path, value: Any) -> None:
    """Keys that match no known field of their own object, whatever their case, are left alone."""
    assert findings(FieldNameCase(), request(key, changed(VALID[key], at, value))) == []


# --- body.missing_field -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "at", "value", "problem"),
    [
        pytest.param(
            "epayment.capture_payment",
            ("modificationAmount",),
            DELETE,
            "is required but missing",
            id="epayment-capture-amount",
        ),
        pytest.param(
            "ecom.initiate_payment",
            ("transaction",),
            DELETE,
            "is required but missing",
            id="ecom-transaction",
        ),
        pytest.param(
            "ecom.initiate_payment",
            ("customerInfo",),
            None,
            "is required but null",
            id="explicit-null",
        ),
        pytest.param(
            "ecom.initiate_payment",
            ("merchantInfo", "callbackPrefix"),
            DELETE,
            "is required but missing",
            id="nested",
        ),
        pytest.param(
            "epayment.create_payment",
            ("receipt", "orderLines", 0, "name"),
            DELETE,
            "is required but missing",
            id="in-array-item",
        ),
        pytest.param(
            "recurring.draft_agreement",
            ("campaign", "type"),
            DELETE,
            "is required but missing",
            id="required-in-every-oneof-branch",
        ),
        pytest.param(
            "webhooks.register_webhook",
            ("events",),
            None,
            "is required but null",
            id="webhooks-events",
        ),
    ],
)
def test_missing_or_null_required_field_is_a_finding(
    key: str, at: Path, value: Any, problem: str
) -> None:
    """A required field that is absent, or null where null is not allowed, is one finding."""
    [finding] = findings(RequiredFields(), request(key, changed(VALID[key], at, value)))
    field = ".".join(str(s) for s in at).replace(".0.", "[0].")
    assert (finding.field, finding.problem) == (field, problem)
    assert finding.value == ("null" if value is None else None)


@pytest.mark.parametrize(
    ("key", "at", "value"),
    [
        pytest.param("epayment.create_payment", ("receipt",), DELETE, id="absent-parent-object"),
        pytest.param("epayment.create_payment", ("receipt",), None, id="null-optional-parent"),
        pytest.param(
            "epayment.create_payment",
            ("receipt", "orderLines", 0, "unitInfo", "unitPrice"),
            None,
            id="nullable-required-field",
        ),
        pytest.param(
            "epayment.create_payment",
            ("receipt", "bottomLine", "currency"),
            None,
            id="nullable-in-one-spec-version",
        ),
        pytest.param("order_management.set_category", ("category",), None, id="nullable-category"),
        pytest.param("epayment.create_payment", ("returnUrl",), None, id="optional-field-null"),
        pytest.param("epayment.create_payment", ("paymentMethod", "type"), DELETE, id="default"),
        pytest.param("epayment.create_payment", ("customer",), {}, id="oneof-nothing-common"),
        pytest.param("recurring.create_charge", ("due",), DELETE, id="unscheduled-charge-no-due"),
        pytest.param(
            "recurring.create_charge", ("retryDays",), DELETE, id="unscheduled-no-retry-days"
        ),
        pytest.param("recurring.draft_agreement", ("campaign", "end"), DELETE, id="branch-only"),
        pytest.param("ecom.initiate_payment", ("customerInfo",), {}, id="empty-customer-info"),
    ],
)
def test_fields_that_are_not_required_are_not_findings(key: str, at: Path, value: Any) -> None:
    """Fields of absent objects, and nullable, defaulted or branch-only fields, may be left out."""
    assert findings(RequiredFields(), request(key, changed(VALID[key], at, value))) == []


def test_required_field_sent_in_another_case_says_so() -> None:
    """A required field sent only in another letter case is missing, and the message says so."""
    body = changed(ECOM_INITIATE, ("merchantInfo", "fallBack"), DELETE)
    body["merchantInfo"]["fallback"] = "https://example.com/vipps/fallback"
    [finding] = findings(RequiredFields(), request("ecom.initiate_payment", body))
    assert finding.message == (
        "merchantInfo.fallBack: is required but missing (sent as `fallback`); "
        'expected a value; Vipps answers "Missing required parameter" without it'
    )


def test_empty_body_where_the_spec_requires_one_misses_every_top_level_field() -> None:
    """An empty body where the spec requires one lacks each required top-level field."""
    found = findings(RequiredFields(), request("ecom.initiate_payment", b""))
    assert [f.field for f in found] == ["customerInfo", "merchantInfo", "transaction"]


@pytest.mark.parametrize(
    ("key", "body"),
    [
        pytest.param("epayment.capture_payment", b"", id="body-optional-in-spec"),
        pytest.param("ecom.initiate_payment", b"{", id="unparsable"),
        pytest.param("ecom.initiate_payment", b"[]", id="not-an-object"),
        pytest.param(
            "ecom.initiate_payment",
            changed(ECOM_INITIATE, ("transaction",), []),
            id="nested-not-an-object",
        ),
    ],
)
def test_bodies_other_rules_judge_are_not_missing_field_findings(key: str, body: Any) -> None:
    """Bodies that are optional, unparsable or of the wrong kind are left to the other rules."""
    assert findings(RequiredFields(), request(key, body)) == []


# --- Engine and properties --------------------------------------------------------------------


def test_a_finding_blocks_by_default() -> None:
    """With default actions, a body shape finding blocks the request."""
    verdict = PolicyEngine(RULES).evaluate(request("epayment.capture_payment", b"{}"))
    assert verdict.blocked
    assert verdict.rule_codes == ("body.missing_field",)


_JSON_BODY_OPERATIONS = [op for op in OPERATIONS if op.key in REQUEST_BODIES]
_FIELD_NAMES = sorted(
    {n for body in REQUEST_BODIES.values() for f in body.objects.values() for n in f.known}
)
_keys = st.one_of(
    st.sampled_from(_FIELD_NAMES),
    st.sampled_from(_FIELD_NAMES).map(str.swapcase),
    st.text(max_size=6),
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=15,
)


@st.composite
def _raw_bodies(draw: st.DrawFn) -> bytes:
    """JSON, JSON with duplicate keys, truncated JSON, or any bytes at all."""
    value = draw(_json)
    text = json.dumps(value)
    kind = draw(st.sampled_from(["json", "duplicates", "truncated", "bytes"]))
    if kind == "duplicates":
        pairs = draw(st.lists(st.tuples(_keys, _json), min_size=2, max_size=5))
        members = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in pairs + pairs[:1]]
        text = "{" + ", ".join(members) + "}"
    elif kind == "truncated":
        text = text[: draw(st.integers(0, len(text)))]
    elif kind == "bytes":
        return draw(st.binary(max_size=40))
    return text.encode()


def _run_all(req: AuditedRequest) -> Iterator[Finding]:
    """Every finding of every body rule that applies."""
    for rule in RULES:
        if rule.applies_to(req.operation):
            yield from rule.check(req)


@settings(max_examples=300, deadline=None)
@given(op=st.sampled_from(_JSON_BODY_OPERATIONS), raw=_raw_bodies())
def test_arbitrary_bodies_never_make_a_rule_raise(op: Operation, raw: bytes) -> None:
    """Any JSON-ish byte string yields findings of the right rule, never an exception."""
    req = audited_request(op.method, path_of(op), [], raw)
    codes = {r.code for r in RULES}
    for finding in _run_all(req):
        assert finding.rule in codes
        assert finding.source is Source.BODY
        assert finding.message
