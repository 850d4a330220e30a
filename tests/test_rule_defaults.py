"""The rules table in the README is the documented contract of every rule's code and default.

A merchant reads the README to know what the proxy blocks, repairs or only reports; each rule
of the proxy must appear there with the default it really has, and nothing may be documented
that no rule does. Every rule declares its code, action and evidence the same way, as class
attributes of its own class, so that reading one rule shows how to read them all.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from pathlib import Path
from typing import ClassVar, get_origin, get_type_hints

from policies.audit.payment_audit import PaymentAudit
from policies.core.model import Action, Condition, Rule
from policies.rules.listing import default_rules

README = Path(__file__).resolve().parents[1] / "README.md"
# Findings the README lists in the rules table that come from the payment-level audit's
# periodic sweep (proxy/app.py), not from a rule evaluated per request.
SWEEP_FINDINGS = {"polling.never_polled"}
# What every rule declares, in this order, as `ClassVar`-annotated attributes of its own class.
DECLARATIONS = ("code", "default_action", "can_repair", "summary", "conditions")


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


def test_every_rule_declares_code_action_and_evidence_one_way() -> None:
    """Each rule's own class declares the five as ClassVar attributes, in order, code a literal."""
    for rule in every_rule():
        cls = type(rule)
        own = [name for name in vars(cls).get("__annotations__", {}) if name in DECLARATIONS]
        assert own == list(DECLARATIONS), cls.__name__
        hints = get_type_hints(cls)
        for name in DECLARATIONS:
            assert name in vars(cls), (cls.__name__, name)
            assert get_origin(hints[name]) is ClassVar, (cls.__name__, name)
            assert name not in getattr(rule, "__dict__", {}), (cls.__name__, name)
        assert isinstance(rule.default_action, Action), cls.__name__
        assert isinstance(rule.can_repair, bool), cls.__name__
        assert all(isinstance(c, Condition) for c in rule.conditions), cls.__name__
        body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0]
        assert isinstance(body, ast.ClassDef), cls.__name__
        codes = [
            s.value
            for s in body.body
            if isinstance(s, ast.AnnAssign)
            and isinstance(s.target, ast.Name)
            and s.target.id == "code"
        ]
        assert len(codes) == 1, cls.__name__
        assert isinstance(codes[0], ast.Constant), cls.__name__
        assert codes[0].value == rule.code, cls.__name__
