"""Validate fast, explain only on failure: one compiled validator per operation's JSON body.

Most requests are clean. For each catalogued operation that takes a JSON object, a pydantic-core
`SchemaValidator` is compiled once, from the same data the body rules read (`request_fields`,
`money_fields`, the currency policies, `phones`, `references`, `urls`, `express`). One call of
it proves that a parsed body holds nothing any body rule would report: integer amounts within
every limit (and the configured house bounds), currencies the API takes, phone numbers already in
the API's exact form and known to libphonenumber, ids matching their format, https URLs on public
host names, required fields present, no key outside its object's known fields (so no wrong-case
key), no express payment without the explicit flow, no id echoed next to the path's.

Only when the validator cannot prove a body clean do the detailed rules run, so every message
and repair stays exactly as the rules write them. The validator is deliberately stricter than
the rules (unknown keys, http URLs, IP hosts, app schemes, integral floats, amounts near a
currency-dependent limit all fall to the rules): being wrong that way only costs the slow path.
It must never pass a body that a covered rule would report; `tests/policies/test_fast_path.py`
checks that differentially.

Duplicate keys and invalid JSON are judged on the exact parse (`policies.core.jsonbody`) before the
validator runs: a native parser would silently keep the last duplicate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic_core import SchemaValidator, ValidationError
from pydantic_core import core_schema as cs

from policies.catalogue.id_fields import IdFormat
from policies.catalogue.money_fields import INT64, MoneyField
from policies.catalogue.operations import OPERATIONS, Operation
from policies.catalogue.phone_fields import PhoneField
from policies.catalogue.request_fields import (
    ObjectFields,
    RequestBody,
)
from policies.catalogue.spec import PAYMENT_TYPE, spec_of
from policies.core.jsonbody import Path
from policies.core.model import AuditedRequest, Rule
from policies.rules.amounts import (
    AmountBounds,
    AmountIsInteger,
    AmountWithinLimits,
    CurrencyAllowed,
    accepted_currencies,
)
from policies.rules.body_shape import (
    BodyIsJson,
    BodyIsObject,
    FieldNameCase,
    NoDuplicateKeys,
    RequiredFields,
)
from policies.rules.express import ExplicitCheckoutFlow
from policies.rules.phones import PhoneNumberFormat, PhoneNumberRecognised
from policies.rules.phones import is_clean_phone as _is_clean_phone
from policies.rules.references import ReferenceFormat, ReferenceMismatch
from policies.rules.urls import CallbackIsHttps, LocalhostUrl

__all__ = ["COVERED_RULES", "BodyFacts", "BodyValidators", "body_facts", "compile_validator"]

# The rules whose every finding the validator proves absent, by class: a rule of another class
# with the same code (a test double, a future variant) is never skipped.
COVERED_RULES: Mapping[str, type] = {
    "body.invalid_json": BodyIsJson,
    "body.duplicate_key": NoDuplicateKeys,
    "body.not_object": BodyIsObject,
    "body.field_case": FieldNameCase,
    "body.missing_field": RequiredFields,
    "amount.not_integer": AmountIsInteger,
    "amount.limits": AmountWithinLimits,
    "amount.currency": CurrencyAllowed,
    "amount.bounds": AmountBounds,
    "phone.format": PhoneNumberFormat,
    "phone.unrecognised": PhoneNumberRecognised,
    "reference.format": ReferenceFormat,
    "reference.mismatch": ReferenceMismatch,
    "url.not_https": CallbackIsHttps,
    "url.localhost": LocalhostUrl,
    "express.explicit_flow": ExplicitCheckoutFlow,
}


@dataclass(frozen=True, slots=True)
class BodyFacts:
    """What the body rules know about one operation's JSON body: the validator's only input.

    `body_facts` fills it from the operation's catalogue entry, the same one the rules read.
    """

    key: str
    body: RequestBody
    money: tuple[MoneyField, ...] = ()
    currencies: frozenset[str] | None = None
    phones: tuple[PhoneField, ...] = ()
    ids: tuple[tuple[Path, IdFormat], ...] = ()
    path_id: bool = False
    echoed: tuple[Path, ...] = ()
    urls: tuple[Path, ...] = ()
    express: bool = False


def body_facts(operation: Operation) -> BodyFacts | None:
    """The body facts of one operation (from its catalogue entry), or None when it takes no
    JSON object."""
    spec = spec_of(operation)
    body = spec.body
    if body is None or not body.object_root:
        return None
    return BodyFacts(
        key=spec.key,
        body=body,
        money=spec.money,
        currencies=accepted_currencies(operation.api),
        phones=spec.phones,
        ids=spec.body_ids,
        path_id=spec.path_id is not None,
        echoed=spec.echoed_id.body_paths if spec.echoed_id is not None else (),
        urls=tuple(f.path for f in spec.urls.fields) if spec.urls is not None else (),
        express=spec.express,
    )


# --- Compiling ----------------------------------------------------------------------------------

# An https URL on a host name with a letter-only top-level label (so never an IP address), not
# `localhost`, `*.localhost` or `localhost.localdomain`, with at most a 4-digit port, no
# whitespace or backslash: the form every URL field of every API accepts (`policies.rules.urls`).
_CLEAN_URL = (
    r"^https://"
    r"(?!(?i:(?:[a-z0-9-]+\.)*localhost|localhost\.localdomain)(?:[:/?#]|\Z))"
    r"(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,63}"
    r"(?::[0-9]{1,4})?"
    r"(?:[/?#][^\s\\]*)?\Z"
)
_REGULAR_PAYMENT = "eComm Regular Payment"


@dataclass
class _Node:
    """One object of the body: its known fields (None: an open object) and constrained children."""

    fields: ObjectFields | None = None
    children: dict[str, _Node] = field(default_factory=dict)
    items: dict[str, _Node] = field(default_factory=dict)  # child name -> node of its array items
    leaves: dict[str, list[cs.CoreSchema]] = field(default_factory=dict)


def _node_at(root: _Node, path: Path) -> _Node | None:
    """The node of the object at `path` (`*` steps are array items), made on the way."""
    node = root
    steps = list(path)
    while steps:
        name = steps.pop(0)
        if not isinstance(name, str) or name == "*":
            return None  # a pattern that starts with an array item: not an object path
        depth = 0
        while steps and steps[0] == "*":
            steps.pop(0)
            depth += 1
        if depth > 1:
            return None  # arrays of arrays: none in the tables, so no fast path for them
        table = node.items if depth else node.children
        node = table.setdefault(name, _Node())
    return node


def _money_schema(money: MoneyField, bounds: Mapping[str, tuple[int, int]]) -> cs.CoreSchema:
    """A strict integer within every limit the rules could apply, whatever the currency."""
    floors = [money.minimum, *money.currency_minimum.values()]
    low = max((f for f in floors if f is not None), default=INT64[0])
    high = money.maximum if money.maximum is not None else INT64[1]
    if money.main and bounds:
        judged = (
            [bounds[money.fixed_currency]]
            if money.fixed_currency is not None and money.fixed_currency in bounds
            else []
            if money.fixed_currency is not None
            else list(bounds.values())
        )
        for bound_low, bound_high in judged:
            low, high = max(low, bound_low), min(high, bound_high)
    return cs.int_schema(strict=True, ge=max(low, INT64[0]), le=min(high, INT64[1]))


def _id_schema(fmt: IdFormat) -> cs.CoreSchema:
    head = f"[{fmt.allowed}]"
    pattern = f"^{head}+$" if fmt.whole else f"^{head}"
    return cs.str_schema(
        strict=True, min_length=max(fmt.min_length, 1), max_length=fmt.max_length, pattern=pattern
    )


def _phone_schema(phone: PhoneField) -> cs.CoreSchema:
    fmt = phone.format

    def clean(value: str) -> str:
        if not _is_clean_phone(value, fmt):
            raise ValueError("not a clean phone number")
        return value

    return cs.no_info_after_validator_function(clean, cs.str_schema(strict=True))


def _constrain(root: _Node, path: Path, schema: cs.CoreSchema) -> None:
    parent = _node_at(root, path[:-1])
    name = path[-1] if path else None
    if parent is None or not isinstance(name, str) or name == "*":
        # Only fields of objects can be proven; a table entry of another shape makes the
        # whole operation fall back to the rules.
        raise _Unprovable(path)
    parent.leaves.setdefault(name, []).append(schema)


class _Unprovable(Exception):
    """A fact the validator cannot express: the operation gets no fast path."""


def _tree(facts: BodyFacts, bounds: Mapping[str, tuple[int, int]]) -> _Node:
    root = _Node()
    for pattern, fields in facts.body.objects.items():
        node = _node_at(root, pattern)
        if node is None:
            raise _Unprovable(pattern)
        node.fields = fields
    for money in facts.money:
        _constrain(root, money.pattern, _money_schema(money, bounds))
        if money.currency is not None:
            if facts.currencies is None:
                raise _Unprovable(money.currency)
            currency = cs.literal_schema(sorted(facts.currencies))
            _constrain(root, money.currency, currency)
    for phone in facts.phones:
        _constrain(root, phone.path, _phone_schema(phone))
    for pattern, fmt in facts.ids:
        _constrain(root, pattern, _id_schema(fmt))
    for pattern in facts.echoed:
        # An id echoed next to the path's may disagree with it: only its absence is proven.
        _constrain(root, pattern, cs.none_schema())
    for pattern in facts.urls:
        url = cs.str_schema(strict=True, pattern=_CLEAN_URL, regex_engine="python-re")
        _constrain(root, pattern, url)
    if facts.express:
        # The explicit-flow flag matters only for express payments, which are left to the rule.
        _constrain(root, PAYMENT_TYPE, cs.literal_schema([_REGULAR_PAYMENT]))
    return root


# Any JSON value but null: what a required field with no other constraint must hold.
_NOT_NULL = cs.union_schema(
    [
        cs.str_schema(strict=True),
        cs.int_schema(strict=True),
        cs.bool_schema(strict=True),
        cs.dict_schema(strict=True),
        cs.list_schema(strict=True),
        cs.is_instance_schema(Decimal),
    ]
)


def _leaf(schemas: list[cs.CoreSchema]) -> cs.CoreSchema:
    return schemas[0] if len(schemas) == 1 else cs.chain_schema(schemas)


def _object_schema(node: _Node) -> cs.CoreSchema:
    fields = node.fields
    known = fields.known if fields is not None else frozenset()
    required = fields.required if fields is not None else frozenset()
    nullable = fields.nullable if fields is not None else frozenset()
    folded = {name.casefold() for name in known}
    names = set(known) | set(node.children) | set(node.items) | set(node.leaves)
    members: dict[str, cs.TypedDictField] = {}
    for name in sorted(names):
        if fields is not None and name not in known and name.casefold() in folded:
            # A key that is a case variant of a known field is a finding: leave it forbidden.
            continue
        parts: list[cs.CoreSchema] = []
        if name in node.children:
            parts.append(_object_schema(node.children[name]))
        if name in node.items:
            parts.append(cs.list_schema(_object_schema(node.items[name]), strict=True))
        parts.extend(node.leaves.get(name, []))
        # Null is what the rules skip, except for a required field that may not be null.
        must = name in required
        schema: cs.CoreSchema
        if not must or name in nullable:
            schema = cs.nullable_schema(_leaf(parts)) if parts else cs.any_schema()
        else:
            schema = _leaf(parts) if parts else _NOT_NULL
        members[name] = cs.typed_dict_field(schema, required=must)
    schema = cs.typed_dict_schema(members, extra_behavior="allow", strict=True)
    if fields is None:
        return schema
    # A closed object (its fields are known) admits other keys, as Vipps does, but not a case
    # variant of a known field: that is a `body.field_case` finding.
    return cs.no_info_before_validator_function(_case_variants_refused(known, folded), schema)


def _case_variants_refused(known: frozenset[str], folded: set[str]) -> Callable[[object], object]:
    folded_known = frozenset(folded)

    def refuse(value: object) -> object:
        if isinstance(value, dict):
            for key in value:
                if key not in known and isinstance(key, str) and key.casefold() in folded_known:
                    raise ValueError(f"{key!r} is a case variant of a known field")
        return value

    return refuse


def compile_validator(
    facts: BodyFacts, bounds: Mapping[str, tuple[int, int]] | None = None
) -> SchemaValidator | None:
    """The compiled validator of one operation's body, or None when it cannot be expressed."""
    try:
        root = _tree(facts, bounds or {})
    except _Unprovable:
        return None
    return SchemaValidator(_object_schema(root))


