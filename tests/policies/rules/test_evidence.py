"""Every condition under which a rule blocks by default carries documented evidence.

The rules declare their conditions as data (`Rule.conditions`); these tests hold the
declarations to the code (each is reached by a request in `tests.policies.rules.conditions`, and
every finding names a declared one), to the sources (spec pointers resolve in the spec files) and to
the principle: no default block without evidence, no report default without a reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from policies.audit.payment_audit import PaymentAudit
from policies.catalogue.operations import Operation
from policies.core.engine import PolicyEngine
from policies.core.model import (
    Action,
    AuditedRequest,
    Condition,
    Finding,
    Outcome,
    Rule,
    Source,
    audited_request,
)
from policies.rules.body_shape import OTHER_NAMES, RequiredFields
from policies.rules.evidence import GUARD_DUPLICATE_HEADER, GUARD_DUPLICATE_KEY
from policies.rules.headers import HeaderFormat, RequiredHeaders
from policies.rules.listing import RuleOptions, default_rules
from tests.policies.rules.conditions import DELETE, TRIGGERS, FakeClock, build
from tests.policies.rules.spec_examples import load_spec, spec_dir_or_skip
from tests.samples import CHECKOUT_SESSION, ECOM_CAPTURE, EPAYMENT_CAPTURE, VALID

README = Path(__file__).resolve().parents[3] / "README.md"
# Spec keys of the fact sheet (§0) and the files they name.
SPEC_KEYS = {
    "EP": "epayment-v1.yaml",
    "EP170": "epayment-v1.7.0.copy-2025-03.yaml",
    "EP141": "epayment-v1.vippsas-repo-1.4.1.yml",
    "EC": "ecom-v2.yaml",
    "RC": "recurring-v3.yaml",
    "CO": "checkout-v3.yaml",
    "AT": "access-token.yaml",
    "OM": "order-management-v2.yaml",
    "WH": "webhooks-v1.yaml",
    "RP": "report-v2.yaml",
}
# Document keys of the fact sheet (§0), and sources that are not Vipps' own.
DOC_KEYS = ("KB", "ECDOC", "EPDOC", "RCDOC", "CODOC", "WHDOC", "ATDOC", "RPDOC", "SITE")
_POINTER = re.compile(r"\[([A-Z0-9]+) (#/[^\]\s]+)\]")
# `repair` does most: it repairs where it can and blocks where it cannot.
_STRICTNESS = {Action.OFF: 0, Action.REPORT: 1, Action.BLOCK: 2, Action.REPAIR: 3}


def all_rules(audit: PaymentAudit | None = None) -> tuple[Rule, ...]:
    """Every rule the proxy runs: the stateless ones (with bounds set) and the payment audit's."""
    audit = audit or PaymentAudit(FakeClock())
    return (*default_rules(RuleOptions(amount_bounds="NOK=1000..10000000")), *audit.rules())


def declared() -> Iterator[tuple[Rule, Condition]]:
    for rule in all_rules():
        for condition in rule.conditions:
            yield rule, condition


def findings_of(rules: tuple[Rule, ...], request: AuditedRequest) -> list[Finding]:
    return [f for r in rules if r.applies_to(request.operation) for f in r.check(request)]


def blocking_count() -> int:
    return sum(1 for _, c in declared() if c.action is Action.BLOCK)


# --- the declarations ------------------------------------------------------------------------


def test_every_rule_declares_its_conditions_once() -> None:
    """Each rule declares at least one condition, each name once."""
    for rule in all_rules():
        names = [c.name for c in rule.conditions]
        assert names, rule.code
        assert len(names) == len(set(names)), rule.code


