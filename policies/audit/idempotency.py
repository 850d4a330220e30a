"""An idempotency key stands for one request: reusing it for a different body is a conflict.

Vipps lets a merchant retry a failed call with the same key without doing the work twice
(KB http-headers.md §Idempotency, facts §2.1). The key is `Idempotency-Key` in ePayment and
Recurring, `X-Request-Id` in eCom (facts §2.2). Reusing a key for a different request is an
error Vipps answers itself: ePayment 409 "Idempotency-Key reused with different body" (facts
§10.2), Recurring 409 Conflict (facts §2.2, [RCDOC recurring-api-guide.md §Idempotency Key
header]), eCom error 93 "idempotency payload mismatch" (facts §10.3), a 400.

A key is scoped to the operation and the payment in the path (eCom: "unique per
orderId+MSN+endpoint"), and to the Merchant-Serial-Number. The store keeps a hash of the scope
and a hash of the body bytes, never the body: a retry resends the same bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import ClassVar

from policies.audit.state import Store, idempotency_header, idempotency_key, merchant_serial_number
from policies.catalogue.operations import Operation
from policies.catalogue.spec import spec_of
from policies.core.model import Action, AuditedRequest, Condition, Evidence, Finding, Source

__all__ = ["IdempotencyKeyReuse", "body_digest", "key_scope"]

_DIGEST_BYTES = 16
_SHOWN_CHARS = 50  # the longest key any API takes (ePayment, facts §2.2)


def key_scope(request: AuditedRequest) -> bytes | None:
    """A digest of (operation, MSN, path parameters, key), or None when no key was sent.

    Derived once per request: the rule's check and `observe` both ask.
    """
    derived = request.derived
    if "key_scope" not in derived:
        derived["key_scope"] = _key_scope(request)
    scope: bytes | None = derived["key_scope"]
    return scope


def _request_digest(request: AuditedRequest) -> bytes:
    """`body_digest` of the request's body, once per request."""
    derived = request.derived
    if "body_digest" not in derived:
        derived["body_digest"] = body_digest(request.body)
    digest: bytes = derived["body_digest"]
    return digest


def _key_scope(request: AuditedRequest) -> bytes | None:
    key = idempotency_key(request)
    if key is None:
        return None
    parts = [request.operation.key, merchant_serial_number(request)]
    parts.extend(f"{name}={value}" for name, value in sorted(request.path_params.items()))
    parts.append(key)
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=_DIGEST_BYTES).digest()


def body_digest(body: bytes) -> bytes:
    """A digest of the body bytes exactly as sent."""
    return hashlib.blake2b(body, digest_size=_DIGEST_BYTES).digest()


class IdempotencyKeyReuse:
    """The same idempotency key must not be sent again with a different body.

    Vipps refuses the reuse (see the module docstring), so the finding carries the status Vipps
    would answer: 409 for ePayment and Recurring, 400 for eCom (error 93). The same key with the
    same body is a retry, which is fine: `observe` says so, and the proxy counts it.
    The key is bound to the first body Vipps was asked with: a request Vipps refused as a
    conflict does not rebind it.
    """

    code: ClassVar[str] = "idempotency.key_reused"
    default_action: ClassVar[Action] = Action.BLOCK
    can_repair: ClassVar[bool] = False
    summary: ClassVar[str] = "An idempotency key must not be reused with a different request body."
    conditions: ClassVar[tuple[Condition, ...]] = (
        Condition(
            "different_body",
            Action.BLOCK,
            (
                Evidence(
                    "[RCDOC recurring-api-guide.md §Idempotency Key header]",
                    "reusing a key for a different request gives 409 Conflict",
                ),
                Evidence(
                    "[ECDOC vipps-ecom-api.md §Error codes] (93)",
                    "eCom error 93: the same idempotency key with another payload",
                ),
                Evidence(
                    "[EP #/paths/~1v1~1payments/post/responses/409]",
                    "ePayment create, capture and refund answer 409 (a reused Idempotency-Key)",
                ),
            ),
        ),
    )

    def __init__(self, store: Store[bytes, bytes]) -> None:
        self._store = store

    def applies_to(self, operation: Operation) -> bool:
        spec = spec_of(operation)
        return spec.headers.idempotency_header is not None and spec.writes

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        scope = key_scope(request)
        seen = self._store.get(scope) if scope is not None else None
        if seen is None or seen == _request_digest(request):
            return
        header = idempotency_header(request.operation) or ""
        key = idempotency_key(request) or ""
        what = request.operation.name.replace("_", " ")
        if request.api == "ecom":
            status, answer = 400, "eCom answers error 93 (idempotency payload mismatch)"
        else:
            status, answer = 409, "Vipps answers 409 Conflict"
        yield Finding(
            self.code,
            Source.HEADER,
            header,
            f"was already used for a {what} request with a different body on this payment",
            f"a new key for a new request, or the same body when retrying; {answer}",
            key[:_SHOWN_CHARS],
            status=status,
            condition="different_body",
        )

    def observe(self, request: AuditedRequest) -> bool:
        """Remember the key of a forwarded request; True when it is a retry (same key and body)."""
        if not self.applies_to(request.operation):
            return False
        scope = key_scope(request)
        if scope is None:
            return False
        seen, digest = self._store.get(scope), _request_digest(request)
        if seen is None:
            self._store.put(scope, digest)
            return False
        if seen != digest:
            return False  # still bound to the first body
        self._store.put(scope, digest)  # a retry keeps the key alive
        return True
