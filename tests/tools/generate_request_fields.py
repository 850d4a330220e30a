"""Generate `policies/catalogue/request_fields.py` from the Vipps OpenAPI files.

The package must not read spec files at run time, so the field names each operation's JSON
body may carry are distilled here into a small Python table and committed. A test regenerates
the table from `shared/vipps-openapi` and fails when the committed file differs.

Usage (from the repository root):

    .venv/bin/python -m tests.tools.generate_request_fields > policies/catalogue/request_fields.py

How the specs are read:
* Spec files are read and their operations mapped to the catalogue by
  `tests.policies.rules.spec_examples` (`policies.catalogue.operations.identify` on the server's
  base path plus the spec path); operations outside the catalogue (callbacks merchants serve) are
skipped. * Only local `#/...` references are followed; remote ones (ePayment 1.4.1 points at another
  repository for `receipt`) are treated as an object of unknown shape, which no rule checks.
* Composition: `allOf` parts all hold (their properties and required lists add up); of `oneOf`
  and `anyOf` branches only one need hold, so a field is required only when every branch
  requires it, while every branch's fields are known. A discriminator changes nothing: it
  selects a branch, and the intersection is right for every branch. Where one property is
  described several times (by several branches), its own fields are merged the same way.
* `readOnly` properties are never required in a request (OpenAPI 3.0, Schema Object), nor are
  properties with a `default`, "the value the server will use if none is provided" (same
  section): a spec that lists such a field as required contradicts itself, and the lenient
  reading wins (ePayment `paymentMethod.type` defaults to `WALLET`).
* Where several spec files describe one operation (ePayment 1.4.1, 1.7.0 and 1.8.1; two copies
  of the Webhooks and Access token APIs), the lenient reading wins: a field is known if any
  file names it, required only if every file that describes its object requires it, and may
  be null if any file allows null. An operation takes a JSON body only if every file says so.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

from policies.catalogue.operations import OPERATIONS, UNKNOWN
from tests.policies.rules.spec_examples import (
    SPEC_DIR,
    SpecOperation,
    json_media,
    resolve,
    spec_operations,
)

# Fields a spec marks required although Vipps' documentation says otherwise: the lenient side
# wins, since the proxy never blocks what Vipps accepts. (operation key, object path, field).
NOT_REQUIRED: Mapping[tuple[str, str, str], str] = {
    # [RC #/components/schemas/CreateChargeV3/required] (2023) lists due and retryDays; newer
    # docs create `"type": "UNSCHEDULED"` charges with neither (facts §6.1, and the snippet on
    # developer.vippsmobilepay.com/docs/APIs/recurring-api/how-it-works/charges/
    # unscheduled-charges-howitworks).
    ("recurring.create_charge", "", "due"): "UNSCHEDULED charges have none",
    ("recurring.create_charge", "", "retryDays"): "UNSCHEDULED charges have none",
    # [RC #/components/schemas/DraftAgreementV2/required] lists price, but the spec's own "With
    # Variable Amount" example sends `variableAmount` and no price, as v3 does, where the
    # price is required only for LEGACY pricing [RC #/components/schemas/pricingRequest].
    ("recurring.draft_agreement_v2", "", "price"): "not with variableAmount",
}

Schema = Any  # a node of a YAML document: dict, list or scalar
ObjPath = tuple[str, ...]  # object path in a body; "*" stands for every array item


def json_body_schemas(spec_op: SpecOperation) -> tuple[list[Schema], bool]:
    """The schemas of the operation's JSON request body and whether the body is required."""
    body, media = json_media(spec_op)
    schemas = [content["schema"] for content in media.values() if "schema" in content]
    return schemas, body is not None and body.get("required") is True


# --- Reading one schema ----------------------------------------------------------------------


@dataclass
class Shape:
    """What a schema (with its composition) says about one JSON value."""

    is_object: bool = False
    properties: dict[str, list[Schema]] = field(default_factory=dict)
    required: set[str] = field(default_factory=set)
    not_required: set[str] = field(default_factory=set)
    nullable: bool = False
    items: list[Schema] = field(default_factory=list)


def _allows_null(node: Mapping[str, Any]) -> bool:
    kind = node.get("type")
    return (
        node.get("nullable") is True
        or (isinstance(kind, list) and "null" in kind)
        or kind == "null"
    )


