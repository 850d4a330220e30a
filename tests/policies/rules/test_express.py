"""Tests for the express checkout advice: eCom express payments should use the explicit flow."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.catalogue.operations import OPERATIONS
from policies.core.engine import PolicyEngine, PolicyMode
from policies.core.model import Action, AuditedRequest, Finding, Outcome, Source, audited_request
from policies.rules.express import ExplicitCheckoutFlow

RULE = ExplicitCheckoutFlow()
MISSING = object()

EXPRESS: dict[str, Any] = {
    "customerInfo": {},
    "merchantInfo": {
        "merchantSerialNumber": "123456",
        "callbackPrefix": "https://example.com/vipps/callbacks",
        "fallBack": "https://example.com/vipps/fallback/order-123456",
        "consentRemovalPrefix": "https://example.com/vipps/consents",
        "shippingDetailsPrefix": "https://example.com/vipps/shipping",
        "paymentType": "eComm Express Payment",
    },
    "transaction": {
        "orderId": "order-123456",
        "amount": 49900,
        "transactionText": "One pair of socks",
        "useExplicitCheckoutFlow": True,
    },
}


def initiate(payment_type: Any = MISSING, flag: Any = MISSING) -> AuditedRequest:
    """An eCom initiate request with the payment type and the flag changed (MISSING: left out)."""
    body = copy.deepcopy(EXPRESS)
    for parent, name, value in (
        ("merchantInfo", "paymentType", payment_type),
        ("transaction", "useExplicitCheckoutFlow", flag),
    ):
        if value is MISSING:
            del body[parent][name]
        else:
            body[parent][name] = value
    return audited_request("POST", "/ecomm/v2/payments", [], json.dumps(body).encode())


def test_applies_to_ecom_initiate_only() -> None:
    """Only eCom initiate can start an express payment."""
    assert [op.key for op in OPERATIONS if RULE.applies_to(op)] == ["ecom.initiate_payment"]


@pytest.mark.parametrize(
    ("flag", "problem", "sent"),
    [
        pytest.param(
            MISSING,
            "is not set, so the express payment uses the old checkout flow",
            None,
            id="flag-missing",
        ),
        pytest.param(
            False,
            "is false, so the express payment uses the old checkout flow",
            "false",
            id="flag-false",
        ),
        pytest.param(None, "is a JSON null, not the boolean true", "null", id="flag-null"),
        pytest.param("true", "is a JSON string, not the boolean true", '"true"', id="flag-string"),
    ],
)
def test_express_payment_without_the_explicit_flow_is_advised(
    flag: Any, problem: str, sent: str | None
) -> None:
    """An express payment without `useExplicitCheckoutFlow: true` gets one advisory finding."""
    [finding] = RULE.check(initiate("eComm Express Payment", flag))
    assert finding == Finding(
        "express.explicit_flow",
        Source.BODY,
        "transaction.useExplicitCheckoutFlow",
        problem,
        "true, which Vipps recommends for express checkout (better conversion)",
        sent,
        advisory=True,
        condition="advice",
    )


def test_advice_message() -> None:
    """The message says which field, what is wrong and what Vipps recommends."""
    [finding] = RULE.check(initiate("eComm Express Payment", MISSING))
    assert finding.message == (
        "transaction.useExplicitCheckoutFlow: is not set, so the express payment uses the old "
        "checkout flow; expected true, which Vipps recommends for express checkout "
        "(better conversion)"
    )


@pytest.mark.parametrize(
    ("payment_type", "flag"),
    [
        pytest.param("eComm Express Payment", True, id="express-with-flag"),
        pytest.param("eComm Regular Payment", MISSING, id="regular-payment"),
        pytest.param(MISSING, MISSING, id="default-payment-type"),
        pytest.param("eComm express payment", MISSING, id="not-the-exact-express-spelling"),
        pytest.param(None, False, id="null-payment-type"),
    ],
)
def test_other_payments_get_no_advice(payment_type: Any, flag: Any) -> None:
    """Regular payments, and express payments with the flag true, get no finding."""
    assert list(RULE.check(initiate(payment_type, flag))) == []


@pytest.mark.parametrize(
    ("raw", "advised"),
    [
        pytest.param(b"", [], id="empty"),
        pytest.param(b"[1]", [], id="array"),
        pytest.param(b'{"merchantInfo": "eComm Express Payment"}', [], id="merchant-info-string"),
        pytest.param(
            b'{"merchantInfo": {"paymentType": "eComm Express Payment"}, "transaction": 7}',
            ["transaction.useExplicitCheckoutFlow"],
            id="transaction-not-an-object",
        ),
    ],
)
def test_odd_bodies_never_raise(raw: bytes, advised: list[str]) -> None:
    """Bodies of other shapes are left to the body rules; this rule only reads what is there."""
    req = audited_request("POST", "/ecomm/v2/payments", [], raw)
    found = list(RULE.check(req))
    assert [f.field for f in found] == advised
    assert all(f.advisory for f in found)


@pytest.mark.parametrize("mode", list(PolicyMode))
def test_advice_never_blocks_even_when_set_to_block(mode: PolicyMode) -> None:
    """Advisory findings are reported and the request goes through, whatever the action or mode."""
    engine = PolicyEngine([RULE], mode, {RULE.code: Action.BLOCK})
    verdict = engine.evaluate(initiate("eComm Express Payment", MISSING))
    assert not verdict.blocked
    assert verdict.body is None
    assert [d.outcome for d in verdict.decisions] == (
        [] if mode is PolicyMode.OFF else [Outcome.REPORTED]
    )


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=25),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=25), inner),
    max_leaves=10,
)


@given(
    payment_type=st.sampled_from(["eComm Express Payment", "eComm Regular Payment"]) | _values,
    transaction=_values,
    junk=st.binary(max_size=30),
)
def test_arbitrary_bodies_never_make_the_rule_raise(
    payment_type: Any, transaction: Any, junk: bytes
) -> None:
    """Whatever the merchant info and transaction hold, the rule answers with advice or nothing."""
    body = {"merchantInfo": {"paymentType": payment_type}, "transaction": transaction}
    for raw in (json.dumps(body).encode(), junk):
        req = audited_request("POST", "/ecomm/v2/payments", [], raw)
        assert all(f.advisory and f.rule == RULE.code for f in RULE.check(req))