@pytest.mark.parametrize(
    ("code", "name"), [(r.code, c.name) for r, c in declared() if c.action is not Action.REPORT]
)
def test_every_blocking_or_repairing_condition_has_evidence(code: str, name: str) -> None:
    """A condition that blocks (or changes the request) by default cites where Vipps says so."""
    [condition] = [c for r, c in declared() if (r.code, c.name) == (code, name)]
    assert condition.evidence, f"{code}/{name} blocks by default without evidence"
    for evidence in condition.evidence:
        assert evidence.source.strip()
        assert evidence.says.strip()
        assert "\n" not in evidence.says


def test_evidence_cites_a_known_source() -> None:
    """Every evidence source names a fact-sheet key, Vipps' newsletter, or (guards) an RFC."""
    for rule, condition in declared():
        for evidence in condition.evidence:
            keys = re.findall(r"\[([A-Z0-9]+)[ \]]", evidence.source)
            known = [k for k in keys if k in SPEC_KEYS or k in DOC_KEYS]
            other = "newsletter" in evidence.source or evidence.source.startswith(
                ("RFC", "Vipps' own")
            )
            assert known or other, (rule.code, condition.name, evidence.source)


def test_spec_pointers_in_evidence_resolve() -> None:
    """A spec pointer cited as evidence exists in the spec file it names."""
    spec_dir = spec_dir_or_skip()
    checked = 0
    for rule, condition in declared():
        for evidence in condition.evidence:
            for key, pointer in _POINTER.findall(evidence.source):
                doc: Any = load_spec(spec_dir / SPEC_KEYS[key])
                for step in pointer[2:].split("/"):
                    step = step.replace("~1", "/").replace("~0", "~")
                    assert isinstance(doc, dict), (rule.code, key, pointer)
                    assert step in doc, (rule.code, key, pointer)
                    doc = doc[step]
                checked += 1
    assert checked >= 8


def test_report_conditions_say_why_they_do_not_block() -> None:
    """A condition that only reports says what holds it back (a schema keyword, a production
    integration, advice)."""
    for rule, condition in declared():
        if condition.action is Action.REPORT:
            assert condition.why.strip(), (rule.code, condition.name)


def test_a_rule_default_is_its_strictest_condition() -> None:
    """The rule-level default (a settings override's baseline) is its strictest condition's."""
    for rule in all_rules():
        strictest = max((c.action for c in rule.conditions), key=_STRICTNESS.__getitem__)
        assert rule.default_action is strictest, rule.code


def test_guards_are_the_only_evidence_that_is_not_vipps_own() -> None:
    """Only the two duplicate-name guards block on the proxy's own reason."""
    guards = {GUARD_DUPLICATE_KEY, GUARD_DUPLICATE_HEADER}
    own = [(r.code, c.name) for r, c in declared() if set(c.evidence) & guards]
    assert own == [("body.duplicate_key", "duplicate_key"), ("header.repeated", "repeated")]


# --- declarations against the code -----------------------------------------------------------


def test_every_declared_condition_has_a_trigger() -> None:
    """The trigger table covers exactly the declared conditions."""
    assert sorted(TRIGGERS) == sorted((r.code, c.name) for r, c in declared())


@pytest.mark.parametrize(
    ("code", "name"), sorted(TRIGGERS), ids=[f"{code}/{name}" for code, name in sorted(TRIGGERS)]
)
def test_each_condition_is_found_and_takes_its_default(code: str, name: str) -> None:
    """The trigger makes the rule find the condition, every finding names a declared condition,
    and in `enforce` the engine takes the condition's default action."""
    audit = PaymentAudit(FakeClock())
    request = TRIGGERS[code, name](audit)
    rules = all_rules(audit)
    found = findings_of(rules, request)
    by_rule = {r.code: {c.name: c for c in r.conditions} for r in rules}
    for finding in found:
        assert finding.condition in by_rule[finding.rule], (finding.rule, finding.condition)
    mine = [f for f in found if (f.rule, f.condition) == (code, name)]
    assert mine, f"{code}/{name} not found; found {[(f.rule, f.condition) for f in found]}"
    verdict = PolicyEngine(rules).evaluate(request)
    assert not verdict.failures
    outcomes = {d.outcome for d in verdict.decisions if d.finding in mine}
    action = by_rule[code][name].action
    if all(f.advisory for f in mine):
        expected = {Outcome.REPORTED}
    else:
        expected = {
            Action.BLOCK: {Outcome.BLOCKED},
            Action.REPORT: {Outcome.WOULD_BLOCK},
            # A repair is forwarded, or blocked with everything else when another rule blocks.
            Action.REPAIR: {Outcome.REPAIRED} if not verdict.blocked else {Outcome.BLOCKED},
        }[action]
    assert outcomes == expected


