"""Parse a request body once, exactly, and splice repairs into the original bytes.

The parser keeps what a lossy parser would hide, because those are the bugs the proxy exists
to catch: fractions are `Decimal` (so `49900.0000001` is not silently `49900.0`), NaN and
Infinity are kept as non-finite `Decimal`, and duplicate keys are recorded (two parsers that
disagree on which duplicate wins would let a bad amount through).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeAlias

JsonValue: TypeAlias = (
    bool | int | Decimal | str | list["JsonValue"] | dict[str, "JsonValue"] | None
)
Path: TypeAlias = tuple[str | int, ...]

# Python refuses int() on more than 4300 digits; such a number is still valid JSON.
_INT_DIGITS_LIMIT = 4000


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


class _DuplicateKeys(dict[str, JsonValue]):
    """A JSON object that had at least one key twice (the last value wins, as in most parsers)."""

    __slots__ = ("duplicates",)

    def __init__(self, pairs: list[tuple[str, JsonValue]], duplicates: list[str]) -> None:
        super().__init__(pairs)
        self.duplicates = duplicates


def _object(pairs: list[tuple[str, JsonValue]]) -> dict[str, JsonValue]:
    result = dict(pairs)
    if len(result) == len(pairs):
        return result
    seen: set[str] = set()
    duplicates = [k for k, _ in pairs if k in seen or seen.add(k)]  # type: ignore[func-returns-value]
    return _DuplicateKeys(pairs, list(dict.fromkeys(duplicates)))


def _integer(text: str) -> int | Decimal:
    return int(text) if len(text) <= _INT_DIGITS_LIMIT else Decimal(text)


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object,
    parse_float=Decimal,
    parse_int=_integer,
    parse_constant=Decimal,
)


@dataclass(frozen=True, slots=True)
class JsonBody:
    """A body parsed once: its value (or MISSING), the parse error, and duplicate-key paths."""

    value: JsonValue | _Missing = MISSING
    error: str | None = None
    duplicate_keys: tuple[Path, ...] = ()
    # Several rules look for the same fields (money, currencies, objects of the schema): each
    # pattern is walked once per body, and every rule after the first reads the answer.
    _walks: dict[Path, tuple[tuple[Path, JsonValue], ...]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def present(self) -> bool:
        return self.value is not MISSING

    def walk(self, pattern: Path) -> tuple[tuple[Path, JsonValue], ...]:
        """`walk(value, pattern)` over the whole body, remembered per pattern."""
        found = self._walks.get(pattern)
        if found is None:
            value = self.value
            found = () if isinstance(value, _Missing) else tuple(walk(value, pattern))
            self._walks[pattern] = found
        return found

    def get(self, path: Path) -> JsonValue | None:
        """The value at `path`, or None when a step is absent or of the wrong kind."""
        node = self.value
        for step in path:
            if isinstance(step, str) and isinstance(node, dict):
                node = node.get(step)
            elif isinstance(step, int) and isinstance(node, list) and 0 <= step < len(node):
                node = node[step]
            else:
                return None
        return None if isinstance(node, _Missing) else node


NO_BODY = JsonBody()


def parse_body(raw: bytes) -> JsonBody:
    """Parse `raw` as JSON; an empty or whitespace-only body is MISSING, not an error."""
    if not raw.strip():
        return NO_BODY
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return JsonBody(error=f"body is not valid UTF-8 at byte {exc.start}")
    if text.startswith("\ufeff"):
        return JsonBody(error="body starts with a UTF-8 byte order mark, which JSON forbids")
    try:
        value: JsonValue = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        return JsonBody(
            error=f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        )
    except RecursionError:
        return JsonBody(error="body is nested too deeply to be a Vipps request")
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        return JsonBody(error="body has a \\u escape of an unpaired UTF-16 surrogate (RFC 7493)")
    return JsonBody(value=value, duplicate_keys=tuple(_find_duplicates(value, ())))


# Only bodies that spell a surrogate escape need the (slower) search for an unpaired one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(value: JsonValue) -> bool:
    stack: list[JsonValue] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _find_duplicates(value: JsonValue, at: Path) -> list[Path]:
    found: list[Path] = []
    stack: list[tuple[JsonValue, Path]] = [(value, at)]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            if isinstance(node, _DuplicateKeys):
                found.extend((*path, key) for key in node.duplicates)
            stack.extend((child, (*path, key)) for key, child in node.items())
        elif isinstance(node, list):
            stack.extend((child, (*path, i)) for i, child in enumerate(node))
    return sorted(found, key=format_path)


def format_path(path: Path) -> str:
    """Render a path as Vipps names fields: `receipt.orderLines[0].totalAmount`."""
    out: list[str] = []
    for step in path:
        if isinstance(step, int):
            out.append(f"[{step}]")
        else:
            out.append(f".{step}" if out else step)
    return "".join(out) or "(body)"


def walk(value: JsonValue, pattern: Path) -> list[tuple[Path, JsonValue]]:
    """All (path, value) pairs matching `pattern`, where the step `"*"` means every array item.

    Absent steps are skipped silently: the shape of the body is another rule's business.
    """
    results: list[tuple[Path, JsonValue]] = [((), value)]
    for step in pattern:
        nxt: list[tuple[Path, JsonValue]] = []
        for path, node in results:
            if step == "*":
                if isinstance(node, list):
                    nxt.extend(((*path, i), child) for i, child in enumerate(node))
            elif isinstance(node, dict) and isinstance(step, str) and step in node:
                nxt.append(((*path, step), node[step]))
        results = nxt
    return results


def encode_value(value: JsonValue) -> str:
    """Serialise one JSON value compactly (Decimals as written)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return json.dumps(value, ensure_ascii=False)


