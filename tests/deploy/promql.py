"""A small PromQL reader for the deploy tests: parse an expression and check its names.

promtool checks syntax but not whether a query names metrics and labels that exist, and there
is no PromQL parser for Python, so this module carries one for the subset of the language that
rules and dashboards use (selectors, aggregations, functions, binary operators with vector
matching, ranges, subqueries, offset and @). `check(expr, metrics)` walks the tree and infers
the label names that each part's result series carry, the way Prometheus' engine assigns them,
and reports:

- a metric name that is neither exported nor recorded;
- a label matcher, grouping label or vector-matching label that the series there do not carry;
- an `le` matcher that no bucket bound of the histogram satisfies;
- a one-to-one vector match without `on`/`ignoring` between sides whose label sets differ
  (Prometheus would match nothing, silently).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

AGGREGATIONS = frozenset(
    {
        "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
        "bottomk", "topk", "quantile", "limitk", "limit_ratio",
    }
)  # fmt: skip
# Aggregations whose result keeps every label of the input series.
_KEEP_ALL = frozenset({"topk", "bottomk", "limitk", "limit_ratio"})
# Functions that return a scalar, or an instant vector with no labels.
_SCALAR_FUNCTIONS = frozenset({"scalar", "time", "pi"})
_NO_LABEL_FUNCTIONS = frozenset({"vector"})
_PRECEDENCE = {
    "or": 1,
    "and": 2,
    "unless": 2,
    "==": 3,
    "!=": 3,
    "<=": 3,
    "<": 3,
    ">=": 3,
    ">": 3,
    "+": 4,
    "-": 4,
    "*": 5,
    "/": 5,
    "%": 5,
    "atan2": 5,
    "^": 6,
}
_SET_OPERATORS = frozenset({"and", "or", "unless"})
_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<duration>(?:\d+(?:ms|[smhdwy]))+)(?![\w.])
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_][\w:]*)
  | (?P<op>=~|!~|==|!=|<=|>=|[-+*/%^<>=(){}\[\],:@])
    """,
    re.VERBOSE,
)


class PromQLSyntaxError(ValueError):
    """The expression is not PromQL this reader understands."""


@dataclass(frozen=True)
class MetricInfo:
    """What a series name carries: its label names and, for `_bucket` series, the `le` bounds."""

    labels: frozenset[str]
    buckets: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Token:
    """One lexical token: its kind (a group name of _TOKEN) and its text."""

    kind: str
    text: str


