"""The catalogue: one entry per operation, agreeing with the OpenAPI files; a new fact, one edit."""

from __future__ import annotations

import difflib
import functools
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path as FilePath
from typing import Any

import pytest

from policies.catalogue.money_fields import MONEY_FIELDS, MoneyField, amounts_in
from policies.catalogue.operations import OPERATIONS, UNKNOWN, Operation, find
from policies.catalogue.spec import (
    SPECS,
    OperationSpec,
    Tables,
    build_catalogue,
    build_spec,
    spec_of,
)
from policies.core.jsonbody import Path
from policies.core.model import audited_request
from tests.policies.rules.spec_examples import (
    SpecOperation,
    resolve,
    spec_dir_or_skip,
    spec_operations,
)
from tests.tools.generate_request_fields import json_body_schemas, shape_of

REPOSITORY = FilePath(__file__).resolve().parents[3]


def _ids(specs: Mapping[Operation, OperationSpec]) -> list[Any]:
    return [
        pytest.param(spec, id=spec.key) for spec in specs.values() if spec.operation in OPERATIONS
    ]


ALL = _ids(SPECS)


# --- One entry per operation ----------------------------------------------------------------


def test_every_catalogued_operation_has_its_own_entry() -> None:
    """Each catalogued operation (and `unknown`) has an entry that names it; no other has one."""
    assert set(SPECS) == {*OPERATIONS, UNKNOWN}
    for operation in OPERATIONS:
        spec = spec_of(operation)
        assert spec is SPECS[operation]
        assert spec.operation is operation
        assert spec.key == f"{operation.api}.{operation.name}"


def test_an_operation_is_found_by_value_as_well_as_by_identity() -> None:
    """An equal `Operation` built anew finds the same entry; one outside the catalogue gets one."""
    known = find("epayment", "capture_payment")
    copy = Operation(known.api, known.name, known.method, known.template, known.deprecated)
    assert spec_of(copy) is SPECS[known]
    stray = Operation("epayment", "not_catalogued", "POST", "/epayment/v9/x")
    assert spec_of(stray).money == ()
    assert spec_of(stray).headers.bearer


def test_a_table_row_naming_no_operation_fails_the_build() -> None:
    """A misspelt operation key in a source table stops the import instead of going unused."""
    money = {**MONEY_FIELDS, "epayment.capture_paymnet": MONEY_FIELDS["epayment.capture_payment"]}
    with pytest.raises(ValueError, match=r"epayment\.capture_paymnet"):
        build_catalogue(tables=Tables(money=money))


@pytest.mark.parametrize("spec", ALL)
def test_what_the_payment_audit_needs_is_there(spec: OperationSpec) -> None:
    """Creates name their payment and amount, captures and refunds their amount, polls are GETs."""
    if spec.creates:
        assert spec.created_id is not None
        assert spec.amount is not None
        assert spec.writes
    if spec.captures or spec.refunds:
        assert spec.amount is not None
        assert spec.amount.pattern in {m.pattern for m in spec.money}
        assert spec.path_id is not None or "chargeId" in spec.operation.params
    if spec.polls or spec.reads or spec.reads_list:
        assert spec.operation.method == "GET"
    assert spec.writes == (spec.operation.method in {"POST", "PUT", "PATCH", "DELETE"})


def test_the_parts_name_the_operations_the_audit_follows() -> None:
    """Creates, captures, refunds, cancels and polls are where the payment audit expects them."""

    def named(part: str) -> set[str]:
        return {s.key for s in SPECS.values() if getattr(s, part)}

    assert named("creates") == {
        "epayment.create_payment",
        "ecom.initiate_payment",
        "checkout.create_session",
        "recurring.create_charge",
    }
    # The polling audit follows the agreement where the ledger follows its charges.
    assert named("awaits_polls") - named("creates") == {"recurring.draft_agreement"}
    assert named("creates") - named("awaits_polls") == {"recurring.create_charge"}
    assert {k.split(".")[1] for k in named("captures")} == {"capture_payment", "capture_charge"}
    assert named("captures").isdisjoint(named("refunds") | named("cancels"))


