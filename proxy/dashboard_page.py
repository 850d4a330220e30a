"""The dashboard page: one self-contained HTML document, `dashboard.html`, with its style and
script inline.

The document is package data, read once when this module is imported at start-up. Nothing is
loaded from elsewhere: clusters often have no internet. The script polls `dashboard/data`
every two seconds and builds the DOM with `textContent` only, so no value from a request or a
Vipps answer is ever parsed as HTML. The Content-Security-Policy allows exactly this style and
this script (by hash) and requests to the admin origin.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files

__all__ = ["CONTENT_SECURITY_POLICY", "PAGE", "SCRIPT", "STYLE"]


def _inline(page: str, tag: str) -> str:
    """The text of the page's one `<tag>` element, exactly as the browser hashes it."""
    found = re.findall(rf"<{tag}>(.*?)</{tag}>", page, flags=re.DOTALL)
    if len(found) != 1:
        raise ValueError(f"dashboard.html must hold exactly one <{tag}> element")
    text: str = found[0]
    return text


PAGE = files(__package__).joinpath("dashboard.html").read_text(encoding="utf-8")
STYLE = _inline(PAGE, "style")
SCRIPT = _inline(PAGE, "script")


def _source_hash(text: str) -> str:
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    return f"'sha256-{digest}'"


# Only this page's own style and script run, it may only fetch from the admin origin, and
# nothing may frame it, so a value that slipped past escaping could still load nothing.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        f"script-src {_source_hash(SCRIPT)}",
        f"style-src {_source_hash(STYLE)}",
        "connect-src 'self'",
        "img-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