def tokenize(expr: str) -> list[Token]:
    """Split an expression into tokens; unknown characters raise PromQLSyntaxError."""
    tokens = []
    pos = 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            raise PromQLSyntaxError(f"unexpected {expr[pos : pos + 10]!r} at {pos}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(Token(kind, match.group()))
        pos = match.end()
    return tokens


@dataclass
class Node:
    """A parsed expression; subclasses below."""


@dataclass
class Literal(Node):
    """A number or a string."""

    kind: str  # "scalar" or "string"
    value: str


@dataclass
class Selector(Node):
    """A vector selector: metric name and (label, operator, value) matchers."""

    name: str | None
    matchers: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class Aggregate(Node):
    """An aggregation such as `sum by (api) (...)`; `args` ends with the aggregated vector."""

    op: str
    grouping: list[str]
    without: bool
    args: list[Node]


@dataclass
class Call(Node):
    """A function call."""

    func: str
    args: list[Node]


@dataclass
class Binary(Node):
    """A binary operation with its vector-matching modifiers."""

    op: str
    lhs: Node
    rhs: Node
    matching: str | None = None  # "on" or "ignoring"
    matching_labels: list[str] = field(default_factory=list)
    group: str | None = None  # "group_left" or "group_right"
    include: list[str] = field(default_factory=list)


@dataclass
class Unary(Node):
    """A unary minus or plus."""

    expr: Node


class _Parser:
    def __init__(self, expr: str) -> None:
        self.tokens = tokenize(expr)
        self.pos = 0

    def peek(self, offset: int = 0) -> Token | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def next(self) -> Token:
        token = self.peek()
        if token is None:
            raise PromQLSyntaxError("unexpected end of expression")
        self.pos += 1
        return token

    def accept(self, text: str) -> bool:
        token = self.peek()
        if token is not None and token.text == text and token.kind in {"op", "ident"}:
            self.pos += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            got = self.peek()
            raise PromQLSyntaxError(f"expected {text!r}, got {got.text if got else 'end'!r}")

    def parse(self) -> Node:
        node = self.expression(1)
        if self.peek() is not None:
            raise PromQLSyntaxError(f"unexpected {self.next().text!r}")
        return node

    def expression(self, min_precedence: int) -> Node:
        """Precedence climbing: binary operators of at least `min_precedence` bind here."""
        lhs = self.unary()
        while True:
            token = self.peek()
            if token is None or token.kind not in {"op", "ident"}:
                return lhs
            op = token.text
            precedence = _PRECEDENCE.get(op, 0)
            if precedence < min_precedence or not precedence:
                return lhs
            self.pos += 1
            node = Binary(op, lhs, Literal("scalar", "0"))
            self.accept("bool")
            if self.peek_text() in {"on", "ignoring"}:
                node.matching = self.next().text
                node.matching_labels = self.label_list()
            if self.peek_text() in {"group_left", "group_right"}:
                node.group = self.next().text
                if self.peek_text() == "(":
                    node.include = self.label_list()
            # `^` is right-associative; every other operator is left-associative.
            node.rhs = self.expression(precedence if op == "^" else precedence + 1)
            lhs = node

    def peek_text(self) -> str:
        token = self.peek()
        return token.text if token is not None else ""

    def unary(self) -> Node:
        if self.peek_text() in {"-", "+"}:
            self.next()
            return Unary(self.unary())
        return self.postfix(self.primary())

    def postfix(self, node: Node) -> Node:
        while True:
            if self.accept("["):
                self.duration()
                if self.accept(":") and self.peek_text() != "]":
                    self.duration()
                self.expect("]")
            elif self.accept("offset"):
                self.accept("-")
                self.duration()
            elif self.accept("@"):
                if self.peek_text() in {"start", "end"}:
                    self.next()
                    self.expect("(")
                    self.expect(")")
                else:
                    self.next()
            else:
                return node

    def duration(self) -> None:
        token = self.next()
        if token.kind not in {"duration", "number"}:
            raise PromQLSyntaxError(f"expected a duration, got {token.text!r}")

    def label_list(self) -> list[str]:
        self.expect("(")
        labels = []
        while not self.accept(")"):
            token = self.next()
            if token.kind not in {"ident", "string"}:
                raise PromQLSyntaxError(f"expected a label name, got {token.text!r}")
            labels.append(token.text.strip("\"'`"))
            if not self.accept(","):
                self.expect(")")
                break
        return labels

    def arguments(self) -> list[Node]:
        self.expect("(")
        args: list[Node] = []
        while not self.accept(")"):
            args.append(self.expression(0))
            if not self.accept(","):
                self.expect(")")
                break
        return args

    def primary(self) -> Node:
        token = self.next()
        if token.text == "(" and token.kind == "op":
            node = self.expression(0)
            self.expect(")")
            return node
        if token.kind == "number" or token.text.lower() in {"inf", "nan"}:
            return Literal("scalar", token.text)
        if token.kind == "string":
            return Literal("string", _unquote(token.text))
        if token.text == "{":
            return Selector(None, self.matchers())
        if token.kind != "ident":
            raise PromQLSyntaxError(f"unexpected {token.text!r}")
        if token.text in AGGREGATIONS and self.peek_text() in {"(", "by", "without"}:
            return self.aggregate(token.text)
        if self.peek_text() == "(":
            return Call(token.text, self.arguments())
        selector = Selector(token.text)
        if self.accept("{"):
            selector.matchers = self.matchers()
        return selector

    def aggregate(self, op: str) -> Aggregate:
        grouping: list[str] = []
        without = False
        if self.peek_text() in {"by", "without"}:
            without = self.next().text == "without"
            grouping = self.label_list()
        args = self.arguments()
        if self.peek_text() in {"by", "without"}:
            without = self.next().text == "without"
            grouping = self.label_list()
        return Aggregate(op, grouping, without, args)

    def matchers(self) -> list[tuple[str, str, str]]:
        matchers = []
        while not self.accept("}"):
            label = self.next()
            op = self.next()
            value = self.next()
            if op.text not in {"=", "!=", "=~", "!~"} or value.kind != "string":
                raise PromQLSyntaxError(f"bad matcher {label.text}{op.text}{value.text}")
            matchers.append((label.text.strip("\"'`"), op.text, _unquote(value.text)))
            if not self.accept(","):
                self.expect("}")
                break
        return matchers


def _unquote(text: str) -> str:
    if text.startswith("`"):
        return text[1:-1]
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def parse(expr: str) -> Node:
    """Parse a PromQL expression into a tree of Nodes."""
    return _Parser(expr).parse()


@dataclass(frozen=True)
class Result:
    """What an expression evaluates to: its kind and the label names its series carry."""

    kind: str  # "vector", "scalar" or "string"
    labels: frozenset[str] = frozenset()


class _Checker:
    def __init__(self, metrics: Mapping[str, MetricInfo]) -> None:
        self.metrics = metrics
        self.problems: list[str] = []

    def visit(self, node: Node) -> Result:
        if isinstance(node, Literal):
            return Result(node.kind)
        if isinstance(node, Unary):
            return self.visit(node.expr)
        if isinstance(node, Selector):
            return self.selector(node)
        if isinstance(node, Aggregate):
            return self.aggregate(node)
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, Binary):
            return self.binary(node)
        raise TypeError(node)

    def selector(self, node: Selector) -> Result:
        if node.name is None:
            self.problems.append("selector without a metric name: the name cannot be checked")
            return Result("vector")
        info = self.metrics.get(node.name)
        if info is None:
            self.problems.append(f"{node.name}: no such metric or recording rule")
            return Result("vector")
        for label, op, value in node.matchers:
            if label == "__name__":
                continue
            if label not in info.labels:
                self.problems.append(f"{node.name}: has no label {label!r}")
            elif label == "le" and op in {"=", "=~"} and not _any_match(op, value, info.buckets):
                self.problems.append(f"{node.name}: no bucket bound matches le{op}{value!r}")
        return Result("vector", info.labels)

    def aggregate(self, node: Aggregate) -> Result:
        results = [self.visit(arg) for arg in node.args]
        inner = results[-1].labels
        self.require(node.grouping, inner, f"{node.op} by/without")
        if node.op in _KEEP_ALL:
            return Result("vector", inner)
        labels = inner - set(node.grouping) if node.without else frozenset(node.grouping)
        if node.op == "count_values" and isinstance(node.args[0], Literal):
            labels |= {node.args[0].value}
        return Result("vector", labels)

    def call(self, node: Call) -> Result:
        results = [self.visit(arg) for arg in node.args]
        vectors = [r for r in results if r.kind == "vector"]
        inner = vectors[0].labels if vectors else frozenset()
        if node.func in _SCALAR_FUNCTIONS:
            return Result("scalar")
        if node.func in _NO_LABEL_FUNCTIONS:
            return Result("vector")
        if node.func in {"absent", "absent_over_time"}:
            return Result("vector", frozenset(_equality_labels(node.args[0])))
        if node.func == "histogram_quantile":
            self.require(["le"], inner, "histogram_quantile")
            return Result("vector", inner - {"le"})
        if node.func in {"label_replace", "label_join"}:
            strings = [a.value for a in node.args[1:] if isinstance(a, Literal)]
            sources = strings[2:3] if node.func == "label_replace" else strings[2:]
            self.require([s for s in sources if s], inner, node.func)
            return Result("vector", inner | {strings[0]})
        return Result("vector", inner)

    def binary(self, node: Binary) -> Result:
        lhs, rhs = self.visit(node.lhs), self.visit(node.rhs)
        if lhs.kind != "vector" or rhs.kind != "vector":
            kind = "vector" if "vector" in {lhs.kind, rhs.kind} else "scalar"
            return Result(kind, lhs.labels | rhs.labels)
        where = f"{node.op} {node.matching or ''}".strip()
        if node.matching is not None:
            self.require(node.matching_labels, lhs.labels, f"left of {where}")
            self.require(node.matching_labels, rhs.labels, f"right of {where}")
        elif node.op != "or" and lhs.labels != rhs.labels:
            self.problems.append(
                f"{node.op}: sides carry different labels {sorted(lhs.labels)} and "
                f"{sorted(rhs.labels)}; add on(...) or ignoring(...)"
            )
        if node.op in _SET_OPERATORS:
            return Result("vector", lhs.labels | rhs.labels if node.op == "or" else lhs.labels)
        if node.group == "group_right":
            self.require(node.include, lhs.labels, f"group_right of {where}")
            return Result("vector", rhs.labels | set(node.include))
        if node.group == "group_left":
            self.require(node.include, rhs.labels, f"group_left of {where}")
            return Result("vector", lhs.labels | set(node.include))
        if node.matching == "on":
            return Result("vector", frozenset(node.matching_labels))
        return Result("vector", lhs.labels - set(node.matching_labels))

    def require(self, labels: list[str], present: frozenset[str], where: str) -> None:
        for label in labels:
            if label not in present:
                self.problems.append(f"{where}: label {label!r} is not on the series there")


def _equality_labels(node: Node) -> Iterator[str]:
    if isinstance(node, Selector):
        yield from (label for label, op, _ in node.matchers if op == "=")


def _any_match(op: str, value: str, bounds: frozenset[str]) -> bool:
    if op == "=":
        return value in bounds
    return any(re.fullmatch(value, bound) for bound in bounds)


def selectors(node: Node) -> Iterator[Selector]:
    """Every vector selector in a parsed expression, left to right."""
    if isinstance(node, Selector):
        yield node
    elif isinstance(node, Unary):
        yield from selectors(node.expr)
    elif isinstance(node, Aggregate | Call):
        for arg in node.args:
            yield from selectors(arg)
    elif isinstance(node, Binary):
        yield from selectors(node.lhs)
        yield from selectors(node.rhs)


def check(expr: str, metrics: Mapping[str, MetricInfo]) -> tuple[list[str], frozenset[str]]:
    """Problems found in `expr`, and the label names its result carries."""
    checker = _Checker(metrics)
    result = checker.visit(parse(expr))
    return checker.problems, result.labels
