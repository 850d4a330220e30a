"""Requests saved in files, for `vipps-audit-proxy check`: HAR 1.2, HTTP messages, JSON Lines.

The format is told by the content, not the file name: a JSON document with `log` is a HAR
file (what browsers, mitmproxy, Charles, Insomnia and Postman export); a file whose first
line is a JSON object is JSON Lines, one request a line (`method`, `path` or `url`,
`headers`, `body`: a string of the exact body text, or a JSON value written as it stands in
the line); a file that starts with a request line (`POST /epayment/v1/payments HTTP/1.1`) is
an HTTP/1.1 request message, several of them separated by `###` lines as in `.http` files.
Anything else, a binary file or a truncated document, is an `InputError` with one line saying
why. `fixed_document` writes an input back with repaired bodies in the same format.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from base64 import b64decode
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit

from policies.catalogue.operations import OPERATIONS, UNKNOWN, identify

Kind = Literal["har", "http", "jsonl"]
STDIN = "-"
_VIPPS_HOSTS = ("vipps.no", "mobilepay.dk", "mobilepay.fi", "vippsmobilepay.com")
_REQUEST_LINE = re.compile(r"^([A-Z]+) +((?:/|https?://)\S*)(?: +HTTP/(\d)\.(\d))? *$")
_CONTENT_LENGTH = re.compile(r"^(content-length[ \t]*:[ \t]*)(\d+)", re.IGNORECASE | re.MULTILINE)


class InputError(ValueError):
    """An input that cannot be read as requests; the message is one line, without the name."""


@dataclass(frozen=True, slots=True)
class Location:
    """Where a request stands in its input: the file, and a line or a HAR entry index."""

    file: str
    line: int | None = None
    entry: int | None = None

    def __str__(self) -> str:
        if self.entry is not None:
            return f"{self.file} entry {self.entry}"
        return f"{self.file}:{self.line}" if self.line is not None else self.file


@dataclass(frozen=True, slots=True)
class SavedRequest:
    """One request read from an input; `problem` says why it cannot be checked, if it cannot."""

    location: Location
    method: str = ""
    path: str = ""
    query: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    at: float | None = None  # seconds since the epoch, where the input records when it was sent
    problem: str | None = None
    span: tuple[int, int] | None = None  # the body's characters in an HTTP message file

    @property
    def target(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path


@dataclass(slots=True)
class SavedInput:
    """One input file as read: its format, its text, and its requests in order."""

    name: str
    kind: Kind
    text: str
    requests: list[SavedRequest] = field(default_factory=list)
    skipped: int = 0  # HAR entries to other hosts than Vipps'


def display_name(name: str) -> str:
    return "<stdin>" if name == STDIN else name


def read_input(name: str, data: bytes) -> SavedInput:
    """Read the requests of one input; raises InputError when it is none of the formats."""
    shown = display_name(name)
    if b"\x00" in data:
        raise InputError(f"is a binary file, not {_FORMATS}")
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise InputError(f"is not UTF-8 text (byte {exc.start}), not {_FORMATS}") from None
    stripped = text.lstrip()
    if not stripped:
        raise InputError(f"is empty; expected {_FORMATS}")
    if stripped[0] in "{[":
        first = stripped.splitlines()[0]
        if _is_json_object(first) and '"log"' not in first[:20]:
            return _read_jsonl(shown, text)
        return _read_har(shown, text)
    if _REQUEST_LINE.match(_first_request_line(text) or ""):
        return _read_http(shown, text)
    raise InputError(f"is not {_FORMATS}")


_FORMATS = "a HAR file, an HTTP request message or JSON Lines"


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _unknown_operation(method: str, path: str) -> str | None:
    """None for a catalogued operation, else a message with the closest one."""
    if identify(method, path).operation is not UNKNOWN:
        return None
    known = [f"{op.method} {op.template}" for op in OPERATIONS]
    close = difflib.get_close_matches(f"{method.upper()} {path}", known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else ""
    return (
        f"{method} {path} is not an operation of the catalogue"
        f" (`vipps-audit-proxy operations` lists them){hint}"
    )


def _request(
    location: Location,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    *,
    at: float | None = None,
    span: tuple[int, int] | None = None,
) -> SavedRequest:
    if target.startswith(("http://", "https://")):
        parts = urlsplit(target)
        path, query = parts.path or "/", parts.query
    else:
        path, _, query = target.partition("?")
    problem = _unknown_operation(method, path)
    return SavedRequest(
        location, method.upper(), path, query, tuple(headers), body, at, problem, span
    )


# HAR 1.2 -----------------------------------------------------------------------------------


def _read_har(name: str, text: str) -> SavedInput:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"is not valid JSON ({exc.msg}: line {exc.lineno} column {exc.colno});"
            " a truncated HAR file? JSON Lines needs one request object per line"
        ) from None
    log = document.get("log") if isinstance(document, dict) else None
    entries = log.get("entries") if isinstance(log, dict) else None
    if not isinstance(entries, list):
        raise InputError("is JSON but not a HAR file (no log.entries array)")
    saved = SavedInput(name, "har", text)
    for index, entry in enumerate(entries):
        location = Location(name, entry=index)
        request = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(request, dict):
            saved.requests.append(SavedRequest(location, problem="entry has no request object"))
            continue
        method, url = request.get("method"), request.get("url")
        if not isinstance(method, str) or not isinstance(url, str):
            problem = "request has no method or url string"
            saved.requests.append(SavedRequest(location, problem=problem))
            continue
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        vipps_host = any(host == h or host.endswith("." + h) for h in _VIPPS_HOSTS)
        if not vipps_host and identify(method, parts.path).operation is UNKNOWN:
            saved.skipped += 1
            continue
        try:
            headers = _har_headers(request.get("headers"))
            body = _har_body(request.get("postData"))
        except InputError as exc:
            saved.requests.append(SavedRequest(location, problem=str(exc)))
            continue
        at = _har_time(entry.get("startedDateTime"))
        saved.requests.append(_request(location, method, url, headers, body, at=at))
    return saved


def _har_headers(raw: object) -> list[tuple[str, str]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InputError("request.headers is not an array")
    headers = []
    for item in raw:
        name = item.get("name") if isinstance(item, dict) else None
        value = item.get("value") if isinstance(item, dict) else None
        if not isinstance(name, str) or not isinstance(value, str):
            raise InputError("a request header has no name or value string")
        if not name.startswith(":"):  # HTTP/2 pseudo-headers are not headers
            headers.append((name, value))
    return headers


def _har_body(post: object) -> bytes:
    if post is None:
        return b""
    text = post.get("text") if isinstance(post, dict) else None
    if text is None:
        return b""
    if not isinstance(text, str):
        raise InputError("request.postData.text is not a string")
    if isinstance(post, dict) and post.get("encoding") == "base64":
        try:
            return b64decode(text, validate=True)
        except ValueError:
            raise InputError("request.postData.text is not valid base64") from None
    return text.encode("utf-8")


def _har_time(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


# HTTP/1.1 request messages -----------------------------------------------------------------


def _first_request_line(text: str) -> str | None:
    for line in text.splitlines():
        if line.strip() and not line.startswith(("#", "//")):
            return line.rstrip("\r")
    return None


def _read_http(name: str, text: str) -> SavedInput:
    saved = SavedInput(name, "http", text)
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    start = 0
    for index in range(len(lines) + 1):
        if index == len(lines) or lines[index].startswith("###"):
            if index > start:
                request = _http_message(name, lines, offsets, start, index)
                if request is not None:
                    saved.requests.append(request)
            start = index + 1
    if not saved.requests:
        raise InputError(f"has no request line; expected {_FORMATS}")
    return saved


def _http_message(
    name: str, lines: list[str], offsets: list[int], start: int, end: int
) -> SavedRequest | None:
    """One message of lines[start:end]: comments and blank lines, request line, headers, body."""
    at = start
    while at < end and (not lines[at].strip() or lines[at].startswith(("#", "//"))):
        at += 1
    if at == end:
        return None
    location = Location(name, line=at + 1)
    match = _REQUEST_LINE.match(lines[at].rstrip("\r\n"))
    if match is None:
        return SavedRequest(location, problem=f"line {at + 1}: is not a request line")
    method, target = match.group(1), match.group(2)
    headers: list[tuple[str, str]] = []
    at += 1
    while at < end and lines[at].rstrip("\r\n"):
        header, colon, value = lines[at].rstrip("\r\n").partition(":")
        if not colon or not header or header != header.strip():
            problem = f"line {at + 1}: expected a header `Name: value` or a blank line"
            return SavedRequest(location, problem=problem)
        headers.append((header, value.strip()))
        at += 1
    body_start = offsets[at + 1] if at < end else offsets[end]
    body_text = "".join(lines[at + 1 : end]) if at < end else ""
    body = body_text.encode("utf-8")
    length = next((v for k, v in headers if k.lower() == "content-length"), None)
    if length is not None and length.isdigit() and int(length) <= len(body):
        body = body[: int(length)]
    else:
        body = body.rstrip(b"\r\n")
    span = (body_start, body_start + len(body.decode("utf-8", errors="replace")))
    return _request(location, method, target, headers, body, span=span)


# JSON Lines --------------------------------------------------------------------------------


class _Number(str):
    """A JSON number (or NaN/Infinity) kept as written, so the body's bytes are exact."""


