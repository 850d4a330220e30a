"""The values that policy rules work on: the audited request, findings, actions and the verdict.

Everything here is immutable and free of I/O, so a rule is tested as a plain function call.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol, TypeAlias

from policies.catalogue.operations import UNKNOWN, Operation, identify
from policies.core.jsonbody import NO_BODY, JsonBody, JsonValue, Path, format_path, parse_body

__all__ = [
    "Action",
    "AuditedRequest",
    "Condition",
    "Decision",
    "Evidence",
    "Finding",
    "Headers",
    "JsonValue",
    "Outcome",
    "Path",
    "Repair",
    "Rule",
    "RuleFailure",
    "Source",
    "Verdict",
    "audited_request",
    "describe_value",
    "format_path",
    "shown",
]


class Action(StrEnum):
    """What a rule's finding makes the proxy do (configured per rule)."""

    BLOCK = "block"
    REPAIR = "repair"
    REPORT = "report"
    OFF = "off"


class Outcome(StrEnum):
    """What actually happened to a finding; the `action` label of the findings metric."""

    BLOCKED = "blocked"
    WOULD_BLOCK = "would_block"
    # Report mode: a finding `enforce` would repair (forwarded unchanged, nothing blocked).
    WOULD_REPAIR = "would_repair"
    REPAIRED = "repaired"
    REPORTED = "reported"


class Source(StrEnum):
    """Where in the request a finding points."""

    BODY = "body"
    HEADER = "header"
    PATH = "path"
    QUERY = "query"


