"""Rules on the shape of a JSON request body: it parses, names each key once, is an object,
spells known fields in their exact letter case, and carries the fields its operation requires.

Which operations take a JSON body, and the fields of each object in it, come from
`policies.catalogue.request_fields`, generated from the OpenAPI files, through each operation's
catalogue entry. An operation that takes no JSON body
(every GET, the access token POST) is never checked: Vipps ignores what such a request carries.
Unknown fields are never findings, for Vipps ignores them too; a field that Vipps knows, spelled
in another letter case, is one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

from policies.catalogue.operations import Operation
from policies.catalogue.request_fields import ObjectFields, RequestBody
from policies.catalogue.spec import spec_of
from policies.core.jsonbody import Path, format_path
from policies.core.model import (
    Action,
    AuditedRequest,
    Condition,
    Finding,
    JsonValue,
    Source,
    describe_value,
)
from policies.rules.evidence import (
    CHECKOUT_FIELD_REQUIRED,
    ECOM_INVALID_REQUEST,
    EPAYMENT_MALFORMED_BODY,
    EPAYMENT_MISSING_PARAMETER,
    GUARD_DUPLICATE_KEY,
    KB_HTTP_500,
    RECURRING_VALIDATION_ERROR,
)

__all__ = ["BodyIsJson", "BodyIsObject", "FieldNameCase", "NoDuplicateKeys", "RequiredFields"]

_ROOT: Path = ()
_MISSING_PARAMETER = 'Vipps answers "Missing required parameter" without it'

# Fields Vipps accepts under another name than the one a spec requires: a required field is
# present when any of its names is. Order lines carry the tax as `taxRate` (hundredths of a
# percent, the name of the ePayment and Order Management receipts [EP
# #/components/schemas/OrderLine/properties/taxRate]) or `taxPercentage` (whole percent, the
# Checkout v3 name [CO #/components/schemas/OrderLine/properties/taxPercentage]); the official
# WooCommerce plugin sends Checkout `taxRate`, and Vipps accepts it (facts §7).
OTHER_NAMES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"taxPercentage": ("taxRate",), "taxRate": ("taxPercentage",)}
)
# Requirements that hold for one variant of a request only: (operation key, object path) ->
# (the field naming the variant, the variant they hold for, the fields). Checkout v3 requires
# `transaction` of a payment session; newer docs also create sessions of other types (for
# subscriptions), which the 2023 spec does not describe, so there it is left to Vipps.
VARIANT_REQUIRED: Mapping[tuple[str, Path], tuple[str, str, frozenset[str]]] = MappingProxyType(
    {("checkout.create_session", _ROOT): ("type", "PAYMENT", frozenset({"transaction"}))}
)


def _objects(
    request: AuditedRequest, body: RequestBody
) -> Iterator[tuple[Path, ObjectFields, dict[str, JsonValue]]]:
    """Every object in the request body that the table describes, with its path and fields."""
    if not isinstance(request.field(_ROOT), dict):
        return
    for pattern, fields in body.objects.items():
        for at, node in request.json.walk(pattern):
            if isinstance(node, dict):
                yield at, fields, node


def _names(names: tuple[str, ...]) -> str:
    return " or ".join(f"`{name}`" for name in names)


@dataclass(frozen=True, slots=True)
class BodyIsJson:
    """A non-empty body sent to an operation that takes JSON must be valid JSON in UTF-8.

    Vipps answers a body it cannot parse with HTTP 400 and no error code (ePayment [EPDOC faq.md])
    or with HTTP 500 (eCom: invalid JSON heads [KB errors.md §Why do I get HTTP 500]). An operation
    takes JSON when every spec that describes it has a JSON `requestBody`, e.g. [EC
    #/paths/~1ecomm~1v2~1payments/post/requestBody]. ePayment cancel does not count: its body
    is optional in 1.8.1 [EP #/paths/~1v1~1payments~1{Reference}~1cancel/post/requestBody] and
    absent in 1.4.1, so Vipps may well ignore it.
    """

    code: ClassVar[str] = "body.invalid_json"
    default_action: ClassVar[Action] = Action.BLOCK
    can_repair: ClassVar[bool] = False
    summary: ClassVar[str] = (
        "A body sent to an operation that takes JSON must be valid JSON in UTF-8."
    )
    conditions: ClassVar[tuple[Condition, ...]] = (
        Condition("invalid_json", Action.BLOCK, (EPAYMENT_MALFORMED_BODY, KB_HTTP_500)),
    )

    def applies_to(self, operation: Operation) -> bool:
        return spec_of(operation).body is not None

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        error = request.json.error
        if error is not None:
            expected = "valid JSON (RFC 8259) encoded as UTF-8"
            yield Finding(
                self.code,
                Source.BODY,
                format_path(_ROOT),
                error,
                expected,
                condition="invalid_json",
            )


@dataclass(frozen=True, slots=True)
class NoDuplicateKeys:
    """No JSON object in a body sent to an operation that takes JSON may name a key twice.

    RFC 8259 §4 leaves duplicates to the parser; parsers differ on which one wins, so a body
    with `"value"` twice could be checked here with one amount and charged at Vipps with the
    other. The specs describe each field once (e.g. [EP #/components/schemas/Amount]). Keys of
    free maps such as ePayment `metadata` count too.
    """

    code: ClassVar[str] = "body.duplicate_key"
    default_action: ClassVar[Action] = Action.BLOCK
    can_repair: ClassVar[bool] = False
    summary: ClassVar[str] = (
        "No JSON object in the body may name a key twice (parsers disagree on which wins)."
    )
    conditions: ClassVar[tuple[Condition, ...]] = (
        Condition("duplicate_key", Action.BLOCK, (GUARD_DUPLICATE_KEY,)),
    )

    def applies_to(self, operation: Operation) -> bool:
        return spec_of(operation).body is not None

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        for at in request.json.duplicate_keys:
            yield Finding(
                self.code,
                Source.BODY,
                format_path(at),
                "appears more than once in the same object",
                "each key once (parsers disagree on which duplicate wins)",
                condition="duplicate_key",
            )


@dataclass(frozen=True, slots=True)
class BodyIsObject:
    """The body of an operation whose request schema is an object must be a JSON object.

    Every JSON request body in the Vipps specs is an object (`type: object`), e.g. [EP
    #/components/schemas/CreatePaymentRequest], [RC #/components/schemas/CreateChargeV3].
    """

    code: ClassVar[str] = "body.not_object"
    default_action: ClassVar[Action] = Action.BLOCK
    can_repair: ClassVar[bool] = False
    summary: ClassVar[str] = (
        "The body must be a JSON object where the operation's schema is an object."
    )
    conditions: ClassVar[tuple[Condition, ...]] = (
        Condition("not_object", Action.BLOCK, (EPAYMENT_MALFORMED_BODY, KB_HTTP_500)),
    )

    def applies_to(self, operation: Operation) -> bool:
        body = spec_of(operation).body
        return body is not None and body.object_root

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        if not request.json.present:
            return
        value = request.field(_ROOT)
        if not isinstance(value, dict):
            yield Finding(
                self.code,
                Source.BODY,
                format_path(_ROOT),
                f"is a JSON {describe_value(value)}, not an object",
                "a JSON object, {...}, as the operation's request schema describes",
                condition="not_object",
            )


@dataclass(frozen=True, slots=True)
class FieldNameCase:
    """A key that is not a field of its object, but is one when letter case is ignored, is wrong.

    Vipps matches field names exactly: `fallback` for eCom's `fallBack` gives HTTP 500 [KB
    errors.md §Why do I get HTTP 500], [EC #/components/schemas/MerchantInfo/properties/fallBack].
    A parser that ignores case would instead read it as the field, so the key is a finding even
    next to the rightly spelled field: one of the two values would be silently dropped. Known
    fields per object come from the specs (`policies.catalogue.request_fields`); unknown keys that
    match no field are never findings, and map objects such as ePayment `metadata` are not looked
    into. Only eCom is documented to fail on case; the newer APIs may bind names case-insensitively,
    so there the finding is advice, never a block.
    """

    code: ClassVar[str] = "body.field_case"
    default_action: ClassVar[Action] = Action.BLOCK
    can_repair: ClassVar[bool] = False
    summary: ClassVar[str] = (
        "Known field names must be spelled in their exact case (fallBack, not fallback)."
    )
    conditions: ClassVar[tuple[Condition, ...]] = (
        Condition("ecom", Action.BLOCK, (KB_HTTP_500,)),
        Condition(
            "other_api",
            Action.REPORT,
            why="advice: the newer APIs may bind names ignoring case; no rejection is documented",
        ),
    )

    def applies_to(self, operation: Operation) -> bool:
        body = spec_of(operation).body
        return body is not None and bool(body.objects)

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        body = spec_of(request.operation).body
        if body is None:
            return
        for at, fields, node in _objects(request, body):
            for key in node:
                variants = fields.case_variants(key)
                if not variants:
                    continue
                present = tuple(v for v in variants if v in node)
                problem = (
                    f"is sent next to {_names(present)}, which differs only in letter case"
                    if present
                    else f"is not a field of this object; {_names(variants)} is"
                )
                expected = f"{_names(variants)} exactly (field names are case-sensitive)"
                yield Finding(
                    self.code,
                    Source.BODY,
                    format_path((*at, key)),
                    problem,
                    expected,
                    advisory=request.operation.api != "ecom",
                    condition="ecom" if request.operation.api == "ecom" else "other_api",
                )


@dataclass(frozen=True, slots=True)
class RequiredFields:
    """Every field the operation's spec requires must be present, and not null.

    Vipps answers a missing field with "Missing required parameter" (ePayment 4140 [EPDOC
    faq.md]), e.g. `modificationAmount` on ePayment capture [EP
    #/components/schemas/CaptureModificationRequest/required] or `transaction` on eCom initiate
    [EC #/components/schemas/InitiatePaymentCommand/required]. Fields of nested objects are
    required only when their object is present. Of `oneOf`/`anyOf` branches only what every
    branch requires counts; `readOnly` fields and fields with a `default` never do; where spec
    versions differ the most lenient wins; and where Vipps' documentation drops a requirement the
    spec states (Recurring `due`, `retryDays`), so does the table. An explicit null counts as
    missing unless the field's schema allows null. An empty body counts as missing all top-level
    fields only where every spec requires a body. A field Vipps also accepts under another name
    (`taxRate` for `taxPercentage`, `OTHER_NAMES`) is present under either; a requirement of one
    variant only (`VARIANT_REQUIRED`) is judged for that variant. It blocks where the API
    documents refusing a missing field (ePayment, Checkout, Recurring, eCom) and only reports
    elsewhere.
    """

    code: ClassVar[str] = "body.missing_field"
    default_action: ClassVar[Action] = Action.BLOCK
    can_repair: ClassVar[bool] = False
    summary: ClassVar[str] = "Fields the operation's spec requires must be present and not null."
    conditions: ClassVar[tuple[Condition, ...]] = (
        Condition("epayment", Action.BLOCK, (EPAYMENT_MISSING_PARAMETER,)),
        Condition("checkout", Action.BLOCK, (CHECKOUT_FIELD_REQUIRED,)),
        Condition("recurring", Action.BLOCK, (RECURRING_VALIDATION_ERROR,)),
        Condition("ecom", Action.BLOCK, (ECOM_INVALID_REQUEST,)),
        Condition(
            "other_api",
            Action.REPORT,
            why="Order Management, Webhooks and the rest: only the spec's `required` keyword",
        ),
    )

    def applies_to(self, operation: Operation) -> bool:
        body = spec_of(operation).body
        return body is not None and any(f.required for f in body.objects.values())

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        body = spec_of(request.operation).body
        if body is None or request.json.error is not None:
            return
        api = request.operation.api
        condition = api if api in ("epayment", "checkout", "recurring", "ecom") else "other_api"
        key = request.operation.key
        if not request.json.present:
            root = body.objects.get(_ROOT)
            if body.required and root is not None:
                yield from self._judge(_ROOT, root, {}, condition, key)
            return
        for at, fields, node in _objects(request, body):
            yield from self._judge(at, fields, node, condition, key)

    def _judge(
        self,
        at: Path,
        fields: ObjectFields,
        node: dict[str, JsonValue],
        condition: str,
        key: str,
    ) -> Iterator[Finding]:
        variant = VARIANT_REQUIRED.get((key, at))
        exempt: frozenset[str] = frozenset()
        if variant is not None and node.get(variant[0], variant[1]) != variant[1]:
            exempt = variant[2]
        for name in sorted(fields.required - exempt):
            if _present(node, name, fields):
                continue
            if any(_present(node, other, fields) for other in OTHER_NAMES.get(name, ())):
                continue
            if name in node:
                problem, sent = "is required but null", "null"
            else:
                misspelled = [k for k in node if k.casefold() == name.casefold()]
                problem = "is required but missing" + (
                    f" (sent as {_names(tuple(misspelled))})" if misspelled else ""
                )
                sent = None
            expected = f"a value; {_MISSING_PARAMETER}"
            yield Finding(
                self.code,
                Source.BODY,
                format_path((*at, name)),
                problem,
                expected,
                sent,
                condition=condition,
            )


def _present(node: dict[str, JsonValue], name: str, fields: ObjectFields) -> bool:
    """Whether `name` is sent with a value (or as null where its schema allows null)."""
    return name in node and (node[name] is not None or name in fields.nullable)
