"""The fast path calls a body clean only when the detailed body rules find nothing in it.

Differential: bodies are generated per operation (valid ones from `tests/samples.py` and the
specs' own examples, then with every kind of fault the rules know) and each goes through two
engines holding every default rule, one with the compiled validators and one without. Whenever
the validator proves a body clean, the rules it lets the engine skip must find nothing in it,
and both engines must reach the same verdict, finding for finding, for every body.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from policies.catalogue.operations import find, identify
from policies.catalogue.request_fields import REQUEST_BODIES
from policies.core.engine import PolicyEngine
from policies.core.model import AuditedRequest, Finding, audited_request
from policies.rules.fast_path import COVERED_RULES, BodyValidators, body_facts, compile_validator
from policies.rules.listing import RuleOptions, default_rules
from tests import samples
from tests.fidelity.corpus import load_rows
from tests.policies.rules.spec_examples import (
    SpecExample,
    catalogued,
    example_headers,
    request_examples,
)

SPECS = Path(__file__).parents[3].parent / "shared" / "vipps-openapi"
EXAMPLES: list[SpecExample] = catalogued(request_examples(SPECS)) if SPECS.is_dir() else []
BOUNDS = "NOK=1000..10000000,DKK=1000..10000000,EUR=100..1000000"
RULES = default_rules(RuleOptions(amount_bounds=BOUNDS))
FAST = PolicyEngine(RULES)
SLOW = PolicyEngine(RULES, fast_path=False)
VALIDATORS = BodyValidators(RULES)

Headers = list[tuple[str, str]]


def _seed(method: str, path: str, headers: Headers, body: Any) -> tuple[str, str, Headers, Any]:
    return method, path, headers, body


# Every valid body we have, per operation that takes a JSON object: samples, then spec examples.
SEEDS: list[tuple[str, str, Headers, Any]] = [
    _seed(s.method, s.path, list(s.headers.items()), s.json)
    for s in samples.VALID.values()
    if s.json is not None
] + [
    _seed(e.method, e.path, example_headers(e), e.value)
    for e in EXAMPLES
    if isinstance(e.value, dict) and e.operation.key in REQUEST_BODIES
]


# --- Writing JSON with the faults a serializer would not produce -----------------------------


class Raw:
    """A JSON text to write as it is (`NaN`, `1E+999`, `49900.0`)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text!r})"


class Dup(dict[str, Any]):
    """An object that writes `extra` first, then its own members: a duplicate key."""

    def __init__(self, items: dict[str, Any], extra: tuple[str, Any]) -> None:
        super().__init__(items)
        self.extra = extra