class Headers(Mapping[str, str]):
    """An immutable, case-insensitive view of request headers (first value of each name wins).

    HTTP header names are case-insensitive; Vipps' own gateway treats them so. Values are kept
    exactly as sent.
    """

    __slots__ = ("_items", "repeated")

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        items: dict[str, str] = {}
        repeated: set[str] = set()
        for name, value in pairs:
            low = name.lower()
            if low in items:
                repeated.add(low)
            else:
                items[low] = value
        self._items = items
        # Names sent more than once (in any spelling): the rules judge only the first value.
        self.repeated = frozenset(repeated)

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return self._items.get(name.lower(), default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({sorted(self._items)!r})"


@dataclass(frozen=True, slots=True)
class AuditedRequest:
    """One request from the merchant, as the rules see it.

    `body` holds the exact bytes received; `json` holds them parsed once (only for operations of
    the catalogue that take a JSON body), with floats as `Decimal` so that `49900.0000001` is
    kept exactly as written.
    """

    method: str
    path: str
    query: str
    headers: Headers
    body: bytes
    operation: Operation
    path_params: Mapping[str, str]
    json: JsonBody
    # What the payment-level audit derives from the request (its payment key, the digests of
    # its idempotency scope and body), derived once however many rules ask.
    derived: dict[object, Any] = field(default_factory=dict, init=False, compare=False, repr=False)

    @property
    def api(self) -> str:
        return self.operation.api

    def field(self, path: Path) -> JsonValue | None:
        """The body value at `path`, or None when any step of it is absent."""
        return self.json.get(path)


@dataclass(frozen=True, slots=True)
class Repair:
    """A safe fix: replace the body value at `path` with `value` (only that value changes)."""

    path: Path
    value: JsonValue


@dataclass(frozen=True, slots=True)
class Evidence:
    """A documented reason to believe Vipps rejects a request: where it is written, and what.

    `source` cites it as the fact sheet does (`[EPDOC faq.md §What do all the errors mean]`, a
    spec pointer, an error code with its page, a URL); `says` quotes or paraphrases it in one
    line.
    """

    source: str
    says: str


@dataclass(frozen=True, slots=True)
class Condition:
    """One way a rule finds fault, with the action it takes by default and why.

    A condition blocks by default only with documented evidence that Vipps rejects such a
    request (an error code, a statement in Vipps' docs); one whose only support is a schema
    keyword, or that a production integration is known to send successfully, reports
    (`would_block`) and says in `why` what holds it back.
    """

    name: str
    action: Action
    evidence: tuple[Evidence, ...] = ()
    why: str = ""


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a rule found wrong with a request.

    `value` is a short, display-safe rendering of what was sent (rules mask personal data
    themselves); `expected` says what the API accepts. `advisory` findings note something worth
    knowing that Vipps itself would accept; they are never blocked.
    """

    rule: str
    source: Source
    field: str
    problem: str
    expected: str
    value: str | None = None
    repair: Repair | None = None
    advisory: bool = False
    # The status Vipps itself would answer: 400 for validation, 409 for a reused
    # idempotency key, 429 (with Retry-After seconds) for a rate limit.
    status: int = 400
    retry_after: float | None = None
    # Which of the rule's declared conditions this is; it chooses the default action.
    condition: str = ""

    @property
    def message(self) -> str:
        """One sentence: where, what was wrong, what is expected."""
        sent = f" (sent {self.value})" if self.value is not None else ""
        return f"{self.field}: {self.problem}{sent}; expected {self.expected}"


class Rule(Protocol):
    """A policy rule: a stable code, its declared conditions, and a pure check over a request.

    `default_action` is the action of findings that name no condition (a rule that declares
    none); a rule that declares conditions takes each finding's default from its condition.
    Each rule class declares `code`, `default_action`, `can_repair`, `summary` and `conditions`
    in that order, as `ClassVar`-annotated attributes of its own class.
    """

    @property
    def code(self) -> str:
        """Stable dotted code, e.g. `amount.not_integer`; the same in responses, logs, metrics."""
        ...

    @property
    def default_action(self) -> Action:
        """The action in `enforce` mode unless overridden by settings."""
        ...

    @property
    def can_repair(self) -> bool:
        """Whether the rule offers repairs, so that `repair` is a valid action for it."""
        ...

    @property
    def summary(self) -> str:
        """One line for the README and start-up validation messages."""
        ...

    @property
    def conditions(self) -> tuple[Condition, ...]:
        """Each condition the rule's findings name, with its default action and evidence."""
        ...

    def applies_to(self, operation: Operation) -> bool:
        """Whether the rule has anything to check for this operation (asked once each)."""
        ...

    def check(self, request: AuditedRequest) -> Iterable[Finding]:
        """Return the findings for this request (empty when it is fine)."""
        ...


@dataclass(frozen=True, slots=True)
class Decision:
    """A finding with what the engine did about it."""

    finding: Finding
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class RuleFailure:
    """A rule that raised instead of answering; the engine records it and fails closed or open."""

    rule: str
    error: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """The engine's answer for one request."""

    decisions: tuple[Decision, ...] = ()
    body: bytes | None = None
    failures: tuple[RuleFailure, ...] = ()
    fail_closed: bool = False

    @property
    def blocked(self) -> bool:
        return self.fail_closed or any(d.outcome is Outcome.BLOCKED for d in self.decisions)

    @property
    def repaired(self) -> bool:
        return self.body is not None

    @property
    def rule_codes(self) -> tuple[str, ...]:
        """The distinct rule codes of all findings, in first-seen order."""
        return tuple(dict.fromkeys(d.finding.rule for d in self.decisions))


ALLOWED: Verdict = Verdict()

ValueLike: TypeAlias = JsonValue | float


def shown(text: str, limit: int = 60) -> str:
    """A value as quoted in a finding: repr, cut to `limit` characters with an ellipsis."""
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def describe_value(value: ValueLike) -> str:
    """Name the JSON kind of a value, for findings (`float`, `string`, `boolean`, ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, Decimal | float):
        if isinstance(value, Decimal) and not value.is_finite():
            return "non-finite number"
        return "number with a fraction" if value != int(value) else "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def audited_request(
    method: str,
    path: str,
    headers: Iterable[tuple[str, str]] | Headers,
    body: bytes = b"",
    query: str = "",
) -> AuditedRequest:
    """Build the request value: identify the operation and parse the body once.

    Bodies of operations outside the catalogue are not parsed: no rule applies to them.
    """
    match = identify(method, path)
    parsed = parse_body(body) if body and match.operation is not UNKNOWN else NO_BODY
    return AuditedRequest(
        method=method.upper(),
        path=path,
        query=query,
        headers=headers if isinstance(headers, Headers) else Headers(headers),
        body=body,
        operation=match.operation,
        path_params=match.params,
        json=parsed,
    )