class _Pairs(list[tuple[str, object]]):
    """A JSON object as its pairs in order, duplicates kept (a rule looks for them)."""


def _write(value: object) -> str:
    """JSON text of a value read with `_Number` and `_Pairs`, numbers exactly as written."""
    if isinstance(value, _Number):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, _Pairs):
        items = (f"{json.dumps(k, ensure_ascii=False)}:{_write(v)}" for k, v in value)
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_write(v) for v in value) + "]"
    raise TypeError(type(value).__name__)  # pragma: no cover - json.loads yields no other


def _parse_line(line: str) -> object:
    return json.loads(
        line, object_pairs_hook=_Pairs, parse_float=_Number, parse_int=_Number,
        parse_constant=_Number,
    )  # fmt: skip


def _read_jsonl(name: str, text: str) -> SavedInput:
    saved = SavedInput(name, "jsonl", text)
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            saved.requests.append(_jsonl_request(Location(name, line=number), line))
    return saved


def _jsonl_request(location: Location, line: str) -> SavedRequest:
    try:
        parsed = _parse_line(line)
    except json.JSONDecodeError as exc:
        return SavedRequest(location, problem=f"not valid JSON: {exc.msg} at column {exc.colno}")
    if not isinstance(parsed, _Pairs):
        return SavedRequest(location, problem="not a JSON object")
    fields = dict(parsed)
    method, target = fields.get("method"), fields.get("path", fields.get("url"))
    if type(method) is not str or type(target) is not str:
        return SavedRequest(location, problem='needs "method" and "path" (or "url") strings')
    raw_headers = fields.get("headers", _Pairs())
    if isinstance(raw_headers, _Pairs):
        headers = list(raw_headers)
    elif isinstance(raw_headers, list) and all(
        isinstance(p, list) and len(p) == 2 for p in raw_headers
    ):
        headers = [(p[0], p[1]) for p in raw_headers]
    else:
        return SavedRequest(location, problem='"headers" is not an object or [name, value] pairs')
    if not all(type(k) is str and type(v) is str for k, v in headers):
        return SavedRequest(location, problem="header names and values must be strings")
    body = fields.get("body")
    if body is None:
        raw = b""
    elif type(body) is str:
        raw = body.encode("utf-8")
    else:
        raw = _write(body).encode("utf-8")
    pairs = [(str(k), str(v)) for k, v in headers]
    return _request(location, method, target, pairs, raw)