# --- Locating a value's bytes, so that a repair changes only that value ----------------------

_WS = b" \t\r\n"


class _Scanner:
    """A minimal scanner over JSON text that finds the byte span of the value at a path."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.pos = 0

    def skip_ws(self) -> None:
        raw, pos = self.raw, self.pos
        while pos < len(raw) and raw[pos] in _WS:
            pos += 1
        self.pos = pos

    def value_span(self) -> tuple[int, int]:
        self.skip_ws()
        start = self.pos
        self.skip_value()
        return start, self.pos

    def skip_value(self) -> None:
        self.skip_ws()
        ch = self.raw[self.pos : self.pos + 1]
        if ch == b'"':
            self.read_string()
        elif ch in (b"{", b"["):
            self.skip_container()
        else:
            while self.pos < len(self.raw) and self.raw[self.pos] not in b",]} \t\r\n":
                self.pos += 1

    def read_string(self) -> str:
        start = self.pos
        self.pos += 1
        raw = self.raw
        while True:
            ch = raw[self.pos]
            if ch == 0x5C:  # backslash: skip the escaped character
                self.pos += 2
                continue
            self.pos += 1
            if ch == 0x22:
                break
        decoded: str = json.loads(raw[start : self.pos])
        return decoded

    def skip_container(self) -> None:
        depth = 0
        raw = self.raw
        while True:
            ch = raw[self.pos]
            if ch == 0x22:
                self.read_string()
                continue
            self.pos += 1
            if ch in (0x7B, 0x5B):
                depth += 1
            elif ch in (0x7D, 0x5D):
                depth -= 1
                if depth == 0:
                    return

    def expect(self, token: bytes) -> None:
        self.skip_ws()
        if self.raw[self.pos : self.pos + 1] != token:
            raise ValueError(f"expected {token!r} at byte {self.pos}")
        self.pos += 1

    def descend(self, step: str | int) -> None:
        """Move to the start of the child `step` of the container at the current position."""
        self.skip_ws()
        if isinstance(step, str):
            self.expect(b"{")
            target: int | None = None
            while True:
                self.skip_ws()
                if self.raw[self.pos : self.pos + 1] == b"}":
                    break
                key = self.read_string()
                self.expect(b":")
                self.skip_ws()
                if key == step:
                    target = self.pos  # the last duplicate wins, as in the parser
                self.skip_value()
                self.skip_ws()
                if self.raw[self.pos : self.pos + 1] == b",":
                    self.pos += 1
            if target is None:
                raise KeyError(step)
            self.pos = target
        else:
            self.expect(b"[")
            for _ in range(step):
                self.skip_value()
                self.expect(b",")
            self.skip_ws()


def splice(raw: bytes, repairs: list[tuple[Path, JsonValue]]) -> bytes:
    """Return `raw` with each value at a path replaced; every other byte stays as it was."""
    spans: list[tuple[int, int, bytes]] = []
    for path, value in repairs:
        scanner = _Scanner(raw)
        for step in path:
            scanner.descend(step)
        start, end = scanner.value_span()
        spans.append((start, end, encode_value(value).encode("utf-8")))
    out = raw
    for start, end, new in sorted(spans, reverse=True):
        out = out[:start] + new + out[end:]
    return out