def test_samples_pass_every_rule_without_undeclared_findings() -> None:
    """The valid samples give no finding at all, so no undeclared one can hide there."""
    for sample in VALID.values():
        request = audited_request(sample.method, sample.path, sample.headers.items(), sample.body)
        assert [f for f in findings_of(all_rules(), request) if not f.advisory] == []


def test_override_still_makes_a_report_condition_block() -> None:
    """`VIPPS_PROXY_RULE_ACTIONS=header.format=block` blocks a report-default condition."""
    request = TRIGGERS["header.format", "system_header_length"](PaymentAudit(FakeClock()))
    assert not PolicyEngine(default_rules()).evaluate(request).blocked
    engine = PolicyEngine(default_rules(), actions={"header.format": Action.BLOCK})
    assert engine.evaluate(request).blocked


def test_override_to_report_stops_a_blocking_condition() -> None:
    """An override to `report` wins over a condition's `block` default."""
    request = TRIGGERS["header.missing", "authorization"](PaymentAudit(FakeClock()))
    assert PolicyEngine(default_rules()).evaluate(request).blocked
    engine = PolicyEngine(default_rules(), actions={"header.missing": Action.REPORT})
    verdict = engine.evaluate(request)
    assert not verdict.blocked
    assert [d.outcome for d in verdict.decisions] == [Outcome.WOULD_BLOCK]


class Drifting:
    """A rule whose finding names a condition it does not declare."""

    code = "test.drifting"
    default_action = Action.BLOCK
    can_repair = False
    summary = "drifts"
    conditions = (Condition("declared", Action.REPORT, why="test"),)

    def applies_to(self, operation: Operation) -> bool:
        return True

    def check(self, request: AuditedRequest) -> Iterator[Finding]:
        yield Finding(self.code, Source.BODY, "x", "is odd", "even", condition="undeclared")


def test_an_undeclared_condition_is_a_rule_failure() -> None:
    """The engine treats a finding with an undeclared condition as a rule bug: it fails closed."""
    request = build(EPAYMENT_CAPTURE)
    verdict = PolicyEngine([Drifting()]).evaluate(request)
    assert verdict.fail_closed
    assert verdict.blocked
    [failure] = verdict.failures
    assert (failure.rule, "'undeclared'" in failure.error) == ("test.drifting", True)
    assert not PolicyEngine([Drifting()], fail_open=True).evaluate(request).blocked


# --- the false blocks of real integrations ---------------------------------------------------


def required(request: AuditedRequest) -> list[Finding]:
    return list(RequiredFields().check(request))


_LINE = {
    "name": "Socks",
    "id": "sku-1",
    "totalAmount": 49900,
    "totalAmountExcludingTax": 39920,
    "totalTaxAmount": 9980,
}
_LINES = ("transaction", "orderSummary")


def checkout_with_lines(*lines: dict[str, Any]) -> AuditedRequest:
    summary = {"orderLines": list(lines), "orderBottomLine": {"currency": "NOK"}}
    return build(CHECKOUT_SESSION, (_LINES, summary))