def shape_of(doc: Mapping[str, Any], node: Schema, stack: tuple[str, ...] = ()) -> Shape:
    """Flatten a schema's `allOf`/`oneOf`/`anyOf` into one Shape."""
    node, ref = resolve(doc, node)
    shape = Shape()
    if not isinstance(node, dict) or (ref is not None and ref in stack):
        return shape
    stack = (*stack, ref) if ref else stack
    shape.nullable = _allows_null(node)
    kind = node.get("type")
    properties = node.get("properties")
    shape.is_object = kind == "object" or (isinstance(kind, list) and "object" in kind)
    if isinstance(properties, dict):
        shape.is_object = True
        for name, sub in properties.items():
            shape.properties.setdefault(_field_name(name), []).append(sub)
            sub_node, _ = resolve(doc, sub)
            if isinstance(sub_node, dict) and (
                sub_node.get("readOnly") is True or _has_default(doc, sub_node)
            ):
                shape.not_required.add(name)
    if isinstance(node.get("required"), list):
        shape.required |= {_field_name(name) for name in node["required"]}
    if "items" in node:
        shape.items.append(node["items"])
    for part in node.get("allOf") or []:
        _merge(shape, shape_of(doc, part, stack), all_hold=True)
    for keyword in ("oneOf", "anyOf"):
        branches = [shape_of(doc, b, stack) for b in node.get(keyword) or []]
        if branches:
            _merge_branches(shape, branches)
    shape.required -= shape.not_required
    return shape


def _has_default(doc: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    parts = [resolve(doc, p)[0] for p in node.get("allOf") or []]
    return "default" in node or any(isinstance(p, dict) and "default" in p for p in parts)


def _field_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"a field name that YAML did not read as a string: {name!r}")
    return name


def _merge(into: Shape, part: Shape, *, all_hold: bool) -> None:
    into.is_object |= part.is_object
    for name, subs in part.properties.items():
        into.properties.setdefault(name, []).extend(subs)
    into.not_required |= part.not_required
    into.items.extend(part.items)
    # Strictly, an allOf is null only if every part allows it; Swagger writers put `nullable`
    # on the wrapper around a `$ref`, meaning the whole. Either way, allowing null is lenient.
    into.nullable |= part.nullable
    if all_hold:
        into.required |= part.required


def _merge_branches(into: Shape, branches: list[Shape]) -> None:
    common = set.intersection(*(b.required for b in branches))
    for branch in branches:
        _merge(into, branch, all_hold=False)
    into.required |= common


@dataclass
class ObjectEntry:
    """The fields of the objects at one path of one operation's body."""

    known: set[str] = field(default_factory=set)
    required: set[str] = field(default_factory=set)
    nullable: set[str] = field(default_factory=set)


Objects = dict[ObjPath, ObjectEntry]


def merge_lenient(variants: list[Objects]) -> Objects:
    """Merge readings of one value that may each be the one that applies.

    A field is known if any reading names it, required only if every reading that describes
    its object requires it, and may be null if any reading allows null.
    """
    merged: Objects = {}
    for objects in variants:
        for at, found in objects.items():
            entry = merged.get(at)
            if entry is None:
                merged[at] = ObjectEntry(set(found.known), set(found.required), set(found.nullable))
            else:
                entry.known |= found.known
                entry.required &= found.required
                entry.nullable |= found.nullable
    return merged


def _under(step: str, objects: Objects) -> Objects:
    return {(step, *at): entry for at, entry in objects.items()}


def collect(doc: Mapping[str, Any], node: Schema, stack: tuple[str, ...] = ()) -> Objects:
    """The fields of every object reachable from `node`, by object path relative to it.

    A property described more than once (by several `oneOf` branches, say) is read leniently.
    """
    _, ref = resolve(doc, node)
    if ref is not None and ref in stack:
        return {}
    stack = (*stack, ref) if ref else stack
    shape = shape_of(doc, node)
    out: Objects = _under("*", merge_lenient([collect(doc, i, stack) for i in shape.items]))
    if not shape.properties:
        return out  # a map (additionalProperties) or an object of unknown shape: keys are free
    out[()] = ObjectEntry(
        known=set(shape.properties) | shape.required,
        required=set(shape.required),
        nullable={n for n, subs in shape.properties.items() if _any_nullable(doc, subs)},
    )
    for name, subs in shape.properties.items():
        out.update(_under(name, merge_lenient([collect(doc, sub, stack) for sub in subs])))
    return out


