"""The policy engine: run the rules that apply to an operation and decide what happens.

Rules are chosen once per operation and cached, so a rule that does not apply is never called.
A rule that raises is caught here (like mitmproxy guarding every addon call): it is recorded,
and the request fails closed unless the engine was built with `fail_open=True`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum

from policies.fast_path import BodyValidators
from policies.jsonbody import JsonValue, Path, splice
from policies.model import (
    ALLOWED,
    Action,
    AuditedRequest,
    Decision,
    Finding,
    Outcome,
    Rule,
    RuleFailure,
    Verdict,
)
from policies.operations import Operation


class PolicyMode(StrEnum):
    """`enforce`: each rule's action; `report`: a dry run that blocks and changes nothing."""

    ENFORCE = "enforce"
    REPORT = "report"
    OFF = "off"


class PolicyConfigError(ValueError):
    """A rule action setting names an unknown rule or an action the rule cannot take."""


def resolve_actions(rules: Sequence[Rule], overrides: Mapping[str, Action]) -> dict[str, Action]:
    """Each rule's action: its default, or the override; reject unknown rules and bad actions."""
    by_code = {rule.code: rule for rule in rules}
    unknown = sorted(set(overrides) - set(by_code))
    if unknown:
        raise PolicyConfigError(
            f"unknown rule {', '.join(unknown)}; known rules: {', '.join(sorted(by_code))}"
        )
    actions = {rule.code: rule.default_action for rule in rules}
    for code, action in overrides.items():
        if action is Action.REPAIR and not by_code[code].can_repair:
            raise PolicyConfigError(
                f"rule {code} has no safe repair; allowed actions: block, report, off"
            )
        actions[code] = action
    return actions


class PolicyEngine:
    """Evaluates requests against a fixed, explicitly listed set of rules."""

    def __init__(
        self,
        rules: Sequence[Rule],
        mode: PolicyMode = PolicyMode.ENFORCE,
        actions: Mapping[str, Action] | None = None,
        *,
        fail_open: bool = False,
        fast_path: bool = True,
    ) -> None:
        self.mode = mode
        self.fail_open = fail_open
        self.actions = resolve_actions(rules, actions or {})
        self.rules = tuple(rules)
        self._active = tuple(r for r in rules if self.actions[r.code] is not Action.OFF)
        self._per_operation: dict[Operation, tuple[Rule, ...]] = {}
        # Validate fast, explain only on failure: a body the operation's compiled validator
        # proves clean skips the body rules; any other body gets every rule's findings.
        self.body_validators = BodyValidators(self.rules) if fast_path else None
        self._when_proven: dict[Operation, tuple[Rule, ...] | None] = {}

    def rules_for(self, operation: Operation) -> tuple[Rule, ...]:
        """The active rules that apply to `operation` (computed once per operation)."""
        chosen = self._per_operation.get(operation)
        if chosen is None:
            chosen = tuple(r for r in self._active if r.applies_to(operation))
            self._per_operation[operation] = chosen
        return chosen

    def _rules_when_proven(
        self, operation: Operation, rules: tuple[Rule, ...]
    ) -> tuple[Rule, ...] | None:
        """The rules still to run on a body proven clean (None: no fast path for `operation`)."""
        if self.body_validators is None:
            return None
        if operation not in self._when_proven:
            self._when_proven[operation] = self.body_validators.skippable(operation, rules)
        return self._when_proven[operation]

    def evaluate(self, request: AuditedRequest) -> Verdict:
        """Run the applicable rules and decide: forward as is, forward repaired, or block."""
        if self.mode is PolicyMode.OFF:
            return ALLOWED
        rules = self.rules_for(request.operation)
        if not rules:
            return ALLOWED
        validators = self.body_validators
        if (
            validators is not None
            and (rest := self._rules_when_proven(request.operation, rules)) is not None
            and validators.proves_clean(request)
        ):
            rules = rest
        decisions: list[Decision] = []
        failures: list[RuleFailure] = []
        for rule in rules:
            try:
                findings = list(rule.check(request))
            except Exception as exc:
                failures.append(RuleFailure(rule.code, f"{type(exc).__name__}: {exc}"))
                continue
            decisions.extend(Decision(f, self._outcome(f)) for f in findings)
        if not decisions and not failures:
            return ALLOWED
        fail_closed = bool(failures) and not self.fail_open
        return self._settle(request, decisions, tuple(failures), fail_closed)

    def _outcome(self, finding: Finding) -> Outcome:
        if finding.advisory:
            return Outcome.REPORTED
        if self.mode is PolicyMode.REPORT:
            return Outcome.WOULD_BLOCK
        action = self.actions[finding.rule]
        if action is Action.REPORT:
            return Outcome.WOULD_BLOCK
        if action is Action.REPAIR and finding.repair is not None:
            return Outcome.REPAIRED
        return Outcome.BLOCKED

    def _settle(
        self,
        request: AuditedRequest,
        decisions: list[Decision],
        failures: tuple[RuleFailure, ...],
        fail_closed: bool,
    ) -> Verdict:
        repairs: list[tuple[Path, JsonValue]] = [
            (d.finding.repair.path, d.finding.repair.value)
            for d in decisions
            if d.outcome is Outcome.REPAIRED and d.finding.repair is not None
        ]
        blocked = fail_closed or any(d.outcome is Outcome.BLOCKED for d in decisions)
        body: bytes | None = None
        if repairs and not blocked:
            try:
                body = splice(request.body, repairs)
            except (ValueError, KeyError, IndexError):
                # The value could not be located in the bytes: never forward a guess.
                blocked = True
        if blocked and repairs:
            # Nothing is forwarded, so nothing was repaired: say what would have been.
            decisions = [
                Decision(d.finding, Outcome.REPORTED) if d.outcome is Outcome.REPAIRED else d
                for d in decisions
            ]
            if not any(d.outcome is Outcome.BLOCKED for d in decisions) and not fail_closed:
                decisions = [Decision(d.finding, Outcome.BLOCKED) for d in decisions]
        return Verdict(tuple(decisions), body, failures, fail_closed)
