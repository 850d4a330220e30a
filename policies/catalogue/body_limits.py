"""The largest request body Vipps documents, so that the proxy's own limit never refuses one.

The proxy answers 413 to a body over `VIPPS_PROXY_MAX_BODY_BYTES` without asking Vipps, so
that limit is a block like any rule's and needs the same care: it must fit the largest request
any catalogued operation is documented to take. The largest is Order Management's image
upload: a PNG or JPEG of at most 2 MB, base64-encoded into the JSON body ("max file size is
2MB" [OM #/components/schemas/Image/properties/src]). Every other body is a few kilobytes
(receipts and Checkout order lines state no maximum count; Recurring's bulk charges, at most
2000 [SITE https://developer.vippsmobilepay.com/docs/APIs/recurring-api/how-it-works/charges/
recurring-charges-howitworks], stay under 1 MB).
"""

from __future__ import annotations

__all__ = ["IMAGE_MAX_FILE_BYTES", "LARGEST_DOCUMENTED_BODY", "base64_length"]

# "2MB" read as the larger of its two meanings.
IMAGE_MAX_FILE_BYTES = 2 * 1024 * 1024
# `imageId` (at most 128 characters), `type`, the keys and the JSON punctuation.
_IMAGE_ENVELOPE_BYTES = 512


def base64_length(size: int) -> int:
    """The length of `size` bytes in base64 with padding."""
    return 4 * -(-size // 3)


# A JSON writer that escapes `/` as `\/` (PHP's json_encode by default) sends each `/` of the
# base64 text as two bytes: in the worst case every character is one.
LARGEST_DOCUMENTED_BODY = 2 * base64_length(IMAGE_MAX_FILE_BYTES) + _IMAGE_ENVELOPE_BYTES