def _any_nullable(doc: Mapping[str, Any], subs: list[Schema]) -> bool:
    return any(shape_of(doc, sub).nullable for sub in subs)


# --- One table for all files -----------------------------------------------------------------


@dataclass
class BodyEntry:
    """Everything the table says about one operation's JSON body, merged over spec files."""

    files: list[str]
    required: bool
    object_root: bool
    objects: Objects
    notes: dict[ObjPath, list[str]] = field(default_factory=dict)


def build_table(
    spec_dir: FilePath = SPEC_DIR,
    not_required: Mapping[tuple[str, str, str], str] = NOT_REQUIRED,
) -> dict[str, BodyEntry]:
    """The merged table: operation key -> body entry, for operations that take a JSON body.

    Raises ValueError when an entry of `not_required` overrides nothing (the specs changed).
    """
    per_op: dict[str, list[tuple[SpecOperation, list[Schema], bool]]] = {}
    for spec_op in spec_operations(spec_dir):
        if spec_op.operation is UNKNOWN:
            continue  # a callback the merchant serves, not a call to Vipps
        schemas, required = json_body_schemas(spec_op)
        per_op.setdefault(spec_op.operation.key, []).append((spec_op, schemas, required))
    table: dict[str, BodyEntry] = {}
    overridden: set[tuple[str, str, str]] = set()
    for key, variants in per_op.items():
        if not all(schemas for _, schemas, _ in variants):
            continue  # some file declares no JSON body: the lenient reading is "takes none"
        readings = [collect(op.doc, schema) for op, schemas, _ in variants for schema in schemas]
        entry = BodyEntry(
            files=sorted({op.file for op, _, _ in variants}),
            required=all(required for _, _, required in variants),
            object_root=all(
                shape_of(op.doc, schema).is_object
                for op, schemas, _ in variants
                for schema in schemas
            ),
            objects=merge_lenient(readings),
        )
        for (op_key, at_text, name), reason in not_required.items():
            at = parse_obj_path(at_text)
            target = entry.objects.get(at) if op_key == key else None
            if target is not None and name in target.required:
                target.required.discard(name)
                entry.notes.setdefault(at, []).append(f"{name}: spec-required, not here: {reason}")
                overridden.add((op_key, at_text, name))
        for at, found in entry.objects.items():
            if not all(_is_plain_name(name) for name in found.known):
                raise ValueError(f"{key} {at}: a field name the table cannot spell: {found.known}")
        table[key] = entry
    stale = set(not_required) - overridden
    if stale:
        raise ValueError(f"NOT_REQUIRED names fields the specs no longer require: {sorted(stale)}")
    order = {op.key: i for i, op in enumerate(OPERATIONS)}
    return dict(sorted(table.items(), key=lambda kv: order[kv[0]]))


def _is_plain_name(name: str) -> bool:
    return bool(name) and not any(c in name for c in '.[]! ?"\\') and name.isprintable()


def format_obj_path(at: ObjPath) -> str:
    """`("receipt", "orderLines", "*")` -> `receipt.orderLines[]`; the root is ``."""
    text = ""
    for step in at:
        text += "[]" if step == "*" else (f".{step}" if text else step)
    return text


def parse_obj_path(text: str) -> ObjPath:
    """The inverse of `format_obj_path`."""
    steps: list[str] = []
    for part in text.split(".") if text else []:
        name = part.replace("[]", "")
        if name:
            steps.append(name)
        steps.extend(["*"] * part.count("[]"))
    return tuple(steps)


# --- Rendering -------------------------------------------------------------------------------

