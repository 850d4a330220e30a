"""Tests for the generated field table and its generator: same as the specs say, read leniently."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

from policies.catalogue import request_fields
from policies.catalogue.operations import OPERATIONS
from policies.catalogue.request_fields import REQUEST_BODIES, ObjectFields, request_body
from tests.policies.rules.spec_examples import spec_dir_or_skip
from tests.tools.generate_request_fields import BodyEntry, build_table, render

COMMITTED = Path(request_fields.__file__)
REGENERATE = "python -m tests.tools.generate_request_fields > policies/catalogue/request_fields.py"


def test_committed_table_is_what_the_specs_generate() -> None:
    """The committed `policies/catalogue/request_fields.py` is what the generator makes of the
    specs."""
    generated = render(build_table(spec_dir_or_skip()))
    assert generated == COMMITTED.read_text(encoding="utf-8"), f"stale table; run {REGENERATE}"


def test_table_names_only_catalogue_operations() -> None:
    """Every operation in the table is in the catalogue."""
    assert set(REQUEST_BODIES) <= {op.key for op in OPERATIONS}
    assert request_body("epayment.get_payment") is None


@pytest.mark.parametrize("key", sorted(REQUEST_BODIES))
def test_required_fields_are_known_and_nullable_ones_required(key: str) -> None:
    """In every object, required fields are known fields, and nullable ones are required."""
    for fields in REQUEST_BODIES[key].objects.values():
        assert fields.required <= fields.known
        assert fields.nullable <= fields.required


def test_case_variants() -> None:
    """A key's case variants are the known fields it equals ignoring case, unless it is known."""
    fields = ObjectFields(frozenset({"fallBack", "isApp"}), frozenset(), frozenset())
    assert fields.case_variants("fallback") == ("fallBack",)
    assert fields.case_variants("FALLBACK") == ("fallBack",)
    assert fields.case_variants("fallBack") == ()
    assert fields.case_variants("fall_back") == ()


# --- The generator's reading of a spec, on small specs written here ---------------------------

_HEADER = """
openapi: 3.0.0
info: {title: t, version: "1"}
servers: [{url: "https://api.vipps.no/epayment"}]
"""


def write_spec(folder: Path, name: str, paths: str, schemas: str = "{}") -> None:
    """Write a small ePayment-like spec file with the given paths and component schemas."""
    text = _HEADER + f"paths:\n{textwrap.indent(textwrap.dedent(paths), '  ')}\n"
    text += f"components:\n  schemas:\n{textwrap.indent(textwrap.dedent(schemas), '    ')}\n"
    (folder / name).write_text(text, encoding="utf-8")


def capture_with(schema: str) -> str:
    """A capture operation whose JSON body has the given (YAML, flow style) schema."""
    return f"""
    /v1/payments/{{reference}}/capture:
      post:
        requestBody:
          required: true
          content:
            application/json:
              schema: {schema}
    """


def entry(folder: Path, key: str = "epayment.capture_payment") -> BodyEntry:
    """The generator's entry for one operation of the specs in `folder`."""
    return build_table(folder, {})[key]


def fields(folder: Path, at: tuple[str, ...] = ()) -> tuple[set[str], set[str], set[str]]:
    """(known, required, nullable) of the capture body's object at `at`."""
    found = entry(folder).objects[at]
    return found.known, found.required, found.nullable


def test_required_and_known_fields_of_nested_objects(tmp_path: Path) -> None:
    """Fields and required fields are read per object path, with `*` for array items."""
    write_spec(
        tmp_path,
        "a.yaml",
        capture_with("{$ref: '#/components/schemas/Capture'}"),
        """
        Capture:
          type: object
          required: [modificationAmount]
          properties:
            modificationAmount: {$ref: '#/components/schemas/Amount'}
            lines: {type: array, items: {$ref: '#/components/schemas/Amount'}}
        Amount:
          type: object
          required: [value, currency]
          properties: {value: {type: integer}, currency: {type: string}}
        """,
    )
    body = entry(tmp_path)
    assert body.required
    assert body.object_root
    assert set(body.objects) == {(), ("modificationAmount",), ("lines", "*")}
    assert fields(tmp_path) == ({"modificationAmount", "lines"}, {"modificationAmount"}, set())
    assert fields(tmp_path, ("lines", "*"))[1] == {"value", "currency"}


