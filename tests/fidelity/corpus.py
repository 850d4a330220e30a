"""The fidelity corpus: requests rebuilt from public integrations that run in production.

Each file in `rows/` holds the rows of one source family (one plugin, SDK or backend) as JSON:
where the request comes from (repository, commit, file, function), what goes on the wire
(method, target, headers in that stack's order and spelling, the exact body text) and what the
proxy must do with it under its defaults, with the reason:

- `forward`: Vipps accepts it in production; it must arrive byte-for-byte.
- `block`: Vipps documents a rejection (`evidence` quotes it); it must not arrive.
- `repair`: a notation slip the proxy repairs by default; it must arrive with only that value
  changed (`repair.sent` -> `repair.forwarded`, both as they appear inside the JSON string).

A body too large to store readably (an image upload) holds the placeholder `@@base64:N@@`: the
base64 text of N fixed pseudo-random bytes starting with the PNG signature, written with `\\/`
for `/` when the row's encoder is PHP's, exactly as that stack would send the file.

Identifiers (order ids, MSNs, keys, tokens, phone numbers) are invented; transport framing
(`Host`, `Connection`, `Content-Length`, `Transfer-Encoding`) is left to the sender; `framing`
says whether the stack frames the body by length (the default) or chunked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fidelity.encoders import STYLES

ROWS_DIR = Path(__file__).parent / "rows"
OUTCOMES = ("forward", "block", "repair")
# How the body is framed on the wire: Content-Length, or one chunk (Node's http client without a
# Content-Length header).
FRAMINGS = ("length", "chunked")
FILL = re.compile(r"@@base64:(\d+)@@")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def fill_bytes(size: int) -> bytes:
    """`size` fixed bytes that start like a PNG file (the same on every run)."""
    return (PNG_SIGNATURE + hashlib.shake_256(b"fidelity-corpus").digest(size))[:size]


def expand(body: str, encoder: str | None) -> bytes:
    """The body as sent: each `@@base64:N@@` replaced by the base64 of `fill_bytes(N)`."""

    def fill(match: re.Match[str]) -> str:
        text = base64.b64encode(fill_bytes(int(match.group(1)))).decode("ascii")
        return text.replace("/", "\\/") if encoder == "php" else text

    return FILL.sub(fill, body).encode("utf-8")


@dataclass(frozen=True)
class Source:
    """Where a row was read: the code that sends this request in production."""

    repo: str
    commit: str
    file: str
    function: str
    language: str

    def __str__(self) -> str:
        return f"{self.repo}@{self.commit[:12]} {self.file} {self.function} ({self.language})"


@dataclass(frozen=True)
class Repair:
    """The one value a repair changes, as its text appears between the JSON quotes."""

    sent: str
    forwarded: str


@dataclass(frozen=True)
class Row:
    """One request of the corpus and the outcome the proxy's defaults must give it."""

    id: str
    family: str
    source: Source
    api: str
    operation: str
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    encoder: str | None
    framing: str
    expect: str
    reason: str
    evidence: str | None
    rules: tuple[str, ...]
    repair: Repair | None

    def describe(self) -> str:
        return f"row {self.id} [{self.expect}] from {self.source}"


def _row(family: str, data: dict[str, Any]) -> Row:
    source = data["source"]
    repair = data.get("repair")
    row = Row(
        id=data["id"],
        family=family,
        source=Source(
            source["repo"], source["commit"], source["file"], source["function"],
            source["language"],
        ),
        api=data["api"],
        operation=data["operation"],
        method=data["method"],
        target=data["target"],
        headers=tuple((name, value) for name, value in data["headers"]),
        body=expand(data["body"], data.get("encoder")),
        encoder=data.get("encoder"),
        framing=data.get("framing", "length"),
        expect=data["expect"],
        reason=data["reason"],
        evidence=data.get("evidence"),
        rules=tuple(data.get("rules", ())),
        repair=Repair(repair["sent"], repair["forwarded"]) if repair else None,
    )  # fmt: skip
    _check(row)
    return row


def _check(row: Row) -> None:
    """A row that cannot be judged is a broken file, reported by name at collection."""
    problems = []
    if row.expect not in OUTCOMES:
        problems.append(f"expect {row.expect!r} is not one of {OUTCOMES}")
    if row.expect == "block" and not (row.evidence and row.rules):
        problems.append("a block row needs the documented rejection (evidence) and rules")
    if row.expect == "repair" and row.repair is None:
        problems.append("a repair row names the value it changes (repair)")
    if row.framing not in FRAMINGS:
        problems.append(f"framing {row.framing!r} is not one of {FRAMINGS}")
    if row.encoder is not None and row.encoder not in STYLES:
        problems.append(f"encoder {row.encoder!r} is not one of {STYLES}")
    if len(row.source.commit) != 40:
        problems.append("source.commit is a full 40-hex commit")
    if problems:
        raise ValueError(f"{row.family}/{row.id}: " + "; ".join(problems))


def load_rows(directory: Path = ROWS_DIR) -> list[Row]:
    """Every row of every family file, in file and row order; ids are unique."""
    rows: list[Row] = []
    for path in sorted(directory.glob("*.json")):
        with path.open(encoding="utf-8") as file:
            document = json.load(file)
        rows.extend(_row(path.stem, item) for item in document["rows"])
    ids = [row.id for row in rows]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"duplicate row ids: {duplicates}")
    return rows
