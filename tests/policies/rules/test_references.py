"""Reference rules: payment ids have their API's format, and body and path agree."""

from __future__ import annotations

import json
import string
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.catalogue.id_fields import BODY_IDS, ECHOED_IDS, PATH_IDS
from policies.catalogue.operations import OPERATIONS, find
from policies.core.engine import PolicyEngine
from policies.core.model import AuditedRequest, Finding, Outcome, Source, audited_request
from policies.rules.references import ReferenceFormat, ReferenceMismatch

REFERENCE = "acme-shop-123-order123abc"

# One valid body per operation whose body carries a payment id.
BODIES: dict[str, dict[str, Any]] = {
    "epayment.create_payment": {
        "amount": {"currency": "NOK", "value": 49900},
        "paymentMethod": {"type": "WALLET"},
        "reference": REFERENCE,
        "userFlow": "WEB_REDIRECT",
        "returnUrl": "https://example.com/return",
    },
    "checkout.create_session": {
        "merchantInfo": {
            "callbackUrl": "https://example.com/cb",
            "returnUrl": "https://example.com/return",
            "callbackAuthorizationToken": "token",
        },
        "transaction": {
            "amount": {"currency": "NOK", "value": 49900},
            "reference": REFERENCE,
            "paymentDescription": "Socks",
        },
    },
    "checkout.create_session_v2": {
        "transaction": {"amount": {"currency": "NOK", "value": 100}, "reference": REFERENCE},
    },
    "ecom.initiate_payment": {
        "customerInfo": {},
        "merchantInfo": {
            "merchantSerialNumber": "123456",
            "callbackPrefix": "https://example.com/cb",
            "fallBack": "https://example.com/fallback",
        },
        "transaction": {"amount": 49900, "orderId": REFERENCE, "transactionText": "Socks"},
    },
    "recurring.create_charge": {
        "amount": 49900,
        "description": "March",
        "due": "2030-03-01",
        "retryDays": 5,
        "transactionType": "DIRECT_CAPTURE",
        "orderId": REFERENCE,
    },
    "recurring.create_charge_v2": {"amount": 49900, "description": "March", "orderId": REFERENCE},
    "order_management.create_category": {
        "orderId": REFERENCE,
        "paymentType": "ECOM",
        "type": "GENERAL",
        "url": "https://example.com/order",
    },
}

PATH_VALUES = {
    "reference": REFERENCE,
    "orderId": REFERENCE,
    "agreementId": "agr_5kSeqz",
    "chargeId": "chr-4assY8f",
    "paymentType": "ECOM",
}


def path_of(key: str, **override: str) -> str:
    operation = find(*key.split("."))
    path = operation.template
    for name in operation.params:
        path = path.replace("{" + name + "}", quote(override.get(name, PATH_VALUES[name]), safe=""))
    return path


def build(key: str, body: Any = None, **params: str) -> AuditedRequest:
    """A request for `api.name` with `body` (serialised as JSON) and path parameters overridden."""
    operation = find(*key.split("."))
    raw = json.dumps(body).encode() if body is not None else b""
    return audited_request(operation.method, path_of(key, **params), [], raw)


def with_field(key: str, dotted: str, value: Any) -> dict[str, Any]:
    """The valid body of `key` with one field set."""
    body: dict[str, Any] = json.loads(json.dumps(BODIES[key]))
    *parents, last = dotted.split(".")
    node = body
    for step in parents:
        node = node.setdefault(step, {})
    node[last] = value
    return body


def check(rule: ReferenceFormat | ReferenceMismatch, req: AuditedRequest) -> list[Finding]:
    return list(rule.check(req)) if rule.applies_to(req.operation) else []


FORMAT = ReferenceFormat()
MISMATCH = ReferenceMismatch()


@pytest.mark.parametrize("key", [pytest.param(k, id=k) for k in sorted(BODIES)])
def test_valid_body_passes(key: str) -> None:
    """The valid body of each operation that carries a payment id gives no finding."""
    assert check(FORMAT, build(key, BODIES[key])) == []


@pytest.mark.parametrize("key", [pytest.param(k, id=k) for k in sorted(PATH_IDS)])
def test_valid_path_passes(key: str) -> None:
    """Every operation that names the payment in its path accepts a valid id."""
    assert check(FORMAT, build(key)) == []