def test_checkout_order_line_with_tax_rate_is_not_missing_tax_percentage() -> None:
    """WooCommerce's Checkout order lines carry `taxRate` (the receipt name): not a finding."""
    assert required(checkout_with_lines({**_LINE, "taxRate": 2500})) == []
    verdict = PolicyEngine(default_rules()).evaluate(
        checkout_with_lines({**_LINE, "taxRate": 2500})
    )
    assert verdict.decisions == ()


def test_checkout_order_line_with_tax_percentage_passes() -> None:
    """The v3 spec's own name passes as before."""
    assert required(checkout_with_lines({**_LINE, "taxPercentage": 25})) == []


def test_checkout_order_line_without_either_tax_name_is_still_blocked() -> None:
    """A line with neither name misses the field under every name Vipps accepts."""
    [finding] = required(checkout_with_lines(dict(_LINE)))
    assert finding.field == "transaction.orderSummary.orderLines[0].taxPercentage"
    assert finding.condition == "checkout"
    assert PolicyEngine(default_rules()).evaluate(checkout_with_lines(dict(_LINE))).blocked


def test_null_tax_rate_does_not_stand_in_for_tax_percentage() -> None:
    """An explicit null under the other name is no value."""
    assert len(required(checkout_with_lines({**_LINE, "taxRate": None}))) == 1


def test_other_names_are_symmetric() -> None:
    """Each name stands in for the other: whichever a spec requires, both are accepted."""
    for name, others in OTHER_NAMES.items():
        for other in others:
            assert name in OTHER_NAMES[other]


def test_checkout_session_of_another_type_needs_no_transaction() -> None:
    """`transaction` is judged for payment sessions only; a session of another type may omit it."""
    subscription = build(CHECKOUT_SESSION, (("transaction",), DELETE), (("type",), "SUBSCRIPTION"))
    assert required(subscription) == []
    for kind in ({}, {"type": "PAYMENT"}):
        payment = build(
            CHECKOUT_SESSION, (("transaction",), DELETE), *((("type",), v) for v in kind.values())
        )
        assert [f.field for f in required(payment)] == ["transaction"]


@pytest.mark.parametrize(
    "name",
    [
        "https://shop.example-with-domains.no",  # a shop's domain, as the Shopware plugin sends
        "x" * 100,
    ],
)
def test_long_system_name_is_reported_not_blocked(name: str) -> None:
    """A `Vipps-System-Name` over 30 characters is forwarded and reported (`would_block`)."""
    request = build(EPAYMENT_CAPTURE, headers={"Vipps-System-Name": name})
    [finding] = HeaderFormat().check(request)
    assert finding.condition == "system_header_length"
    verdict = PolicyEngine(default_rules()).evaluate(request)
    assert not verdict.blocked
    assert [(d.finding.rule, d.outcome) for d in verdict.decisions] == [
        ("header.format", Outcome.WOULD_BLOCK)
    ]


def test_ecom_capture_without_request_id_is_reported_not_blocked() -> None:
    """A full eCom capture without `X-Request-Id` is forwarded, as production backends send it."""
    request = build(ECOM_CAPTURE, headers={"X-Request-Id": None})
    [finding] = RequiredHeaders().check(request)
    assert (finding.field, finding.condition) == ("X-Request-Id", "ecom_request_id")
    verdict = PolicyEngine(default_rules()).evaluate(request)
    assert not verdict.blocked
    assert [d.outcome for d in verdict.decisions] == [Outcome.WOULD_BLOCK]


def test_epayment_capture_without_idempotency_key_is_still_blocked() -> None:
    """The ePayment key stays a block: Vipps documents "Missing required parameter"."""
    request = build(EPAYMENT_CAPTURE, headers={"Idempotency-Key": None})
    assert PolicyEngine(default_rules()).evaluate(request).blocked


def test_readme_states_the_count_of_default_blocks() -> None:
    """The README's evidence section gives the number of default-block conditions there are."""
    text = README.read_text(encoding="utf-8")
    total = sum(1 for _ in declared())
    assert f"{blocking_count()} of the {total} conditions block by default" in text