# --- Using ----------------------------------------------------------------------------------------


class BodyValidators:
    """The compiled validators of every operation, and which of `rules` each lets the engine skip.

    Built from the engine's rules, so the house bounds the validator applies are the ones
    `amount.bounds` was configured with.
    """

    def __init__(
        self,
        rules: Sequence[Rule],
        facts: Callable[[Operation], BodyFacts | None] = body_facts,
    ) -> None:
        self._bounds: Mapping[str, tuple[int, int]] = {}
        for rule in rules:
            if isinstance(rule, AmountBounds):
                self._bounds = rule.bounds
        self._facts = facts
        self._validators: dict[Operation, tuple[Callable[[Any], Any], frozenset[str]] | None] = {}
        # Compiled at start-up, so no request waits for its operation's validator.
        for operation in OPERATIONS:
            self._plan(operation)

    def covered(self, operation: Operation) -> frozenset[str]:
        """The rule codes a proven body cannot trip for `operation` (empty: no fast path)."""
        plan = self._plan(operation)
        return plan[1] if plan is not None else frozenset()

    def skippable(self, operation: Operation, rules: Iterable[Rule]) -> tuple[Rule, ...] | None:
        """`rules` without those a proven body cannot trip, or None when nothing can be skipped."""
        codes = self.covered(operation)
        kept = tuple(
            r for r in rules if not (r.code in codes and isinstance(r, COVERED_RULES[r.code]))
        )
        return kept if codes else None

    def proves_clean(self, request: AuditedRequest) -> bool:
        """Whether the body is proven to give no finding of any covered rule."""
        plan = self._plan(request.operation)
        body = request.json
        if plan is None or body.error is not None or body.duplicate_keys or not body.present:
            return False
        try:
            plan[0](body.value)
        except ValidationError:
            return False
        return True

    def _plan(self, operation: Operation) -> tuple[Callable[[Any], Any], frozenset[str]] | None:
        if operation in self._validators:
            return self._validators[operation]
        facts = self._facts(operation)
        validator = compile_validator(facts, self._bounds) if facts is not None else None
        plan = None
        if facts is not None and validator is not None:
            codes = set(COVERED_RULES)
            if facts.path_id:
                codes.discard("reference.format")  # it judges the path's id too
            plan = (validator.validate_python, frozenset(codes))
        self._validators[operation] = plan
        return plan
