"""The JSON writers of the stacks the corpus comes from, so a row's bytes can be checked.

Each real integration serialises its body with its platform's encoder, and the encoders differ
in exactly the ways a byte-for-byte proxy must survive: PHP's `json_encode` escapes `/` as `\\/`
and non-ASCII as lower-case `\\u00f8` (unless told otherwise); .NET's System.Text.Json escapes
non-ASCII and HTML-sensitive characters (`+ < > & ' "` and backquote) as upper-case `\\u002B`;
Newtonsoft.Json writes a double as `49900.0` and leaves UTF-8 as it is; Go's encoding/json
escapes `< > &`; Python's `json.dumps` puts a space after `,` and `:` and escapes non-ASCII;
JavaScript (and Ruby, Jackson, Jason) write compact UTF-8 with integral numbers as integers.

`encode(style, value)` writes `value` the way that stack does. The corpus test parses each
stored body and checks that writing it again in the row's style gives the same bytes, so a
stored body cannot drift from what its stack sends.
"""

from __future__ import annotations

import json
from typing import Any

STYLES = ("php", "newtonsoft", "system-text-json", "python", "go", "js")

_COMPACT = (",", ":")
_STJ_ESCAPES = {
    "+": "\\u002B",
    "<": "\\u003C",
    ">": "\\u003E",
    "&": "\\u0026",
    "'": "\\u0027",
    "`": "\\u0060",
}
_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def _integral_floats_as_ints(value: Any) -> Any:
    """JavaScript has one number type: 49900.0 is written 49900."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral_floats_as_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral_floats_as_ints(v) for v in value]
    return value


def _escape_strings(text: str, escapes: dict[str, str]) -> str:
    """Replace characters by escapes; they can only occur inside JSON strings here."""
    for char, escape in escapes.items():
        text = text.replace(char, escape)
    return text


def _upper_hex_escapes(text: str) -> str:
    """`\\u00f8` -> `\\u00F8`, as System.Text.Json writes its escapes."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("\\\\", i):
            out.append("\\\\")
            i += 2
        elif text.startswith("\\u", i):
            out.append("\\u" + text[i + 2 : i + 6].upper())
            i += 6
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def encode(style: str, value: Any) -> bytes:
    """`value` as the named stack serialises it."""
    if style == "php":
        # json_encode without JSON_UNESCAPED_SLASHES / JSON_UNESCAPED_UNICODE; an integral
        # float (PHP's round() returns one) is written without a fraction.
        text = json.dumps(_integral_floats_as_ints(value), separators=_COMPACT)
        return text.replace("/", "\\/").encode("ascii")
    if style == "newtonsoft":
        return json.dumps(value, separators=_COMPACT, ensure_ascii=False).encode()
    if style == "system-text-json":
        text = json.dumps(value, separators=_COMPACT).replace('\\"', "\\u0022")
        return _upper_hex_escapes(_escape_strings(text, _STJ_ESCAPES)).encode("ascii")
    if style == "python":
        return json.dumps(value).encode("ascii")
    if style == "go":
        text = json.dumps(value, separators=_COMPACT, ensure_ascii=False)
        return _escape_strings(text, _GO_ESCAPES).encode()
    if style == "js":
        value = _integral_floats_as_ints(value)
        return json.dumps(value, separators=_COMPACT, ensure_ascii=False).encode()
    raise ValueError(f"unknown encoder style {style!r}; known: {', '.join(STYLES)}")