BODY_CASES = [
    # (operation, field, value, flagged)
    ("epayment.create_payment", "reference", "a" * 8, False),
    ("epayment.create_payment", "reference", "a" * 64, False),
    ("epayment.create_payment", "reference", "a" * 7, True),
    ("epayment.create_payment", "reference", "a" * 65, True),
    ("epayment.create_payment", "reference", "order_12345", True),
    ("epayment.create_payment", "reference", "order 12345", True),
    ("epayment.create_payment", "reference", "ordre-æøå-123", True),
    ("epayment.create_payment", "reference", "", True),
    ("checkout.create_session", "transaction.reference", "a" * 50, False),
    ("checkout.create_session", "transaction.reference", "a" * 51, True),
    ("checkout.create_session", "transaction.reference", "a" * 7, True),
    ("checkout.create_session", "transaction.reference", "order.12345", True),
    ("checkout.create_session_v2", "transaction.reference", "a" * 51, True),
    ("ecom.initiate_payment", "transaction.orderId", "1", False),
    ("ecom.initiate_payment", "transaction.orderId", "a" * 50, False),
    ("ecom.initiate_payment", "transaction.orderId", "a" * 51, True),
    ("ecom.initiate_payment", "transaction.orderId", "order#1", True),
    ("recurring.create_charge", "orderId", "a" * 50, False),
    ("recurring.create_charge", "orderId", "a" * 51, True),
    ("recurring.create_charge", "orderId", "abc_def", False),
    ("recurring.create_charge", "orderId", "_abcdef", True),
    ("recurring.create_charge", "orderId", "", True),
    ("recurring.create_charge_v2", "orderId", "a" * 80, False),
    ("recurring.create_charge_v2", "orderId", "/abc", True),
    ("order_management.create_category", "orderId", "order_1.2-3", False),
    ("order_management.create_category", "orderId", "order/1", True),
]


@pytest.mark.parametrize(
    ("key", "field", "value", "flagged"),
    [
        pytest.param(k, f, v, b, id=f"{k}-{f}-{'bad' if b else 'ok'}-{len(v)}-{v[:8]}")
        for k, f, v, b in BODY_CASES
    ],
)
def test_body_reference_format(key: str, field: str, value: str, flagged: bool) -> None:
    """A body id outside its API's pattern or length is flagged; one inside passes."""
    got = check(FORMAT, build(key, with_field(key, field, value)))
    assert [(f.source, f.field) for f in got] == ([(Source.BODY, field)] if flagged else [])


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="null"),
        pytest.param(12345678, id="number"),
        pytest.param(["abc"], id="array"),
    ],
)
def test_non_string_ids_are_left_to_shape_rules(value: object) -> None:
    """A null or non-string id is not this rule's business (and an optional null never blocks)."""
    assert (
        check(
            FORMAT,
            build(
                "recurring.create_charge", with_field("recurring.create_charge", "orderId", value)
            ),
        )
        == []
    )
    assert (
        check(
            FORMAT,
            build(
                "epayment.create_payment", with_field("epayment.create_payment", "reference", value)
            ),
        )
        == []
    )


def test_absent_optional_order_id_passes() -> None:
    """Recurring's orderId is optional: a charge without one passes."""
    body = {k: v for k, v in BODIES["recurring.create_charge"].items() if k != "orderId"}
    assert check(FORMAT, build("recurring.create_charge", body)) == []


PATH_CASES = [
    ("epayment.get_payment", "reference", "order_12345", True),
    ("epayment.capture_payment", "reference", "short", True),
    ("epayment.refund_payment", "reference", "a/b-123456", True),
    ("epayment.force_approve", "reference", "a" * 64, False),
    ("ecom.capture_payment", "orderId", "1", False),
    ("ecom.cancel_payment", "orderId", "order 1", True),
    ("ecom.get_payment_details", "orderId", "a" * 51, True),
    ("checkout.get_session", "reference", "a" * 51, True),
    ("checkout.get_session", "reference", "a" * 8, False),
    ("order_management.add_receipt", "orderId", "chr_1.2", False),
    ("order_management.get_order", "orderId", "order 1", True),
]


@pytest.mark.parametrize(
    ("key", "param", "value", "flagged"),
    [
        pytest.param(k, p, v, b, id=f"{k}-{'bad' if b else 'ok'}-{v[:10]}")
        for k, p, v, b in PATH_CASES
    ],
)
def test_path_reference_format(key: str, param: str, value: str, flagged: bool) -> None:
    """A path id (percent-decoded) outside its API's format is flagged."""
    got = check(FORMAT, build(key, **{param: value}))
    assert [(f.source, f.field) for f in got] == ([(Source.PATH, param)] if flagged else [])


def test_path_case_still_identifies_and_checks() -> None:
    """`/Epayment/v1/Payments/{bad}` is still ePayment get payment, and its reference is checked."""
    req = audited_request("GET", "/Epayment/V1/Payments/bad_reference_1", [])
    assert req.operation.key == "epayment.get_payment"
    (got,) = check(FORMAT, req)
    assert got.problem == "contains '_'"
    assert got.value == "'bad_reference_1'"


def test_finding_explains_length_and_pattern() -> None:
    """The finding says how long the id is and what its API accepts."""
    (got,) = check(
        FORMAT,
        build("epayment.create_payment", with_field("epayment.create_payment", "reference", "abc")),
    )
    assert got.message == (
        "reference: is 3 characters long (sent 'abc'); "
        "expected 8-64 characters matching ^[a-zA-Z0-9-]{8,64}$ (ePayment reference)"
    )