def test_currency_is_where_the_main_amount_names_it() -> None:
    """A number without a country code is read in the country of the main amount's currency."""
    assert spec_of(find("epayment", "create_payment")).currency == ("amount", "currency")
    assert spec_of(find("recurring", "draft_agreement_v2")).currency == ("currency",)
    assert spec_of(find("epayment", "force_approve")).currency is None  # no money there


# --- The entries agree with the OpenAPI files -----------------------------------------------


@functools.cache
def _spec_operations() -> tuple[SpecOperation, ...]:
    return tuple(spec_operations(spec_dir_or_skip()))


def _described(operation: Operation) -> list[SpecOperation]:
    return [s for s in _spec_operations() if s.operation == operation]


def _schema_has(doc: Mapping[str, Any], schemas: list[Any], path: Path) -> bool:
    """Whether some schema in `schemas` describes the field at `path` (`*`: an array's items)."""
    if not path:
        return bool(schemas)
    step, rest = path[0], path[1:]
    found: list[Any] = []
    for schema in schemas:
        shape = shape_of(doc, schema)
        found.extend(shape.items if step == "*" else shape.properties.get(str(step), []))
    return bool(found) and _schema_has(doc, found, rest)


def _body_fields(spec: OperationSpec) -> Iterator[Path]:
    yield from (m.pattern for m in spec.money)
    yield from spec.currencies
    yield from (p.path for p in spec.phones)
    yield from (u.path for u in spec.urls.fields) if spec.urls else ()
    yield from (path for path, _ in spec.body_ids)


@pytest.mark.parametrize("spec", [p for p in ALL if any(_body_fields(p.values[0]))])
def test_every_body_field_is_in_the_request_schema(spec: OperationSpec) -> None:
    """Money, currency, phone, URL and id fields are fields of the operation's request schema."""
    described = _described(spec.operation)
    assert described, f"no spec file describes {spec.key}"
    for path in _body_fields(spec):
        assert any(_schema_has(s.doc, json_body_schemas(s)[0], path) for s in described), (
            f"{spec.key}: {'.'.join(map(str, path))} is in no request schema"
        )


def _header_parameters(spec_op: SpecOperation) -> set[str]:
    item, _ = resolve(spec_op.doc, spec_op.doc["paths"][spec_op.template])
    declared = [*(item.get("parameters") or []), *(spec_op.node.get("parameters") or [])]
    names = set()
    for raw in declared:
        param, _ = resolve(spec_op.doc, raw)
        if isinstance(param, dict) and param.get("in") == "header":
            names.add(str(param.get("name")).lower())
    return names


def _has_security(spec_op: SpecOperation) -> bool:
    return bool(spec_op.node.get("security", spec_op.doc.get("security")))


# Required although the file does not declare it on this operation; the reason is the one in
# `policies.catalogue.header_fields`, where the requirement is written.
_UNDECLARED = {
    # Report declares Authorization on two of its four paths; its text requires it everywhere.
    ("report", "Authorization"),
}


@pytest.mark.parametrize("spec", [p for p in ALL if p.values[0].headers.required])
def test_required_headers_are_declared_by_the_spec(spec: OperationSpec) -> None:
    """Every header the entry requires is a header parameter (or the security scheme) of a file."""
    described = _described(spec.operation)
    assert described, f"no spec file describes {spec.key}"
    for need in spec.headers.required:
        if (spec.operation.api, need.header) in _UNDECLARED:
            continue
        assert any(
            need.header.lower() in _header_parameters(s)
            or (need.header == "Authorization" and _has_security(s))
            for s in described
        ), f"{spec.key}: {need.header} is declared by no file"


@pytest.mark.parametrize("spec", [p for p in ALL if p.values[0].path_id is not None])
def test_the_path_id_is_a_parameter_of_the_path(spec: OperationSpec) -> None:
    """The path parameter said to name the payment is one of the operation's path parameters."""
    assert spec.path_id is not None
    assert spec.path_id[0] in spec.operation.params