HEADER = '''"""Known JSON request body fields per operation, generated from the Vipps OpenAPI files.

GENERATED from `shared/vipps-openapi` by `python -m tests.tools.generate_request_fields`; do not
edit by hand (a test regenerates it and compares). The package never reads spec files at run time.

`REQUEST_BODIES` maps an operation key to its body: whether the spec requires a body at all,
whether it must be a JSON object, and, per object path (`receipt.orderLines[]`: every item of the
array `receipt.orderLines`), the field names of that object. In a field list, `name!` is a
required field, `name!?` a required field that may be sent as null, a bare `name` an optional one.
Objects whose keys are free (maps such as ePayment `metadata`) have no entry, and operations that
take no JSON body are not in the table. How the specs are read, and where the lenient reading
overrides them, is told in the generator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from policies.core.jsonbody import Path


@dataclass(frozen=True, slots=True)
class ObjectFields:
    """The fields of the JSON objects at one path of a request body."""

    known: frozenset[str]
    required: frozenset[str]
    nullable: frozenset[str]

    def case_variants(self, key: str) -> tuple[str, ...]:
        """The known fields `key` equals when letter case is ignored, if `key` is not one itself."""
        if key in self.known:
            return ()
        folded = key.casefold()
        return tuple(sorted(n for n in self.known if n.casefold() == folded))


@dataclass(frozen=True, slots=True)
class RequestBody:
    """What the specs say about one operation's JSON request body.

    `objects` maps an object path, where the step `"*"` is every item of an array (as in
    `policies.core.jsonbody.walk`), to the fields of the objects found there.
    """

    required: bool
    object_root: bool
    objects: Mapping[Path, ObjectFields]


def _parse_path(text: str) -> Path:
    """`receipt.orderLines[]` -> `("receipt", "orderLines", "*")`."""
    steps: list[str | int] = []
    for part in text.split(".") if text else []:
        name = part.replace("[]", "")
        if name:
            steps.append(name)
        steps.extend(["*"] * part.count("[]"))
    return tuple(steps)


def _parse_fields(text: str) -> ObjectFields:
    names = text.split()
    return ObjectFields(
        known=frozenset(n.rstrip("!?") for n in names),
        required=frozenset(n.rstrip("!?") for n in names if "!" in n),
        nullable=frozenset(n.rstrip("!?") for n in names if n.endswith("!?")),
    )


def _body(required: bool, object_root: bool, objects: Mapping[str, str]) -> RequestBody:
    return RequestBody(
        required,
        object_root,
        MappingProxyType({_parse_path(k): _parse_fields(v) for k, v in objects.items()}),
    )


'''

FOOTER = '''

REQUEST_BODIES: Final[Mapping[str, RequestBody]] = MappingProxyType(
    {key: _body(*entry) for key, entry in _TABLE.items()}
)


def request_body(operation_key: str) -> RequestBody | None:
    """The JSON body of an operation, or None when it takes no JSON body."""
    return REQUEST_BODIES.get(operation_key)
'''

WIDTH = 96


def _field_token(name: str, found: ObjectEntry) -> str:
    if name not in found.required:
        return name
    return f"{name}!?" if name in found.nullable else f"{name}!"


def _wrap(tokens: list[str], indent: str) -> list[str]:
    """Space-separated tokens as implicitly concatenated string literals of bounded width."""
    lines: list[str] = []
    current = ""
    for token in tokens:
        candidate = f"{current} {token}" if current else token
        if current and len(indent) + len(candidate) + 3 > WIDTH:
            lines.append(current)
            current = " " + token
        else:
            current = candidate
    lines.append(current)
    return [f'{indent}"{line}"' for line in lines]


def render(table: Mapping[str, BodyEntry]) -> str:
    """The Python source of `policies/catalogue/request_fields.py` for `table`."""
    out = [HEADER.rstrip("\n"), "", ""]
    out.append("# Each entry: (body required, body must be an object, {object path: field names}).")
    out.append("# Layout is generated; `fmt: off` keeps the formatter from reflowing it.")
    out.append("# fmt: off")
    out.append("_TABLE: Final[dict[str, tuple[bool, bool, dict[str, str]]]] = {")
    for key, entry in table.items():
        out.append(f"    # {', '.join(entry.files)}")
        out.append(f'    "{key}": ({entry.required}, {entry.object_root}, {{')
        for at in sorted(entry.objects, key=format_obj_path):
            found = entry.objects[at]
            tokens = [
                _field_token(n, found) for n in sorted(found.known, key=lambda n: (n.lower(), n))
            ]
            out.extend(f"        # {note}" for note in entry.notes.get(at, ()))
            label = f'        "{format_obj_path(at)}": '
            one_line = f'{label}"{" ".join(tokens)}",'
            if len(one_line) <= WIDTH:
                out.append(one_line)
            else:
                out.append(f"{label}(")
                out.extend(_wrap(tokens, "            "))
                out.append("        ),")
        out.append("    }),")
    out.append("}")
    out.append("# fmt: on")
    return "\n".join(out) + FOOTER


def main(argv: list[str]) -> int:
    """Print the generated module for the spec folder given (or the shared one)."""
    spec_dir = FilePath(argv[1]) if len(argv) > 1 else SPEC_DIR
    sys.stdout.write(render(build_table(spec_dir)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