def test_long_values_are_truncated() -> None:
    """A long id is shown truncated to about 60 characters."""
    (got,) = check(
        FORMAT,
        build(
            "epayment.create_payment", with_field("epayment.create_payment", "reference", "x" * 500)
        ),
    )
    assert got.value is not None
    assert len(got.value) <= 62


ALLOWED = string.ascii_letters + string.digits + "-"


@given(st.text(alphabet=ALLOWED, min_size=8, max_size=64))
def test_any_epayment_reference_in_the_pattern_passes(reference: str) -> None:
    """Every string matching ^[a-zA-Z0-9-]{8,64}$ passes, in the body and in the path."""
    body = with_field("epayment.create_payment", "reference", reference)
    assert check(FORMAT, build("epayment.create_payment", body)) == []
    assert check(FORMAT, build("epayment.capture_payment", reference=reference)) == []


@given(st.text(min_size=0, max_size=80).filter(lambda s: any(ch not in ALLOWED for ch in s)))
def test_any_reference_with_a_foreign_character_is_flagged(reference: str) -> None:
    """Every string with a character outside a-z, A-Z, 0-9 and - is flagged."""
    body = with_field("epayment.create_payment", "reference", reference)
    assert len(check(FORMAT, build("epayment.create_payment", body))) == 1


# --- Mismatch ---------------------------------------------------------------------------------


def test_no_catalogued_operation_declares_the_id_twice() -> None:
    """The mismatch rule covers only operations whose path names the payment, never a create."""
    assert not set(ECHOED_IDS) & set(BODY_IDS)
    covered = [op for op in OPERATIONS if MISMATCH.applies_to(op)]
    assert covered
    for op in covered:
        assert any(segment.startswith("{") for segment in op.segments), op.key
        assert op.key not in BODY_IDS, op.key


MISMATCH_CASES = [
    (
        "epayment.capture_payment",
        {"reference": "other-order-1", "modificationAmount": {}},
        "reference",
    ),
    ("epayment.cancel_payment", {"reference": "other-order-1"}, "reference"),
    (
        "ecom.capture_payment",
        {"transaction": {"orderId": "other", "transactionText": "x"}},
        "transaction.orderId",
    ),
    ("ecom.refund_payment", {"orderId": "other"}, "orderId"),
    (
        "recurring.capture_charge",
        {"amount": 100, "description": "x", "chargeId": "chr-other"},
        "chargeId",
    ),
    ("order_management.add_receipt", {"orderId": "other"}, "orderId"),
]


@pytest.mark.parametrize(
    ("key", "body", "field"), [pytest.param(k, b, f, id=k) for k, b, f in MISMATCH_CASES]
)
def test_body_naming_another_payment_is_reported(
    key: str, body: dict[str, Any], field: str
) -> None:
    """An id echoed in a modification body that differs from the path's gives advice."""
    (got,) = check(MISMATCH, build(key, body))
    assert got.field == field
    assert got.advisory
    assert got.source is Source.BODY


@pytest.mark.parametrize(
    ("key", "body"),
    [
        pytest.param("epayment.capture_payment", {"reference": REFERENCE}, id="same-reference"),
        pytest.param(
            "ecom.capture_payment", {"transaction": {"orderId": REFERENCE}}, id="same-order"
        ),
        pytest.param("recurring.refund_charge", {"chargeId": "chr-4assY8f"}, id="same-charge"),
        pytest.param("epayment.capture_payment", {"modificationAmount": {}}, id="no-echo"),
        pytest.param("epayment.cancel_payment", None, id="no-body"),
        pytest.param("ecom.capture_payment", {"orderId": None}, id="null-echo"),
    ],
)
def test_agreeing_or_absent_ids_pass(key: str, body: dict[str, Any] | None) -> None:
    """An echoed id equal to the path's, or none at all, gives no finding."""
    assert check(MISMATCH, build(key, body)) == []


def test_mismatch_compares_case_sensitively() -> None:
    """References are case-sensitive, so `ABC` in the body is another payment than `abc`."""
    (got,) = check(MISMATCH, build("epayment.refund_payment", {"reference": REFERENCE.upper()}))
    assert got.value == repr(REFERENCE.upper())


def test_mismatch_advice_never_blocks() -> None:
    """Vipps acts on the path's payment and accepts the request, so the engine only reports it."""
    engine = PolicyEngine((FORMAT, MISMATCH))
    verdict = engine.evaluate(build("epayment.capture_payment", {"reference": "other-order-1"}))
    assert not verdict.blocked
    assert [d.outcome for d in verdict.decisions] == [Outcome.REPORTED]


def test_format_finding_blocks_in_the_engine() -> None:
    """A malformed reference blocks the request by default."""
    engine = PolicyEngine((FORMAT, MISMATCH))
    assert engine.evaluate(build("epayment.get_payment", reference="bad_ref_1")).blocked


def test_rules_find_nothing_outside_their_operations() -> None:
    """Called on an operation they do not cover, both rules stay silent."""
    other = build("recurring.list_agreements")
    assert list(FORMAT.check(other)) == []
    assert list(MISMATCH.check(other)) == []