def dump(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        pairs = list(value.items())
        if isinstance(value, Dup):
            pairs.insert(0, value.extra)
        return "{" + ",".join(f"{json.dumps(k)}:{dump(v)}" for k, v in pairs) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


# --- Faults ------------------------------------------------------------------------------------

AMOUNTS = st.sampled_from(
    [
        Raw("49900.0"),
        Raw("49900.0000001"),
        Raw("4.99E+4"),
        Raw("1E+999"),
        Raw("NaN"),
        Raw("-Infinity"),
        "49900",
        True,
        False,
        2**63,
        2**70,
        -1,
        0,
        1,
        99,
        100,
        999,
        1000,
        65_000_001,
        2_000_001,
        2**31,
        1_000_001,
        10_000_001,
        None,
        [49900],
        {"value": 49900},
    ]
)
CURRENCIES = st.sampled_from(
    ["NOK", "DKK", "EUR", "SEK", "USD", "GBP", "nok", "NOKK", "XXX", "", 578, None]
)
PHONES = st.sampled_from(
    [
        "4791234567",
        "91234567",
        "+47 912 34 567",
        "+4791234567",
        "004791234567",
        "0047 91234567",
        "4712345678",
        "4540123456",
        "+4540123456",
        "40123456",
        "12345678",
        "4791234567 ",
        "47 91 23 45 67",
        4791234567,
        91234567,
        "",
        "abc",
        "٤٧٩١٢٣٤٥٦٧",
        "358401234567",
        "46701234567",
        None,
    ]
)
REFERENCES = st.sampled_from(
    ["order-123456", "order_42", "short", "x" * 8, "x" * 50, "x" * 51, "x" * 64, "x" * 65, "",
     "ordér-123456", "order 123456", "-", "a", "a.b_c", "_abc", 123456, None]
)  # fmt: skip
URLS = st.sampled_from(
    [
        "https://shop.example.com/return",
        "http://shop.example.com/return",
        "https://localhost/cb",
        "https://app.localhost/cb",
        "https://localhost.localdomain/cb",
        "https://LOCALHOST:8443/cb",
        "https://127.0.0.1/cb",
        "http://127.0.0.1:8080/cb",
        "https://[::1]/cb",
        "myapp://done",
        "ftp://files.example.com/x",
        "https://a.example.com:99999/",
        "https://a.example.com:443/x?y=1#z",
        " https://shop.example.com/return",
        "HTTPS://SHOP.EXAMPLE.COM/",
        "https://",
        "https:/shop.example.com",
        "shop.example.com:8443/cb",
        "https://user@localhost/cb",
        "https://shop.example.com\\@localhost/",
        "https://sh_op.example.com/",
        "https://shop.example.com./",
        "",
        "   ",
        42,
        None,
    ]
)
ANY = st.one_of(
    AMOUNTS,
    CURRENCIES,
    PHONES,
    REFERENCES,
    URLS,
    st.sampled_from(["eComm Express Payment", "eComm Regular Payment", [[1]], [], {}, "x"]),
)


def _locations(value: Any, at: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Every path in a JSON value (the root included)."""
    yield at
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _locations(child, (*at, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _locations(child, (*at, i))


def _concrete(pattern: tuple[str | int, ...], value: Any) -> tuple[str | int, ...]:
    """`pattern` with each `*` as index 0 (the item may not exist: then it is added)."""
    return tuple(0 if step == "*" else step for step in pattern)


def _set(body: Any, path: tuple[str | int, ...], new: Any) -> Any:
    """A copy of `body` with `new` at `path`, creating objects and arrays on the way."""
    if not path:
        return new
    step, rest = path[0], path[1:]
    if isinstance(step, int):
        items = list(body) if isinstance(body, list) else []
        while len(items) <= step:
            items.append({})
        items[step] = _set(items[step], rest, new)
        return items
    node = dict(body) if isinstance(body, dict) else {}
    node[step] = _set(node.get(step), rest, new)
    return node


def _get(body: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        in_list = isinstance(step, int) and isinstance(body, list) and step < len(body)
        if not (in_list or (isinstance(body, dict) and step in body)):
            return None
        body = body[step]
    return body


def _targets(key: str) -> list[tuple[tuple[str | int, ...], st.SearchStrategy[Any]]]:
    """The constrained fields of an operation with the faults that fit them."""
    facts = body_facts(find(*key.split(".")))
    if facts is None:
        return []
    found: list[tuple[tuple[str | int, ...], st.SearchStrategy[Any]]] = []
    for money in facts.money:
        found.append((money.pattern, AMOUNTS))
        if money.currency is not None:
            found.append((money.currency, CURRENCIES))
    found += [(phone.path, PHONES) for phone in facts.phones]
    found += [(pattern, REFERENCES) for pattern, _ in facts.ids]
    found += [(pattern, REFERENCES) for pattern in facts.echoed]
    found += [(pattern, URLS) for pattern in facts.urls]
    if facts.express:
        express = st.sampled_from(["eComm Express Payment", "eComm Regular Payment", None, 1])
        found += [(("merchantInfo", "paymentType"), express)]
        found += [(("transaction", "useExplicitCheckoutFlow"), st.sampled_from([True, False]))]
        found += [(("merchantInfo", "isApp"), st.sampled_from([True, False, "true"]))]
    found += [(("paymentMethod", "type"), st.sampled_from(["WALLET", "CARD_PASSTHROUGH"]))]
    return found


@st.composite
def mutated(draw: st.DrawFn, body: Any, key: str) -> Any:
    """`body` with one to four faults, each at a constrained field or anywhere in it."""
    targets = _targets(key)
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3, 4]))):
        kind = draw(st.sampled_from(
            ["field", "field", "field", "anywhere", "delete", "case", "unknown", "duplicate",
             "nest"]
        ))  # fmt: skip
        places = [p for p in _locations(body) if p]
        if kind == "field" and targets:
            pattern, faults = draw(st.sampled_from(targets))
            body = _set(body, _concrete(pattern, body), draw(faults))
        elif kind == "anywhere" and places:
            body = _set(body, draw(st.sampled_from(places)), draw(ANY))
        elif kind == "delete" and places:
            path = draw(st.sampled_from(places))
            parent = _get(body, path[:-1])
            if isinstance(parent, dict):
                body = _set(body, path[:-1], {k: v for k, v in parent.items() if k != path[-1]})
        elif kind in ("case", "unknown", "duplicate"):
            objects = [p for p in _locations(body) if isinstance(_get(body, p), dict)]
            if not objects:
                continue
            at = draw(st.sampled_from(objects))
            node: dict[str, Any] = dict(_get(body, at))
            if kind == "unknown":
                node[draw(st.sampled_from(["extra", "note", "Amount", "REFERENCE"]))] = draw(ANY)
            elif node:
                name = draw(st.sampled_from(sorted(node)))
                if kind == "case":
                    spelling = draw(st.sampled_from([name.lower(), name.upper(), name.swapcase()]))
                    keep = draw(st.booleans())
                    node = {(spelling if k == name and not keep else k): v for k, v in node.items()}
                    if keep:
                        node[spelling] = node[name]
                else:
                    node = Dup(node, (name, draw(ANY)))
            body = _set(body, at, node) if at else node
        elif kind == "nest" and places:
            path = draw(st.sampled_from(places))
            body = _set(body, path, [[_get(body, path)]])
    return body


RAW_FAULTS = st.sampled_from(
    [
        lambda text: text,
        lambda text: "\ufeff" + text,
        lambda text: text + " x",
        lambda text: text[:-1],
        lambda text: "",
        lambda text: "   ",
        lambda text: "[" + text + "]",
        lambda text: text.replace('"', '"\\ud800', 1) if text.count('"') > 2 else text,
    ]
)


def _request(method: str, path: str, headers: Headers, raw: bytes) -> AuditedRequest:
    return audited_request(method, path, headers, raw)


def assert_equivalent(request: AuditedRequest) -> bool:
    """The fast path proves the body clean only when the skipped rules find nothing; the two
    engines reach the same verdict. Returns whether the body was proven clean."""
    proven = VALIDATORS.proves_clean(request)
    if proven:
        skipped = [
            rule
            for rule in SLOW.rules_for(request.operation)
            if rule.code in VALIDATORS.covered(request.operation)
        ]
        found = [f for rule in skipped for f in rule.check(request)]
        assert found == [], f"proven clean, but {[f.message for f in found]}"
    assert FAST.evaluate(request) == SLOW.evaluate(request)
    return proven


@st.composite
def faulty_requests(draw: st.DrawFn) -> AuditedRequest:
    method, path, headers, body = draw(st.sampled_from(SEEDS))
    key = identify(method, path).operation.key
    body = draw(mutated(body, key))
    text = draw(RAW_FAULTS)(dump(body)) if draw(st.integers(0, 9)) == 0 else dump(body)
    return _request(method, path, headers, text.encode("utf-8", "surrogatepass"))


DIFFERENTIAL_EXAMPLES = 3000


@settings(
    max_examples=DIFFERENTIAL_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(faulty_requests())
def test_fast_path_calls_a_body_clean_only_when_the_rules_find_nothing(
    request: AuditedRequest,
) -> None:
    """A faulty body is proven clean only when every skipped rule finds nothing in it."""
    proven = assert_equivalent(request)
    findings = bool(SLOW.evaluate(request).decisions)
    event(f"proven={proven} findings={findings}")


def test_every_sample_body_is_proven_clean() -> None:
    """Each valid sample with a JSON body is proven clean, so common requests skip the rules."""
    bodies = [s for s in samples.VALID.values() if s.json is not None]
    assert len(bodies) >= 7
    for sample in bodies:
        request = _request(sample.method, sample.path, list(sample.headers.items()), sample.body)
        assert assert_equivalent(request), sample.path


@pytest.mark.skipif(not EXAMPLES, reason="the spec folder is absent")
def test_spec_examples_agree_with_the_rules() -> None:
    """Over every spec example, the fast path agrees with the rules, and proves most clean."""
    proven = 0
    for example in EXAMPLES:
        raw = dump(example.value).encode("utf-8", "surrogatepass")
        request = _request(example.method, example.path, example_headers(example), raw)
        proven += assert_equivalent(request)
    # Spec examples use http URLs, IP hosts and fields the rules flag; most are still proven.
    assert proven >= len(EXAMPLES) // 3, (proven, len(EXAMPLES))


def test_real_integrations_agree_with_the_rules() -> None:
    """Over every request of the fidelity corpus (real integrations' exact bytes), the fast path
    agrees with the rules, and proves the ones the rules pass without a finding clean."""
    proven = clean = 0
    for row in load_rows():
        path, _, query = row.target.partition("?")
        request = audited_request(row.method, path, row.headers, row.body, query)
        if request.json.present:
            proven += assert_equivalent(request)
            clean += not SLOW.evaluate(request).decisions
    assert proven >= clean * 3 // 4, (proven, clean)


@pytest.mark.parametrize(
    ("key", "body"),
    [
        pytest.param("epayment.capture_payment", b'{"modificationAmount":{"currency":"NOK",'
                     b'"value":1,"value":2}}', id="duplicate-key-last-valid"),
        pytest.param("epayment.capture_payment", b'{"modificationAmount":{"currency":"NOK",'
                     b'"value":2000.0}}', id="integral-float"),
        pytest.param("epayment.capture_payment", b'{"modificationAmount":{"currency":"NOK",'
                     b'"Value":2000,"value":2000}}', id="case-variant-next-to-field"),
        pytest.param("epayment.capture_payment", b'{"modificationAmount":{"currency":"NOK",'
                     b'"value":2000},"reference":"order-654321"}', id="echoed-id"),
        pytest.param("epayment.create_payment", dump(_set(samples.EPAYMENT_CREATE.json,
                     ("amount", "currency"), "SEK")).encode(), id="card-passthrough-currency"),
        pytest.param("ecom.initiate_payment", dump(_set(samples.ECOM_INITIATE.json,
                     ("customerInfo", "mobileNumber"), "+47 912 34 567")).encode(),
                     id="phone-notation"),
        pytest.param("ecom.initiate_payment", dump(_set(samples.ECOM_INITIATE.json,
                     ("merchantInfo", "paymentType"), "eComm Express Payment")).encode(),
                     id="express-without-flag"),
        pytest.param("checkout.create_session", dump(_set(samples.CHECKOUT_SESSION.json,
                     ("merchantInfo", "callbackUrl"), "https://app.localhost/cb")).encode(),
                     id="localhost-callback"),
    ],
)  # fmt: skip
def test_known_faults_are_not_proven(key: str, body: bytes) -> None:
    """Bodies a rule flags, or may flag, are never proven clean and get the rules' findings."""
    sample = next(s for k, s in samples.VALID.items() if k == key)
    request = _request(sample.method, sample.path, list(sample.headers.items()), body)
    assert not assert_equivalent(request)
    assert SLOW.evaluate(request).decisions


def test_covered_rules_are_skipped_only_for_their_own_class() -> None:
    """A rule that shares a covered code but is another class still runs on proven bodies."""

    class Impostor:
        code = "amount.limits"
        default_action = RULES[0].default_action
        can_repair = False
        summary = "a stand-in with a covered code"
        conditions = ()

        def applies_to(self, operation: object) -> bool:
            return True

        def check(self, request: AuditedRequest) -> list[Finding]:
            return []

    validators = BodyValidators([Impostor()])
    operation = identify("POST", "/epayment/v1/payments").operation
    kept = validators.skippable(operation, [Impostor()])
    assert kept is not None
    assert [r.code for r in kept] == ["amount.limits"]
    assert "amount.limits" in validators.covered(operation)
    assert set(COVERED_RULES) >= validators.covered(operation)


def test_every_body_operation_gets_a_validator() -> None:
    """Each operation that takes a JSON object compiles to a validator (else it has no fast
    path)."""
    missing = [
        key
        for key in REQUEST_BODIES
        if (facts := body_facts(find(*key.split(".")))) is not None
        and compile_validator(facts) is None
    ]
    assert missing == []


def test_house_bounds_narrow_what_is_proven() -> None:
    """An amount inside the API's limits but outside the house bounds is left to the rules."""
    sample = samples.EPAYMENT_CREATE
    body = dump(_set(sample.json, ("amount", "value"), 499)).encode()
    request = _request(sample.method, sample.path, list(sample.headers.items()), body)
    assert not assert_equivalent(request)
    unbounded = BodyValidators(default_rules())
    assert unbounded.proves_clean(request)


def test_disjoint_house_bounds_leave_every_main_amount_to_the_rules() -> None:
    """Bounds with no amount common to all currencies still compile; main amounts go slow."""
    validators = BodyValidators(default_rules(RuleOptions(amount_bounds="NOK=1000..2000,EUR=5..9")))
    create, capture = samples.EPAYMENT_CREATE, samples.EPAYMENT_CAPTURE
    headers = list(create.headers.items())
    assert not validators.proves_clean(_request(create.method, create.path, headers, create.body))
    headers = list(capture.headers.items())
    assert validators.proves_clean(_request(capture.method, capture.path, headers, capture.body))
