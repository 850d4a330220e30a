"""Checking requests without a network: the proxy's own rules, built the proxy's own way.

`build_payment_audit` and `build_engine` are the one place the rules are assembled from
settings; the proxy (`proxy.app`) and the offline check both call them, so the two cannot
disagree. `Checker` runs a sequence of requests through them in order, as if each request
that is not blocked had been forwarded and accepted by Vipps, so the payment-level rules
(ledger, idempotency keys, rate limits) see the sequence as the proxy would. `check` is the
one-request form for a merchant's own tests::

    from policies import check

    def test_capture_is_clean() -> None:
        decisions = check("POST", "/epayment/v1/payments/order-1234/capture", headers, body)
        assert [d.finding.message for d in decisions if d.outcome is Outcome.BLOCKED] == []

Settings are anything with the attributes of `CheckSettings` (the proxy's `Settings` has them
all), so a merchant passes the same values the sidecar runs with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from policies.audit.payment_audit import AuditStores, PaymentAudit
from policies.audit.ratelimit import parse_limits
from policies.audit.state import Clock
from policies.catalogue.operations import UNKNOWN
from policies.core.engine import PolicyEngine, PolicyMode
from policies.core.jsonbody import JsonValue, Path, splice
from policies.core.model import Action, AuditedRequest, Decision, Headers, Verdict, audited_request
from policies.rules.listing import RuleOptions, default_rules

__all__ = [
    "DEFAULT_AMOUNT_BOUNDS",
    "CheckSettings",
    "Checker",
    "ManualClock",
    "PolicySettings",
    "build_engine",
    "build_payment_audit",
    "check",
]

DEFAULT_AMOUNT_BOUNDS = "NOK=1000..10000000,DKK=1000..10000000,EUR=100..1000000"
DEFAULT_STATE_MAX_ENTRIES = 10_000
DEFAULT_STATE_TTL_SECONDS = 7 * 24 * 3600.0
DEFAULT_POLL_WINDOW_SECONDS = 300.0
# The answer assumed from Vipps for a request the rules let through: accepted.
ASSUMED_STATUS = 200


class PolicySettings(Protocol):
    """The settings the rules are built from (a subset of the proxy's `Settings`)."""

    @property
    def policy_mode(self) -> PolicyMode: ...
    @property
    def rule_actions(self) -> Mapping[str, Action]: ...
    @property
    def policy_fail_open(self) -> bool: ...
    @property
    def phone_default_region(self) -> str: ...
    @property
    def amount_bounds(self) -> str: ...
    @property
    def rate_limits(self) -> str: ...
    @property
    def state_max_entries(self) -> int: ...
    @property
    def state_ttl_seconds(self) -> float: ...
    @property
    def poll_audit_window_seconds(self) -> float: ...


@dataclass(frozen=True, slots=True)
class CheckSettings:
    """The rule settings with the proxy's defaults, for use without the proxy's `Settings`."""

    policy_mode: PolicyMode = PolicyMode.ENFORCE
    rule_actions: Mapping[str, Action] = field(default_factory=dict)
    policy_fail_open: bool = False
    phone_default_region: str = "NO"
    amount_bounds: str = DEFAULT_AMOUNT_BOUNDS
    rate_limits: str = ""
    state_max_entries: int = DEFAULT_STATE_MAX_ENTRIES
    state_ttl_seconds: float = DEFAULT_STATE_TTL_SECONDS
    poll_audit_window_seconds: float = DEFAULT_POLL_WINDOW_SECONDS


class ManualClock:
    """A clock that stands still until moved: request times come from the input, not the wall."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def build_payment_audit(
    settings: PolicySettings, clock: Clock | None = None, stores: AuditStores | None = None
) -> PaymentAudit:
    """The payment-level audit (ledger, idempotency, rate limits, polling) with bounded state,
    in this process unless shared `stores` are given."""
    return PaymentAudit(
        clock if clock is not None else ManualClock(),
        max_entries=settings.state_max_entries,
        ttl_seconds=settings.state_ttl_seconds,
        poll_window_seconds=settings.poll_audit_window_seconds,
        limits=parse_limits(settings.rate_limits),
        stores=stores,
    )


def build_engine(settings: PolicySettings, payments: PaymentAudit) -> PolicyEngine:
    """The policy engine with every rule, configured by the settings (raises on bad actions)."""
    options = RuleOptions(
        phone_default_region=settings.phone_default_region,
        amount_bounds=settings.amount_bounds,
    )
    return PolicyEngine(
        (*default_rules(options), *payments.rules()),
        settings.policy_mode,
        settings.rule_actions,
        fail_open=settings.policy_fail_open,
    )


class Checker:
    """Runs requests in order through the proxy's rules, with payment-level state between them.

    Raises ValueError (or `PolicyConfigError`, a ValueError) for settings the rules cannot take.
    """

    def __init__(self, settings: PolicySettings | None = None) -> None:
        self.settings: PolicySettings = settings if settings is not None else CheckSettings()
        self.clock = ManualClock()
        self.payments = build_payment_audit(self.settings, self.clock)
        self.engine = build_engine(self.settings, self.payments)

    def evaluate(self, request: AuditedRequest, at: float | None = None) -> Verdict:
        """The proxy's verdict on `request` (sent `at` seconds on the input's own time line).

        A request that is not blocked is then counted as forwarded and accepted by Vipps.
        """
        if at is not None:
            self.clock.now = max(self.clock.now, at)
        verdict = self.engine.evaluate(request)
        if not verdict.blocked and request.operation is not UNKNOWN:
            self.payments.record_forwarded(request)
            self.payments.observe(request, ASSUMED_STATUS)
        return verdict

    def repaired_body(self, request: AuditedRequest, verdict: Verdict) -> bytes | None:
        """The body with every repair the rules' actions allow (as `enforce` would forward it).

        Repairs are applied when the rule's action is `repair`, whatever the mode, so a dry
        run still shows the fix; None when there is nothing to repair or it cannot be placed.
        """
        repairs: list[tuple[Path, JsonValue]] = [
            (d.finding.repair.path, d.finding.repair.value)
            for d in verdict.decisions
            if d.finding.repair is not None
            and self.engine.actions.get(d.finding.rule) is Action.REPAIR
        ]
        if not repairs:
            return None
        try:
            return splice(request.body, repairs)
        except (ValueError, KeyError, IndexError):
            return None


def check(
    method: str,
    path: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body: bytes | str = b"",
    *,
    query: str = "",
    settings: PolicySettings | None = None,
) -> list[Decision]:
    """What the proxy would find in one request: each finding with its outcome.

    `headers` is a mapping or (name, value) pairs; `body` the exact bytes (a str is UTF-8).
    A decision's `outcome` is what the proxy would do under these settings (`blocked`,
    `would_block`, `repaired`, `reported`). A rule that fails to evaluate raises RuntimeError
    when the proxy would fail closed on it.
    """
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    raw = body.encode() if isinstance(body, str) else body
    request = audited_request(method, path, Headers(pairs), raw, query)
    verdict = Checker(settings).evaluate(request)
    if verdict.fail_closed:
        failed = ", ".join(f"{f.rule} ({f.error})" for f in verdict.failures)
        raise RuntimeError(f"rule failed to evaluate: {failed}")
    return list(verdict.decisions)
