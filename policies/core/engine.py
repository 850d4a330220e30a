"""The policy engine: run the rules that apply to an operation and decide what happens.

Rules are chosen once per operation and cached, so a rule that does not apply is never called.
A rule that raises is caught here (like mitmproxy guarding every addon call): it is recorded,
and the request fails closed unless the engine was built with `fail_open=True`.

A finding's action comes from the settings' override of its rule if there is one, else from
the default of the condition it names (`policies.core.model.Condition`), so a condition that only
reports by default can still be made to block (`VIPPS_PROXY_RULE_ACTIONS=rule=block`). A
finding naming a condition its rule does not declare is a fault of the rule and is handled
like a rule that raised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum

from policies.catalogue.operations import Operation
from policies.core.jsonbody import JsonValue, Path, splice
from policies.core.model import (
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
from policies.rules.fast_path import BodyValidators


class PolicyMode(StrEnum):
    """How the whole proxy applies the rules.

    `enforce`: each rule's own action; `report`: a dry run that blocks and changes nothing and
    records what it would have blocked or changed as would-block; `off`: no rule runs and
    every request is forwarded as sent.
    """

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
        overridden = set(actions or {})
        # Per declared condition: the override of its rule, else the condition's own default.
        self._condition_actions: dict[tuple[str, str], Action] = {
            (rule.code, c.name): self.actions[rule.code] if rule.code in overridden else c.action
            for rule in rules
            for c in rule.conditions
        }
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
            undeclared = self._undeclared(rule, findings)
            if undeclared:
                failures.append(RuleFailure(rule.code, undeclared))
                continue
            decisions.extend(Decision(f, self._outcome(f)) for f in findings)
        if not decisions and not failures:
            return ALLOWED
        fail_closed = bool(failures) and not self.fail_open
        return self._settle(request, decisions, tuple(failures), fail_closed)

    def action_for(self, finding: Finding) -> Action:
        """The action for a finding in `enforce` mode: its condition's, or its rule's."""
        action = self._condition_actions.get((finding.rule, finding.condition))
        return self.actions[finding.rule] if action is None else action

    def _undeclared(self, rule: Rule, findings: list[Finding]) -> str | None:
        """Say which findings name a condition the rule does not declare (None: all do)."""
        if not rule.conditions:
            return None
        names = sorted(
            {
                f.condition
                for f in findings
                if (rule.code, f.condition) not in self._condition_actions
            }
        )
        if not names:
            return None
        return f"ConditionError: finding names undeclared condition {', '.join(map(repr, names))}"

    def _outcome(self, finding: Finding) -> Outcome:
        if finding.advisory:
            return Outcome.REPORTED
        action = self.action_for(finding)
        repairable = action is Action.REPAIR and finding.repair is not None
        if self.mode is PolicyMode.REPORT:
            # A dry run names what enforce would do: a repair is not a block.
            return Outcome.WOULD_REPAIR if repairable else Outcome.WOULD_BLOCK
        if action is Action.REPORT:
            return Outcome.WOULD_BLOCK
        if repairable:
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
