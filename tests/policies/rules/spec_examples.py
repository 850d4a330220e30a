"""Read the Vipps OpenAPI files: their operations, mapped to the catalogue, and their examples.

Every request-body example the specs carry is extracted: `requestBody.content.*.example`, the
named `examples` (also by `$ref` to `#/components/examples`), and the examples written on the
request schema itself (`example`, the `x-examples` map some editors write, or a 3.1 `examples`
list). Only local `#/...` references are followed, never remote ones. Each example is mapped to
its catalogue operation by `policies.catalogue.operations.identify` on the server's base path plus
the spec path, with example values for the path parameters (`{reference}` -> `order-123456`).

The same example often appears under several media types (`application/json`, `text/json`,
`application/*+json`), or both on the request body and on its schema: identical values of one
operation of one file are counted once, with every place they were found.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from policies.catalogue.operations import UNKNOWN, Operation, identify
from tests.binaries import running_in_ci

try:
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # PyYAML built without libyaml: the same, only slower
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

SPEC_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "vipps-openapi"
METHODS = ("get", "put", "post", "delete", "patch")

# Values for path parameters, valid for every API that uses the name.
EXAMPLE_PARAMS: Mapping[str, str] = {
    "reference": "order-123456",
    "orderid": "order-123456",
    "transactionid": "order-123456",
    "sessionid": "order-123456",
    "agreementid": "agr_5kSeqz",
    "chargeid": "chr-4assY8f",
    "paymenttype": "ECOM",
    "categoryid": "5b8e2b4c-3e2f-4e5a-9c1d-0e6f8a7b9c0d",
    "id": "5b8e2b4c-3e2f-4e5a-9c1d-0e6f8a7b9c0d",
}
_OTHER_PARAM = "example-1"
_EXAMPLE_OBJECT_KEYS = frozenset({"summary", "description", "value", "externalValue"})


class SpecLoader(_SafeLoader):
    """PyYAML's safe loader with YAML 1.2 scalars, as the spec authors meant them.

    PyYAML follows YAML 1.1, where an unquoted `NO` (Norway, in recurring-v3.yaml) is the
    boolean false and `2030-12-31` is a date; here only `true`/`false` are booleans and dates
    stay strings, as a JSON body would carry them.
    """


SpecLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in _SafeLoader.yaml_implicit_resolvers.items()
}
SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def spec_dir_or_skip(path: Path = SPEC_DIR) -> Path:
    """The spec folder; a test without it is skipped, or fails where env `CI` is `true`."""
    if path.is_dir():
        return path
    message = f"the Vipps OpenAPI files are not at {path}"
    if running_in_ci():
        pytest.fail(f"{message}; CI=true, where the spec tests must run")
    pytest.skip(message)


@functools.cache
def load_spec(path: Path) -> dict[str, Any]:
    """Load one spec file, once (safely: no tags, no remote references); treat it as read-only."""
    with path.open(encoding="utf-8") as handle:
        doc = yaml.load(handle, Loader=SpecLoader)  # noqa: S506 - SpecLoader is a SafeLoader
    if not isinstance(doc, dict):
        raise ValueError(f"{path.name}: not an OpenAPI document")
    return doc


def spec_files(spec_dir: Path) -> list[Path]:
    """The spec files of a folder, in a stable order."""
    return sorted(p for p in spec_dir.iterdir() if p.suffix in (".yaml", ".yml"))


def resolve(doc: Mapping[str, Any], node: Any) -> tuple[Any, str | None]:
    """Follow local `$ref`s; return the target and the last reference followed.

    A remote or broken reference resolves to None: its content is unknown here.
    """
    ref: str | None = None
    seen: set[str] = set()
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/") or ref in seen:
            return None, ref
        seen.add(ref)
        target: Any = doc
        for part in ref[2:].split("/"):
            key = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or key not in target:
                return None, ref
            target = target[key]
        node = target
    return node, ref


def resolve_deep(doc: Mapping[str, Any], value: Any, depth: int = 0) -> Any:
    """An example value with every local `{"$ref": ...}` inside it replaced by its target."""
    if depth > 50:
        raise ValueError("example references nest too deeply")
    if isinstance(value, dict) and "$ref" in value:
        target, _ = resolve(doc, value)
        return value if target is None else resolve_deep(doc, target, depth + 1)
    if isinstance(value, dict):
        return {k: resolve_deep(doc, v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_deep(doc, v, depth + 1) for v in value]
    return value


def base_path(doc: Mapping[str, Any]) -> str:
    """The path of the first server URL: `/epayment` for `https://api.vipps.no/epayment`."""
    servers = doc.get("servers") or [{}]
    url = servers[0].get("url", "") if isinstance(servers[0], dict) else ""
    return urlsplit(str(url)).path.rstrip("/")


def concrete_path(template: str) -> str:
    """A spec path with example values for its parameters."""
    return "/".join(
        EXAMPLE_PARAMS.get(s[1:-1].lower(), _OTHER_PARAM) if s.startswith("{") else s
        for s in template.split("/")
    )


@dataclass(frozen=True)
class SpecOperation:
    """One operation of one spec file, with the catalogue operation it is (or UNKNOWN)."""

    file: str
    method: str
    template: str
    path: str
    operation: Operation
    doc: Mapping[str, Any]
    node: Mapping[str, Any]


def spec_operations(spec_dir: Path = SPEC_DIR) -> Iterator[SpecOperation]:
    """Every operation of every spec file, in file and path order."""
    for file in spec_files(spec_dir):
        doc = load_spec(file)
        prefix = base_path(doc)
        for template, item in (doc.get("paths") or {}).items():
            item_node, _ = resolve(doc, item)
            if not isinstance(item_node, dict):
                continue
            for method in METHODS:
                node = item_node.get(method)
                if isinstance(node, dict):
                    path = prefix + concrete_path(str(template))
                    match = identify(method, path)
                    yield SpecOperation(
                        file.name, method.upper(), str(template), path, match.operation, doc, node
                    )


def json_media(spec_op: SpecOperation) -> tuple[Mapping[str, Any] | None, dict[str, Any]]:
    """The operation's request body object and its JSON media types (name -> media object)."""
    body, _ = resolve(spec_op.doc, spec_op.node.get("requestBody"))
    if not isinstance(body, dict):
        return None, {}
    media = {
        str(name): content
        for name, content in (body.get("content") or {}).items()
        if "json" in str(name).lower() and isinstance(content, dict)
    }
    return body, media


