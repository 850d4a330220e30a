"""Requests for the hardening suite: one payment the default rules forward and one they block,
built as bytes so that a number is sent exactly as written (`49900.0000001`, `NaN`, `1e999999999`).

The credentials are the project's own samples (`tests.samples`); the secrets tests use them as
canaries. `test_samples.py` checks the two payments against the default rules, so a change in
the rules shows up there, by name, rather than as a puzzling failure in a fault or load test.

The proxy remembers payments (rate limits per reference, idempotency keys bound to a body), so
a test that sends many payments gives each its own reference and key with `fresh()`.
"""

from __future__ import annotations

import itertools

from policies.catalogue.operations import OPERATIONS, Operation
from tests.samples import BEARER

# A Norwegian mobile number, in the forms a log line could carry it.
PHONE = "4798765432"
PHONE_LOCAL = "98765432"

HEADERS: tuple[tuple[str, str], ...] = (
    *BEARER.items(),
    ("Idempotency-Key", "idem-hardening-0001"),
)

CREATE_PAYMENT = "/epayment/v1/payments"
REFERENCE = "order-123456"
GET_PAYMENT = f"/epayment/v1/payments/{REFERENCE}"

_SERIAL = itertools.count(1)


def fresh() -> str:
    """A reference, also good as an idempotency key, that no earlier request of the run used."""
    return f"hardening-{next(_SERIAL):08d}"


def with_key(
    key: str, headers: tuple[tuple[str, str], ...] = HEADERS
) -> tuple[tuple[str, str], ...]:
    """`headers` with Idempotency-Key set to `key`."""
    return tuple((n, key if n == "Idempotency-Key" else v) for n, v in headers)


def payment(value: str = "49900", phone: str = PHONE, reference: str = REFERENCE) -> bytes:
    """An ePayment create_payment body; `value` is written into the JSON exactly as given."""
    return (
        '{"amount":{"currency":"NOK","value":' + value + "},"
        '"paymentMethod":{"type":"WALLET"},'
        '"customer":{"phoneNumber":"' + phone + '"},'
        '"reference":"' + reference + '",'
        '"returnUrl":"https://example.com/return",'
        '"userFlow":"WEB_REDIRECT",'
        '"paymentDescription":"Hardening test"}'
    ).encode()


VALID_PAYMENT = payment()
# The README's headline mistake: a float tail on an amount in minor units.
BLOCKED_PAYMENT = payment("49900.0000001")

_PARAMS = {"paymentType": "ECOM", "agreementId": "agr_5kSeqz", "chargeId": "chr-4assY8f"}


def concrete_path(operation: Operation) -> str:
    """The operation's template with an example value for each parameter."""
    path = operation.template
    for name in operation.params:
        path = path.replace("{" + name + "}", _PARAMS.get(name, REFERENCE))
    return path


# Every catalogued operation that takes a body, as (method, path).
BODY_OPERATIONS: tuple[tuple[str, str], ...] = tuple(
    (op.method, concrete_path(op)) for op in OPERATIONS if op.method in ("POST", "PUT", "PATCH")
)
