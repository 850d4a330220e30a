"""What must never reach a log line: secrets removed, phone numbers masked.

Redaction is by field name anywhere in a JSON body (Vipps uses the same few names across its
APIs) and by pattern in free text, so an error message that echoes a phone number is masked too.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode

from policies.core.jsonbody import JsonValue
from policies.core.phone_mask import mask_phone

REDACTED = "[redacted]"

# Lower-cased field names whose values are secrets, in bodies, headers and query strings.
SECRET_FIELDS = frozenset(
    {
        "authorization",
        "ocp-apim-subscription-key",
        "client_id",
        "client_secret",
        "clientsecret",
        "access_token",
        "accesstoken",
        "refresh_token",
        "id_token",
        "token",
        "authtoken",
        "callbackauthorizationtoken",
        "cardcallbackauthorizationtoken",
        "secret",
        "password",
        "code",
        "code_verifier",
        "cookie",
        "set-cookie",
        "proxy-authorization",
        "x-ms-content-sha256",
    }
)

PHONE_FIELDS = frozenset(
    {"phonenumber", "mobilenumber", "customerphonenumber", "msisdn", "phone", "mobile"}
)
PERSONAL_FIELDS = frozenset({"nin", "ssn", "nationalidentitynumber", "email", "birthdate"})

# A phone number written in text: a + or 00 prefix, or 8 to 15 digits in phone-like groups.
_PHONE_IN_TEXT = re.compile(r"(?:\+|\b00)\d[\d .-]{6,16}\d\b|\b(?:47|45|358|46)?[49]\d{7}\b")


# `name=value`, `name: value` or `"name": "value"` for a secret name, in text that is not JSON
# (form bodies, HTML error pages, messages that echo a request).
_SECRET_IN_TEXT = re.compile(
    r"(?i)(\b(?:"
    + "|".join(re.escape(n) for n in sorted(SECRET_FIELDS, key=len, reverse=True))
    + r")\b[\"']?\s*[:=]\s*(?:Bearer\s+|Basic\s+)?[\"']?)([^\"'&\s,;}<]+)"
)


def _mask_secret(match: re.Match[str]) -> str:
    return match.group(1) + REDACTED


def _mask_phone(match: re.Match[str]) -> str:
    return mask_phone(match.group(0))


def mask_text(text: str) -> str:
    """Mask phone numbers and `secret=value` pairs that appear inside free text."""
    # Every request's path passes here: a `name=value` pair needs `=` or `:`, and the
    # case-insensitive search over all secret names is the slow part.
    if "=" in text or ":" in text:
        text = _SECRET_IN_TEXT.sub(_mask_secret, text)
    return _PHONE_IN_TEXT.sub(_mask_phone, text)


def redact_json(value: JsonValue) -> JsonValue:
    """A copy of `value` with secrets replaced, phone numbers and personal data masked."""
    if isinstance(value, dict):
        out: dict[str, JsonValue] = {}
        for key, child in value.items():
            low = key.lower()
            if low in SECRET_FIELDS:
                out[key] = REDACTED
            elif low in PHONE_FIELDS and isinstance(child, str | int):
                out[key] = mask_phone(str(child))
            elif low in PERSONAL_FIELDS and child is not None:
                out[key] = REDACTED
            else:
                out[key] = redact_json(child)
        return out
    if isinstance(value, list):
        return [redact_json(child) for child in value]
    if isinstance(value, str):
        return mask_text(value)
    return value


def redact_query(query: str) -> str:
    """A query string with secret parameters replaced (OAuth codes, client secrets)."""
    if not query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode(
        [(k, REDACTED if k.lower() in SECRET_FIELDS else mask_text(v)) for k, v in pairs]
    )


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with each of this request's own secret values replaced, wherever they appear."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def scrub_record(value: Any, secrets: tuple[str, ...]) -> Any:
    """A copy of a log record with the secrets scrubbed from every string in it."""
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, dict):
        return {k: scrub_record(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_record(v, secrets) for v in value]
    return value
