"""`RuleGrades`: per rule, Vipps' answers to the forwarded requests the rule doubted."""

from __future__ import annotations

from typing import Any

from proxy.grading import RuleGrades


def record(outcome: str | None, *findings: tuple[str, str], status: int = 200) -> dict[str, Any]:
    """A request record as the audit log writes it, with (rule, action) findings."""
    out: dict[str, Any] = {
        "request_id": "r1",
        "api": "epayment",
        "operation": "capture_payment",
        "status": status,
        "findings": [
            {"rule": rule, "action": action, "condition": "c", "field": "f", "problem": "p"}
            for rule, action in findings
        ],
    }
    if outcome is not None:
        out["vipps_outcome"] = outcome
    return out


def counts(grades: RuleGrades) -> dict[str, tuple[int, int, int]]:
    return {g["rule"]: (g["contradicted"], g["confirmed"], g["no_answer"]) for g in grades.view()}


def test_each_answer_grades_the_rules_it_doubted_once() -> None:
    """Two would-block findings of one rule in one request count once for that rule."""
    grades = RuleGrades()
    grades.observe("t1", record("accepted", ("a", "would_block"), ("a", "would_block")))
    grades.observe("t2", record("rejected", ("a", "would_block"), ("b", "would_repair")))
    grades.observe("t3", record("no_answer", ("b", "would_block"), status=504))
    assert counts(grades) == {"a": (1, 1, 0), "b": (0, 1, 1)}
    latest = {g["rule"]: g["latest"] for g in grades.view()}
    assert (latest["a"]["ts"], latest["a"]["vipps"]) == ("t2", "rejected")
    assert (latest["b"]["ts"], latest["b"]["status"]) == ("t3", 504)


def test_advice_repairs_blocks_and_ungraded_records_are_left_out() -> None:
    """Only doubted findings of a request with an outcome are graded."""
    grades = RuleGrades()
    grades.observe("t", record("accepted", ("a", "reported"), ("b", "repaired")))
    grades.observe("t", record(None, ("c", "would_block")))
    grades.observe("t", record("maybe", ("d", "would_block")))
    assert grades.view() == []


def test_most_contradicted_rule_comes_first() -> None:
    """The view orders by contradictions, then confirmations, then name."""
    grades = RuleGrades()
    grades.observe("t", record("rejected", ("z", "would_block")))
    grades.observe("t", record("accepted", ("y", "would_block")))
    grades.observe("t", record("accepted", ("x", "would_block")))
    grades.observe("t", record("accepted", ("x", "would_block")))
    assert [g["rule"] for g in grades.view()] == ["x", "y", "z"]


def test_rules_are_bounded() -> None:
    """At most `max_rules` rules are kept; the one graded longest ago goes first."""
    grades = RuleGrades(max_rules=2)
    for rule in ("a", "b", "a", "c"):
        grades.observe("t", record("accepted", (rule, "would_block")))
    assert sorted(counts(grades)) == ["a", "c"]