@pytest.mark.parametrize(
    ("schema", "known", "required"),
    [
        pytest.param(
            "{oneOf: [{type: object, required: [a, b], properties: {a: {}, b: {}}},"
            " {type: object, required: [a, c], properties: {a: {}, c: {}}}]}",
            {"a", "b", "c"},
            {"a"},
            id="oneOf-required-in-every-branch",
        ),
        pytest.param(
            "{anyOf: [{type: object, required: [a], properties: {a: {}}},"
            " {type: object, properties: {b: {}}}]}",
            {"a", "b"},
            set(),
            id="anyOf-one-branch-requires-nothing",
        ),
        pytest.param(
            "{allOf: [{type: object, required: [a], properties: {a: {}}},"
            " {type: object, required: [b], properties: {b: {}}}]}",
            {"a", "b"},
            {"a", "b"},
            id="allOf-every-part-holds",
        ),
        pytest.param(
            "{type: object, required: [a, b, c],"
            " properties: {a: {readOnly: true}, b: {type: string, default: x}, c: {}}}",
            {"a", "b", "c"},
            {"c"},
            id="readOnly-and-default-never-required",
        ),
        pytest.param(
            "{type: object, discriminator: {propertyName: type},"
            " oneOf: [{type: object, required: [type, price], properties: {type: {}, price: {}}},"
            " {type: object, required: [type, end], properties: {type: {}, end: {}}}]}",
            {"type", "price", "end"},
            {"type"},
            id="discriminator-intersection",
        ),
    ],
)
def test_composition_is_read_leniently(
    tmp_path: Path, schema: str, known: set[str], required: set[str]
) -> None:
    """Every branch's fields are known; only what every branch requires is required."""
    write_spec(tmp_path, "a.yaml", capture_with(schema))
    assert fields(tmp_path)[:2] == (known, required)


def test_nullable_required_fields_are_marked(tmp_path: Path) -> None:
    """A required field whose schema allows null is marked nullable, directly or through allOf."""
    schema = (
        "{type: object, required: [a, b, c], properties: {a: {type: string, nullable: true},"
        " b: {allOf: [{type: string}], nullable: true}, c: {type: string}}}"
    )
    write_spec(tmp_path, "a.yaml", capture_with(schema))
    assert fields(tmp_path)[2] == {"a", "b"}


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param("{type: object, additionalProperties: {type: string}}", id="map"),
        pytest.param("{$ref: 'https://example.com/other.yaml#/Receipt'}", id="remote-ref"),
        pytest.param("{type: object}", id="object-of-unknown-shape"),
    ],
)
def test_objects_with_free_keys_have_no_entry(tmp_path: Path, schema: str) -> None:
    """Maps, remote references and objects without properties are not described."""
    write_spec(tmp_path, "a.yaml", capture_with(f"{{type: object, properties: {{m: {schema}}}}}"))
    assert set(entry(tmp_path).objects) == {()}


def test_spec_versions_merge_leniently(tmp_path: Path) -> None:
    """Across files: fields known in any, required only in all, nullable in any, body if all."""
    write_spec(
        tmp_path,
        "new.yaml",
        capture_with("{type: object, required: [a, b], properties: {a: {}, b: {}, n: {}}}"),
    )
    write_spec(
        tmp_path,
        "old.yaml",
        capture_with("{type: object, required: [a], properties: {a: {nullable: true}, o: {}}}"),
    )
    assert fields(tmp_path) == ({"a", "b", "n", "o"}, {"a"}, {"a"})
    assert entry(tmp_path).files == ["new.yaml", "old.yaml"]


def test_operation_without_a_body_in_one_file_takes_none(tmp_path: Path) -> None:
    """An operation one file gives no JSON body is not in the table (Vipps may ignore a body)."""
    write_spec(tmp_path, "new.yaml", capture_with("{type: object, properties: {a: {}}}"))
    write_spec(tmp_path, "old.yaml", "/v1/payments/{reference}/capture: {post: {}}")
    assert "epayment.capture_payment" not in build_table(tmp_path, {})


def test_optional_body_and_callbacks(tmp_path: Path) -> None:
    """A body without `required: true` is optional; paths outside the catalogue are skipped."""
    write_spec(
        tmp_path,
        "a.yaml",
        """
        /v1/payments/{reference}/refund:
          post:
            requestBody:
              content: {application/json: {schema: {type: object, properties: {a: {}}}}}
        /merchant-callback:
          post:
            requestBody:
              content: {application/json: {schema: {type: object, properties: {a: {}}}}}
        """,
    )
    table = build_table(tmp_path, {})
    assert list(table) == ["epayment.refund_payment"]
    assert not table["epayment.refund_payment"].required


def test_lenient_override_applies_and_must_override_something(tmp_path: Path) -> None:
    """A listed override drops a requirement; one that overrides nothing fails the generator."""
    write_spec(
        tmp_path, "a.yaml", capture_with("{type: object, required: [a], properties: {a: {}}}")
    )
    override = {("epayment.capture_payment", "", "a"): "docs say so"}
    assert build_table(tmp_path, override)["epayment.capture_payment"].objects[()].required == set()
    with pytest.raises(ValueError, match="no longer require"):
        build_table(tmp_path, {("epayment.capture_payment", "", "b"): "stale"})


def test_rendered_module_reads_back_as_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rendered source, executed, gives the same fields the generator read."""
    write_spec(
        tmp_path,
        "a.yaml",
        capture_with(
            "{type: object, required: [a, n], properties: {a: {}, n: {nullable: true},"
            " items: {type: array, items: {type: object, properties: {x: {}}}}}}"
        ),
    )
    source = tmp_path / "generated_fields.py"
    source.write_text(render(build_table(tmp_path, {})), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("generated_fields", source)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "generated_fields", module)
    spec.loader.exec_module(module)
    body = module.REQUEST_BODIES["epayment.capture_payment"]
    root = body.objects[()]
    assert (root.known, root.required, root.nullable) == ({"a", "n", "items"}, {"a", "n"}, {"n"})
    assert body.objects[("items", "*")].known == frozenset({"x"})
