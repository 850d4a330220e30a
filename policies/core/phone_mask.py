"""Masking phone numbers for display: findings and log lines show at most the country code and
the last two digits.

Both the phone rules (which quote what a merchant sent) and the redaction of log lines use it,
so it lives apart from either.
"""

from __future__ import annotations

import phonenumbers

__all__ = ["SEPARATORS", "mask_phone"]

SEPARATORS = str.maketrans(dict.fromkeys(" \t\u00a0\u2009\u202f-.()"))
"""Characters people put between digits; anything else (letters, "ext") is not a notation slip."""

_MASK = "******"


def mask_phone(text: str) -> str:
    """Mask a phone-like string, keeping at most the country code and the last two digits.

    `+47 912 34 567` and `0047 91234567` give `+47******67`, `4791234567` gives `******67`. With
    fewer than six digits after the country code nothing of the number is kept, so a short value
    is never shown whole. The number of stars is fixed, so the length is not shown either.
    """
    if not text:
        return ""
    compact = text.strip().translate(SEPARATORS)
    digits = "".join(c for c in compact if c in "0123456789")
    prefix = ""
    if compact.startswith(("+", "00")):
        international = digits if compact.startswith("+") else digits[2:]
        code = _country_code(international)
        if code:
            prefix, digits = f"+{code}", international[len(code) :]
    if len(digits) < 6:
        return _MASK
    return f"{prefix}{_MASK}{digits[-2:]}"


def _country_code(digits: str) -> str:
    # Country codes are prefix-free, so the first known one of length 1 to 3 is the one.
    for size in (1, 2, 3):
        code = digits[:size]
        if len(code) == size and (
            phonenumbers.region_code_for_country_code(int(code)) != phonenumbers.UNKNOWN_REGION
        ):
            return code
    return ""
