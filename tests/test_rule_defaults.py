"""The rules table in the README is the documented contract of every rule's code and default.

A merchant reads the README to know what the proxy blocks, repairs or only reports; each rule
of the proxy must appear there with the default it really has, and nothing may be documented
that no rule does.
"""

from __future__ import annotations

import re
from pathlib import Path

from policies.audit.payment_audit import PaymentAudit
from policies.core.model import Action, Rule
from policies.rules.listing import default_rules

README = Path(__file__).resolve().parents[1] / "README.md"
# Findings the README lists in the rules table that come from the payment-level audit's
# periodic sweep (proxy/app.py), not from a rule evaluated per request.
SWEEP_FINDINGS = {"polling.never_polled"}


def every_rule() -> list[Rule]:
    """The request-level rules and the payment-level audit's rules, as the proxy runs them."""
    return [*default_rules(), *PaymentAudit(lambda: 0.0).rules()]


def documented_defaults() -> dict[str, str]:
    """Code -> the 'default' cell of each row of the README's rules table."""
    section = README.read_text(encoding="utf-8").split("### Rules", 1)[1].split("\n### ", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \| ([^|]+) \|", section, flags=re.MULTILINE)
    return {code: default.strip() for code, default in rows}


def test_every_rule_is_documented_with_its_default() -> None:
    """Each rule's README row starts with its default action and mentions repair iff it can."""
    documented = documented_defaults()
    for rule in every_rule():
        default = documented[rule.code]
        first = re.match(r"[a-z]+", default)
        assert first is not None, (rule.code, default)
        assert Action(first.group()) is rule.default_action, (rule.code, default)
        assert ("repair" in default) is rule.can_repair, (rule.code, default)


def test_nothing_is_documented_that_no_rule_does() -> None:
    """Every code in the README's rules table is a rule's code or a finding of the sweep."""
    codes = {rule.code for rule in every_rule()}
    assert set(documented_defaults()) == codes | SWEEP_FINDINGS


def test_every_rule_has_a_unique_code_and_a_one_line_summary() -> None:
    """Codes are distinct dotted names; each summary is one non-empty line for listings."""
    rules = every_rule()
    assert len({rule.code for rule in rules}) == len(rules)
    for rule in rules:
        assert re.fullmatch(r"[a-z_]+\.[a-z_]+", rule.code), rule.code
        assert rule.summary.strip(), rule.code
        assert "\n" not in rule.summary, rule.code
