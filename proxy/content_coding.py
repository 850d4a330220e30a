"""Compressed request bodies: decoded (within the size limit) for the rules only.

The bytes as sent are what is forwarded; a body whose decoded size passes the limit is refused,
so a small compressed body cannot expand into gigabytes inside the proxy.
"""

from __future__ import annotations

import gzip
import zlib

from proxy.problem import BadRequest, BodyTooLarge, UnsupportedEncoding

# zlib's wbits: 16 + MAX_WBITS reads a gzip wrapper, MAX_WBITS a zlib (deflate) stream.
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def decode_body(body: bytes, encoding: str, limit: int) -> bytes:
    """The decoded body, refusing more than `limit` bytes of output or a broken stream."""
    coding = encoding.strip().lower()
    wbits = _WBITS.get(coding)
    if wbits is None:
        raise UnsupportedEncoding(
            f"Content-Encoding {encoding!r} cannot be checked; send gzip, deflate or no encoding"
        )
    decoder = zlib.decompressobj(wbits)
    try:
        out = decoder.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadRequest(f"the body is not valid {coding} data ({exc})") from None
    if len(out) > limit or decoder.unconsumed_tail:
        raise BodyTooLarge(
            f"the {coding} body decodes to more than the limit of {limit} bytes"
            " (VIPPS_PROXY_MAX_BODY_BYTES)"
        )
    if not decoder.eof:
        raise BadRequest(f"the {coding} body ends before its compressed stream does")
    return out


def encode_body(body: bytes, encoding: str) -> bytes:
    """`body` compressed again in `encoding` (after a repair of a compressed request)."""
    if encoding.strip().lower() == "deflate":
        return zlib.compress(body)
    return gzip.compress(body, mtime=0)