# --- Examples -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpecExample:
    """One request-body example of one operation of one spec file."""

    file: str
    method: str
    path: str
    operation: Operation
    sources: tuple[str, ...]
    media_types: tuple[str, ...]
    value: Any

    @property
    def id(self) -> str:
        """A stable test id: `recurring-v3:recurring.draft_agreement:minimal`.

        An example written on the request schema rather than on the body is marked with the
        schema's name (`receipt-receiptexample`), since both places may use the same name.
        """
        where, _, name = self.sources[0].rpartition("/")
        label = name if where.startswith("content[") else f"{where.split('/')[0]}-{name}"
        slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
        return f"{Path(self.file).stem}:{self.operation.key}:{slug or 'example'}"

    @property
    def content_type(self) -> str:
        """The first concrete media type the example was given for."""
        concrete = [m for m in self.media_types if "*" not in m]
        return (concrete or ["application/json"])[0]

    def body(self) -> bytes:
        """The example as the bytes a merchant would send."""
        return json.dumps(self.value, ensure_ascii=False).encode("utf-8")


def _example_value(entry: Any) -> tuple[bool, Any]:
    """(True, value) for an example: an OpenAPI Example Object's `value`, or a bare value.

    An Example Object with only an `externalValue` gives (False, None): nothing is fetched.
    """
    if isinstance(entry, dict) and entry and set(entry) <= _EXAMPLE_OBJECT_KEYS:
        if "value" in entry:
            return True, entry["value"]
        if "externalValue" in entry:
            return False, None
    return True, entry


def _raw_examples(spec_op: SpecOperation) -> Iterator[tuple[str, str, Any]]:
    """(source, media type, value) for every example of the operation's JSON request body."""
    doc = spec_op.doc
    _, media = json_media(spec_op)
    for media_type, content in media.items():
        where = f"content[{media_type}]"
        if "example" in content:
            yield f"{where}/example", media_type, content["example"]
        for name, entry in (content.get("examples") or {}).items():
            present, value = _example_value(resolve(doc, entry)[0])
            if present:
                yield f"{where}/examples/{name}", media_type, value
        yield from _schema_examples(doc, content.get("schema"), media_type)


