"""The engine: modes, per-rule actions, repairs, and per-operation rule choice."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pytest

from policies.catalogue.operations import Operation
from policies.core import jsonbody
from policies.core.engine import PolicyConfigError, PolicyEngine, PolicyMode, resolve_actions
from policies.core.jsonbody import JsonValue, Path
from policies.core.model import (
    Action,
    AuditedRequest,
    Condition,
    Finding,
    Outcome,
    Repair,
    Source,
    audited_request,
)
from policies.rules.listing import default_rules
from tests.samples import CHECKOUT_SESSION, ECOM_INITIATE, EPAYMENT_CREATE, Sample


@dataclass
class Probe:
    """A configurable rule that counts its calls."""

    code: str = "probe.rule"
    default_action: Action = Action.BLOCK
    can_repair: bool = True
    summary: str = "probe"
    conditions: tuple[Condition, ...] = ()
    apis: tuple[str, ...] = ("epayment",)
    findings: list[Finding] = field(default_factory=list)
    calls: int = 0

    def applies_to(self, operation: Operation) -> bool:
        return operation.api in self.apis

    def check(self, request: AuditedRequest) -> Iterable[Finding]:
        self.calls += 1
        return self.findings


def finding(
    code: str = "probe.rule", *, repair: Repair | None = None, advisory: bool = False
) -> Finding:
    return Finding(code, Source.BODY, "x", "bad", "good", "1", repair=repair, advisory=advisory)


REQUEST = audited_request("POST", "/epayment/v1/payments", [], b'{"x": 1}')


@pytest.mark.parametrize(
    ("mode", "action", "expected"),
    [
        (PolicyMode.ENFORCE, Action.BLOCK, Outcome.BLOCKED),
        (PolicyMode.ENFORCE, Action.REPORT, Outcome.WOULD_BLOCK),
        (PolicyMode.REPORT, Action.BLOCK, Outcome.WOULD_BLOCK),
        (PolicyMode.REPORT, Action.REPAIR, Outcome.WOULD_REPAIR),
        (PolicyMode.REPORT, Action.REPORT, Outcome.WOULD_BLOCK),
        (PolicyMode.ENFORCE, Action.REPAIR, Outcome.REPAIRED),
    ],
)
def test_outcome_follows_mode_and_action(
    mode: PolicyMode, action: Action, expected: Outcome
) -> None:
    """Report mode never blocks or changes and names repairs as repairs; enforce applies each
    rule's action."""
    rule = Probe(findings=[finding(repair=Repair(("x",), 2))])
    verdict = PolicyEngine([rule], mode, {"probe.rule": action}).evaluate(REQUEST)
    assert [d.outcome for d in verdict.decisions] == [expected]
    assert verdict.blocked is (expected is Outcome.BLOCKED)
    assert (verdict.body == b'{"x": 2}') is (expected is Outcome.REPAIRED)


def test_repair_action_without_a_repair_blocks() -> None:
    """A finding that has no safe repair is blocked even when the action is repair."""
    rule = Probe(findings=[finding()])
    verdict = PolicyEngine([rule], actions={"probe.rule": Action.REPAIR}).evaluate(REQUEST)
    assert verdict.blocked


def test_repairs_are_not_applied_when_another_finding_blocks() -> None:
    """When the request is blocked anyway, a repair is reported, not performed."""
    fixer = Probe(code="a.fix", findings=[finding("a.fix", repair=Repair(("x",), 2))])
    blocker = Probe(code="b.block", findings=[finding("b.block")])
    engine = PolicyEngine([fixer, blocker], actions={"a.fix": Action.REPAIR})
    verdict = engine.evaluate(REQUEST)
    assert verdict.blocked
    assert verdict.body is None
    assert [d.outcome for d in verdict.decisions] == [Outcome.REPORTED, Outcome.BLOCKED]


def test_advisory_findings_never_block() -> None:
    """An advisory finding is recorded as reported, whatever the action."""
    rule = Probe(findings=[finding(advisory=True)])
    verdict = PolicyEngine([rule]).evaluate(REQUEST)
    assert not verdict.blocked
    assert verdict.decisions[0].outcome is Outcome.REPORTED


def test_off_mode_and_off_rules_are_never_called() -> None:
    """Mode off and action off skip the rule entirely."""
    rule = Probe(findings=[finding()])
    assert not PolicyEngine([rule], PolicyMode.OFF).evaluate(REQUEST).decisions
    assert not PolicyEngine([rule], actions={"probe.rule": Action.OFF}).evaluate(REQUEST).decisions
    assert rule.calls == 0


def test_rules_are_chosen_once_per_operation() -> None:
    """A rule for another API is never called; the choice is cached per operation."""
    ecom_only = Probe(apis=("ecom",), findings=[finding()])
    engine = PolicyEngine([ecom_only])
    engine.evaluate(REQUEST)
    engine.evaluate(REQUEST)
    assert ecom_only.calls == 0
    assert engine.rules_for(REQUEST.operation) == ()


def test_unrepairable_splice_blocks_instead_of_guessing() -> None:
    """A repair whose path is not in the body blocks rather than forwarding a guess."""
    rule = Probe(findings=[finding(repair=Repair(("nope",), 2))])
    verdict = PolicyEngine([rule], actions={"probe.rule": Action.REPAIR}).evaluate(REQUEST)
    assert verdict.blocked
    assert verdict.body is None


def test_unknown_rules_and_impossible_repairs_are_refused() -> None:
    """Overrides naming an unknown rule, or repair for a rule without repairs, are errors."""
    with pytest.raises(PolicyConfigError, match="unknown rule nope"):
        resolve_actions([Probe()], {"nope": Action.BLOCK})
    with pytest.raises(PolicyConfigError, match="has no safe repair"):
        resolve_actions([Probe(can_repair=False)], {"probe.rule": Action.REPAIR})


@pytest.mark.parametrize(
    "sample", [EPAYMENT_CREATE, ECOM_INITIATE, CHECKOUT_SESSION], ids=lambda s: s.path
)
def test_every_default_rule_shares_one_walk_of_the_body_per_pattern(
    sample: Sample, monkeypatch: pytest.MonkeyPatch
) -> None:
    walked: list[Path] = []
    real_walk = jsonbody.walk

    def counting_walk(value: JsonValue, pattern: Path) -> list[tuple[Path, JsonValue]]:
        walked.append(pattern)
        return real_walk(value, pattern)

    monkeypatch.setattr(jsonbody, "walk", counting_walk)
    request = audited_request(sample.method, sample.path, sample.headers.items(), sample.body)
    # The detailed rules, as they run on every body the compiled validator cannot prove clean.
    engine = PolicyEngine(default_rules(), fast_path=False)
    engine.evaluate(request)
    assert walked, "the money, currency and schema rules walk the body"
    assert len(walked) == len(set(walked)), "a pattern was walked more than once"
    # The walks are remembered, and the same answers as a fresh walk.
    for pattern in set(walked):
        assert request.json.walk(pattern) == tuple(real_walk(request.field(()), pattern))