# --- A new fact is one edit in one place ----------------------------------------------------

_NEW_MONEY = '            _field("tip.value", _EP, "tip.currency", bounds=(0, EPAYMENT_MAXIMUM)),\n'
_NEW_PHONE = (
    '    ("epayment.create_payment", "deliveryContact.phone", MSISDN, "EP", "DeliveryContact"),\n'
)


def test_a_new_money_field_built_into_an_entry_reaches_the_rules_readers() -> None:
    """An entry built from a table with one more money field yields that field's amounts."""
    operation = find("epayment", "capture_payment")
    extra = MoneyField(("tip", "value"), "[test]", ("tip", "currency"), minimum=0)
    money = {**MONEY_FIELDS, operation.key: (*MONEY_FIELDS[operation.key], extra)}
    spec = build_spec(operation, Tables(money=money))
    assert spec.currencies == (("modificationAmount", "currency"), ("tip", "currency"))
    request = audited_request(
        "POST",
        "/epayment/v1/payments/order-123456/capture",
        [],
        b'{"modificationAmount":{"value":100,"currency":"NOK"},"tip":{"value":1.5}}',
    )
    found = [(m.pattern, at) for m, at, _ in amounts_in(request, spec.money)]
    assert (("tip", "value"), ("tip", "value")) in found
    # The live entry is untouched: the table, not the reader, is the one place.
    assert extra not in spec_of(operation).money


def _edit(source: FilePath, anchor: str, line: str) -> int:
    """Insert `line` after the first line containing `anchor`; return the lines changed."""
    before = source.read_text().splitlines(keepends=True)
    at = next(i for i, text in enumerate(before) if anchor in text) + 1
    after = [*before[:at], line, *before[at:]]
    source.write_text("".join(after))
    diff = difflib.unified_diff(before, after, n=0)
    return sum(1 for d in diff if d[:1] in "+-" and not d.startswith(("+++", "---")))


_PROBE = """
import json
from policies.core.engine import PolicyEngine
from policies.core.model import audited_request
from policies.rules.listing import default_rules

body = json.dumps({
    "amount": {"value": 49900, "currency": "NOK"}, "reference": "order-123456",
    "paymentMethod": {"type": "WALLET"}, "userFlow": "WEB_REDIRECT",
    "returnUrl": "https://example.com/return",
    "tip": {"value": 10.5, "currency": "nok"},
    "deliveryContact": {"phone": "+47 912 34 567"},
}).encode()
request = audited_request("POST", "/epayment/v1/payments", [], body)
verdict = PolicyEngine(default_rules()).evaluate(request)
print(json.dumps(sorted({(d.finding.rule, d.finding.field) for d in verdict.decisions})))
"""


def _findings(root: FilePath) -> set[tuple[str, str]]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )
    return {(rule, field) for rule, field in json.loads(result.stdout)}


def test_a_new_field_of_an_existing_operation_is_one_line_in_one_file(
    tmp_path: FilePath,
) -> None:
    """One added row in the money table and one in the phone table, and every rule sees them."""
    copy = tmp_path / "repo"
    shutil.copytree(REPOSITORY / "policies", copy / "policies")
    unchanged = _findings(copy)
    assert not {f for f in unchanged if f[1].startswith(("tip.", "deliveryContact."))}

    money_lines = _edit(
        copy / "policies" / "catalogue" / "money_fields.py",
        '"epayment.create_payment": (',
        _NEW_MONEY,
    )
    phone_lines = _edit(
        copy / "policies" / "catalogue" / "phone_fields.py", "_ROWS: tuple[", _NEW_PHONE
    )
    assert (money_lines, phone_lines) == (1, 1)

    found = _findings(copy) - unchanged
    assert ("amount.not_integer", "tip.value") in found
    # The new amount's currency is checked too, with no edit anywhere else.
    assert ("amount.currency", "tip.currency") in found
    assert ("phone.format", "deliveryContact.phone") in found