def _schema_examples(
    doc: Mapping[str, Any], schema: Any, media_type: str
) -> Iterator[tuple[str, str, Any]]:
    """Examples written on the request schema itself or on the schemas its `allOf` joins."""
    node, ref = resolve(doc, schema)
    if not isinstance(node, dict):
        return
    candidates: list[tuple[str, Any]] = [(ref or "schema", node)]
    for part in node.get("allOf") or []:
        part_node, part_ref = resolve(doc, part)
        if isinstance(part_node, dict):
            candidates.append((part_ref or "schema/allOf", part_node))
    for label, candidate in candidates:
        where = f"{label.rsplit('/', 1)[-1]}"
        if "example" in candidate:
            yield f"{where}/example", media_type, candidate["example"]
        for i, value in enumerate(candidate.get("examples") or []):
            yield f"{where}/examples[{i}]", media_type, value
        for name, entry in (candidate.get("x-examples") or {}).items():
            present, value = _example_value(resolve(doc, entry)[0])
            if present:
                yield f"{where}/x-examples/{name}", media_type, value


def request_examples(spec_dir: Path = SPEC_DIR) -> list[SpecExample]:
    """Every distinct request-body example of every spec file, in file and path order."""
    found: dict[tuple[str, str, str, str], SpecExample] = {}
    for spec_op in spec_operations(spec_dir):
        for source, media_type, raw in _raw_examples(spec_op):
            value = resolve_deep(spec_op.doc, raw)
            canonical = json.dumps(value, sort_keys=True, ensure_ascii=False)
            key = (spec_op.file, spec_op.method, spec_op.template, canonical)
            seen = found.get(key)
            sources = (*seen.sources, source) if seen else (source,)
            media_types = (*seen.media_types, media_type) if seen else (media_type,)
            found[key] = SpecExample(
                spec_op.file,
                spec_op.method,
                spec_op.path,
                spec_op.operation,
                tuple(dict.fromkeys(sources)),
                tuple(dict.fromkeys(media_types)),
                value,
            )
    examples = list(found.values())
    ids = [e.id for e in examples]
    duplicated = {i for i in ids if ids.count(i) > 1}
    if duplicated:
        raise ValueError(f"example ids are not unique: {sorted(duplicated)}")
    return examples


def catalogued(examples: list[SpecExample]) -> list[SpecExample]:
    """The examples whose operation is in the catalogue (not a callback the merchant serves)."""
    return [e for e in examples if e.operation is not UNKNOWN]


# --- Headers a well-behaved merchant sends --------------------------------------------------

_TOKEN = "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJleGFtcGxlIn0.c2lnbmF0dXJl"
_IDEMPOTENCY_KEY = "7f0c5b1e-2d4a-4e8b-9c3f-1a2b3c4d5e6f"


def example_headers(example: SpecExample) -> list[tuple[str, str]]:
    """The headers a correct integration would send with this example (fake credentials)."""
    api = example.operation.api
    headers = [
        ("Content-Type", example.content_type),
        ("Ocp-Apim-Subscription-Key", "0123456789abcdef0123456789abcdef"),
        ("Merchant-Serial-Number", "123456"),
        ("Vipps-System-Name", "acme-shop"),
        ("Vipps-System-Version", "3.1.2"),
        ("Vipps-System-Plugin-Name", "acme-vipps-plugin"),
        ("Vipps-System-Plugin-Version", "4.5.6"),
    ]
    if api == "checkout":
        headers += [
            ("client_id", "fb492b5e-7907-4d83-ba20-c7fb60ca35de"),
            ("client_secret", "Y8Kteew6GE2ZmeycEt6egg=="),
        ]
    else:
        headers.append(("Authorization", _TOKEN))
    if api in ("epayment", "recurring"):
        headers.append(("Idempotency-Key", _IDEMPOTENCY_KEY))
    if api == "ecom" and example.operation.name != "initiate_payment":
        headers.append(("X-Request-Id", "order-123456-1"))
    return headers