# Writing repaired inputs -------------------------------------------------------------------


def fixed_document(saved: SavedInput, repaired: dict[int, bytes]) -> str:
    """The input's text with the bodies of the requests at these indexes replaced."""
    if saved.kind == "har":
        document = copy.deepcopy(json.loads(saved.text))
        entries = document["log"]["entries"]
        for index, body in repaired.items():
            entry = saved.requests[index].location.entry
            post = entries[entry]["request"].setdefault("postData", {})
            post["text"] = body.decode("utf-8")
            post.pop("encoding", None)
            if isinstance(entries[entry]["request"].get("bodySize"), int):
                entries[entry]["request"]["bodySize"] = len(body)
        return json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    if saved.kind == "jsonl":
        lines = saved.text.splitlines(keepends=True)
        for index, body in repaired.items():
            line_no = saved.requests[index].location.line or 0
            parsed = _parse_line(lines[line_no - 1])
            fields = dict(parsed) if isinstance(parsed, _Pairs) else {}
            text = body.decode("utf-8")
            # A body written as a JSON value stays one; a string body stays a string.
            fields["body"] = text if type(fields.get("body")) is str else _parse_line(text)
            ending = "\n" if lines[line_no - 1].endswith("\n") else ""
            lines[line_no - 1] = _write(_Pairs(fields.items())) + ending
        return "".join(lines)
    text = saved.text
    for index in sorted(repaired, key=lambda i: -(saved.requests[i].span or (0, 0))[0]):
        request, body = saved.requests[index], repaired[index]
        start, end = request.span or (0, 0)
        # Only the Content-Length of this message's own head changes.
        head_start = text.rfind("\n###", 0, start) + 1
        head = _CONTENT_LENGTH.sub(rf"\g<1>{len(body)}", text[head_start:start])
        text = text[:head_start] + head + body.decode("utf-8") + text[end:]
    return text


def fixed_path(name: str) -> str:
    """Where the repaired copy of `name` goes: `order.http` -> `order.fixed.http`."""
    slash = name.rfind("/") + 1
    dot = name.rfind(".")
    if dot <= slash:
        return name + ".fixed"
    return f"{name[:dot]}.fixed{name[dot:]}"
